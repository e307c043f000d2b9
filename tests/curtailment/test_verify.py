"""Verification by measured watts: right after a chunk's stops its own machines are judged from
their own PDUs (a site of ten thousand is not walked whole for each chunk of five hundred), and
only whole-site readings become the event's achieved-MW samples."""

import datetime as dt

import pytest
from django.utils import timezone

from capacity.models import Pdu
from hosting.curtailment import services
from hosting.curtailment.models import CurtailmentStatus, EventMachine, EventSample
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


def test_a_chunks_verification_reads_only_its_machines_pdus(sent):
    ev, rows = sent
    site = ev.site_id
    assert [p.host for p in services.site_pdus(site)] == ["127.81.1.1", "127.81.1.2"]
    assert [p.host for p in services.site_pdus(site, [rows[0].pk, rows[1].pk])] == ["127.81.1.1"]
    assert services.site_pdus(site, []) == []


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
