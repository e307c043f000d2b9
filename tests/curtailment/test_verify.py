"""Verification by measured watts: right after a chunk's stops its own machines are judged from
their own outlets alone (a site of ten thousand is not walked for each chunk of five hundred), and
only whole-site readings become the event's achieved-MW samples."""

import datetime as dt

import pytest
from django.utils import timezone

from capacity.models import Pdu
from hosting.curtailment import services
from hosting.curtailment.commands import STOP, Attempt, Sent
from hosting.curtailment.models import CurtailmentStatus, EventMachine, EventSample
from hosting.curtailment.tasks import _settled
from hosting.probes import PduAddress, PduWalk
from tests.curtailment.world import event, live_floor

pytestmark = pytest.mark.django_db
CS = CurtailmentStatus


@pytest.fixture
def sent(floor):
    """Four machines on PDU A told to stop, and a second PDU on the site with nothing of theirs."""
    live_floor(floor, 4, net=81)
    Pdu.objects.create(site=floor["site"], name="PDU B", host="127.81.1.2", port=16200)
    ev = services.start_event(event(floor["site"], target_mw="1", deadline_s=600).pk)
    EventMachine.objects.filter(event=ev).update(status=CS.SENT, sent_at=timezone.now())
    rows = list(EventMachine.objects.filter(event=ev).order_by("machine__slot__outlet"))
    return ev, rows


def walk_of(pdu_host: str, watts: dict[int, float]) -> dict[PduAddress, PduWalk]:
    pdu = Pdu.objects.get(host=pdu_host)
    return {PduAddress(pdu.host, pdu.port, pdu.community, pdu.profile): PduWalk(watts)}


def test_a_chunks_verification_asks_only_its_machines_outlets(sent):
    ev, rows = sent
    assert [p.host for p in services.site_pdus(ev.site_id)] == ["127.81.1.1", "127.81.1.2"]
    outlets = services.chunk_outlets([rows[2].pk, rows[0].pk])
    assert {p.host: numbers for p, numbers in outlets.items()} == {"127.81.1.1": [1, 3]}
    assert services.chunk_outlets([]) == {}


def test_a_chunk_is_judged_alone_and_records_no_sample_the_whole_site_does(sent):
    ev, rows = sent
    asleep = {1: 35.0, 2: 36.0, 3: 37.0, 4: 3200.0}
    now = timezone.now()
    services.verify(ev.pk, walk_of("127.81.1.1", asleep), now, only=[rows[0].pk, rows[1].pk])
    statuses = dict(EventMachine.objects.filter(event=ev).values_list("pk", "status"))
    assert [statuses[r.pk] for r in rows] == [CS.VERIFIED, CS.VERIFIED, CS.SENT, CS.SENT]
    assert not EventSample.objects.filter(event=ev).exists()
    services.verify(ev.pk, walk_of("127.81.1.1", asleep), now + dt.timedelta(seconds=5))
    statuses = dict(EventMachine.objects.filter(event=ev).values_list("pk", "status"))
    assert [statuses[r.pk] for r in rows] == [CS.VERIFIED, CS.VERIFIED, CS.VERIFIED, CS.SENT]  # 4: before deadline
    (sample,) = EventSample.objects.filter(event=ev)
    assert sample.machines_off == 3


def test_after_the_deadline_a_chunk_retries_only_its_own_still_drawing_machines(sent):
    ev, rows = sent
    drawing = {1: 3200.0, 2: 3200.0, 3: 3200.0, 4: 3200.0}
    late = ev.deadline_at + dt.timedelta(seconds=1)
    retry = services.verify(ev.pk, walk_of("127.81.1.1", drawing), late, only=[rows[0].pk])
    assert [e.pk for e in retry] == [rows[0].pk]
    assert EventMachine.objects.filter(event=ev, status=CS.SENT).count() == 4  # the retried one claimed again
    assert EventMachine.objects.get(pk=rows[0].pk).attempts == 1


def test_a_chunks_machines_not_yet_seen_off_are_read_again_until_the_deadline(sent):
    ev, rows = sent
    now = timezone.now()
    chunk = [r.pk for r in rows[:3]]
    services.verify(ev.pk, walk_of("127.81.1.1", {1: 35.0, 2: 900.0, 3: 3200.0, 4: 36.0}), now, only=chunk)
    assert services.still_to_verify(ev.pk, chunk, now) == [rows[1].pk, rows[2].pk]
    assert services.still_to_verify(ev.pk, chunk, ev.deadline_at) == []


def test_a_chunk_reads_at_once_the_machines_whose_stops_have_settled_and_queues_the_rest(settings):
    settings.CURTAILMENT_SETTLE_MS = 2000
    now = timezone.now()

    def answered(pk: int, seconds_ago: float | None, ok: bool = True) -> Attempt:
        at = now - dt.timedelta(seconds=seconds_ago) if seconds_ago is not None else None
        return Attempt(pk, STOP, now - dt.timedelta(seconds=9), at, ok, "done" if ok else "no answer")

    sent = Sent([answered(1, 5.0), answered(2, 0.5), answered(3, None, ok=False), answered(4, 1.9), answered(5, 2.1)])
    assert _settled(sent, [1, 2, 3, 4, 5], now) == ([1, 3, 5], [2, 4])  # 3 never answered: nothing to wait for
