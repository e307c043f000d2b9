"""Sending a curtailment command, concurrently: many callers start (then end) the same event at
once — a QSE retrying its POST, a price trigger and staff — on PostgreSQL, round after round.
The event's lock lets one of them choose and send; the others find it started and send nothing:
each machine is chosen once, moved once, and each command chunk is on the site's queue once."""

import pytest
from amqp.exceptions import ChannelError

from hosting import queues
from hosting.celery import app
from hosting.curtailment import services
from hosting.curtailment.models import Event, EventMachine, EventStatus
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, MachineEvent
from tests.curtailment.world import event, live_floor
from tests.races import race
from tests.workers import purge

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROUNDS = 12
CALLERS = 8
MACHINES = 5


def on_queue(queue: str) -> int:
    with app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:  # purged and nothing sent since: no such queue
            return 0


def test_starting_and_ending_an_event_at_once_sends_each_command_once(floor, settings):
    settings.CURTAILMENT_CHUNK = 2  # five machines: three chunks
    site = floor["site"]
    machines = live_floor(floor, MACHINES, net=72)
    ids = [m.pk for m in machines]
    queue = queues.control_queue_for(site.slug)
    for n in range(ROUNDS):
        purge([queue])
        ev = event(site, target_mw="1", deadline_s=600)
        wins, refusals = race(CALLERS, lambda _i, pk=ev.pk: services.start_event(pk).status)
        assert (wins, refusals) == ([EventStatus.ACTIVE] * CALLERS, []), n
        assert EventMachine.objects.filter(event=ev).count() == MACHINES
        assert on_queue(queue) == 3 + 1, n  # three chunks of stops and the deadline's verification
        assert set(Machine.objects.filter(pk__in=ids).values_list("status", flat=True)) == {MachineStatus.CURTAILED}
        assert MachineEvent.objects.filter(machine__in=ids, to_status=MachineStatus.CURTAILED).count() == MACHINES * (
            n + 1
        )

        purge([queue])
        # As if the site's worker had told them and they had answered (no worker here).
        EventMachine.objects.filter(event=ev).update(status="curtailed")
        wins, refusals = race(CALLERS, lambda _i, pk=ev.pk: services.end_event(pk).status)
        assert (wins, refusals) == ([EventStatus.ENDED] * CALLERS, []), n
        assert on_queue(queue) == 3, n  # three chunks of resumes, once
        assert set(Machine.objects.filter(pk__in=ids).values_list("status", flat=True)) == {MachineStatus.LIVE}
        assert MachineEvent.objects.filter(machine__in=ids, from_status=MachineStatus.CURTAILED).count() == MACHINES * (
            n + 1
        )
    assert Event.objects.filter(status=EventStatus.ENDED).count() == ROUNDS


def test_a_redelivered_chunk_claims_nothing_twice(floor):
    """Two workers given the same chunk (a redelivery): each machine is claimed by one of them."""
    site = floor["site"]
    live_floor(floor, MACHINES, net=73)
    ev = services.start_event(event(site, deadline_s=600).pk)
    pks = list(EventMachine.objects.filter(event=ev).values_list("pk", flat=True))
    from django.utils import timezone

    for _ in range(ROUNDS):
        EventMachine.objects.filter(event=ev).update(status="chosen", attempts=0, sent_at=None)
        wins, _ = race(CALLERS, lambda _i: [e.pk for e in services.claim(pks, "stop_mining", timezone.now())])
        claimed = [pk for got in wins for pk in got]
        assert sorted(claimed) == sorted(pks)
        assert set(EventMachine.objects.filter(event=ev).values_list("attempts", flat=True)) == {1}
