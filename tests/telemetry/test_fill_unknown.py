"""Unknown windows: an interval no poll answered is written down as unknown (reachable NULL)
for every machine watched then, never over a window a poll wrote, once, however many
accounting runs race for it."""

import datetime as dt

import pytest

from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.telemetry import services_store, storage
from hosting.telemetry.models import TelemetryPolicy, Window
from hosting.telemetry.services_store import fill_unknown, policy_for
from tests.factories import ContractFactory, MachineFactory, SlotFactory
from tests.races import Concurrent, race, run_before
from tests.telemetry.store_world import INTERVAL_S, STEP, T0, accounting_from, live_machines, window

GRACE_S = 60
AFTER_THREE = T0 + 3 * STEP + dt.timedelta(seconds=GRACE_S)  # T0, T0+5, T0+10 are due; T0+15 is not


def _rows(site) -> dict:
    return {(w.machine_id, w.start): w.reachable for w in Window.objects.filter(site_id=site.pk)}


@pytest.mark.django_db
def test_first_use_starts_at_the_current_interval_without_backfill(floor):
    live_machines(floor, 2)
    site = floor["site"]

    assert fill_unknown(site, T0 + dt.timedelta(minutes=7, seconds=12)) == 0

    policy = TelemetryPolicy.objects.get(site=site)
    assert policy.filled_until == T0 + STEP  # the interval under way
    assert policy.hours_rolled_until == T0
    assert policy.days_rolled_until == T0.date()
    assert not Window.objects.exists()


@pytest.mark.django_db
def test_unknowns_for_watched_machines_only_and_never_over_a_poll(floor):
    site = floor["site"]
    polled, silent = live_machines(floor, 2)
    (late,) = live_machines(floor, 1, since=T0 + dt.timedelta(minutes=7))  # live from the third window
    (not_live,) = live_machines(floor, 1)
    Machine.objects.filter(pk=not_live.pk).update(status=MachineStatus.RACKED)
    slot = SlotFactory()  # another site's live machine is that site's business
    MachineFactory(contract=ContractFactory(site=slot.rack.site), slot=slot, ip="10.9.9.9",
                   status=MachineStatus.LIVE, status_changed_at=T0 - STEP)  # fmt: skip
    accounting_from(site, T0)
    storage.write_windows([window(polled, T0)])

    written = fill_unknown(site, AFTER_THREE, grace_s=GRACE_S)

    assert _rows(site) == {
        (polled.pk, T0): True, (polled.pk, T0 + STEP): None, (polled.pk, T0 + 2 * STEP): None,
        (silent.pk, T0): None, (silent.pk, T0 + STEP): None, (silent.pk, T0 + 2 * STEP): None,
        (late.pk, T0 + 2 * STEP): None,
    }  # fmt: skip
    assert written == 6
    assert TelemetryPolicy.objects.get(site=site).filled_until == T0 + 3 * STEP
    assert not Window.objects.exclude(site_id=site.pk).exists()
    unknown = Window.objects.get(machine=silent, start=T0)
    assert (unknown.contract_id, unknown.machine_status, unknown.power_w) == (silent.contract_id, "live", None)


@pytest.mark.django_db
def test_an_interval_within_its_grace_waits_for_its_poll(floor):
    live_machines(floor, 1)
    site = floor["site"]
    accounting_from(site, T0)

    assert fill_unknown(site, T0 + STEP + dt.timedelta(seconds=GRACE_S - 1), grace_s=GRACE_S) == 0
    assert TelemetryPolicy.objects.get(site=site).filled_until == T0

    assert fill_unknown(site, T0 + STEP + dt.timedelta(seconds=GRACE_S), grace_s=GRACE_S) == 1


@pytest.mark.django_db
def test_running_twice_writes_nothing_more_and_a_late_poll_replaces_an_unknown(floor):
    (machine,) = live_machines(floor, 1)
    site = floor["site"]
    accounting_from(site, T0)
    assert fill_unknown(site, AFTER_THREE, grace_s=GRACE_S) == 3

    assert fill_unknown(site, AFTER_THREE, grace_s=GRACE_S) == 0
    storage.write_windows([window(machine, T0 + STEP)])

    assert _rows(site) == {(machine.pk, T0): None, (machine.pk, T0 + STEP): True, (machine.pk, T0 + 2 * STEP): None}


@pytest.mark.django_db
def test_a_long_gap_is_filled_over_several_transactions(floor):
    (machine,) = live_machines(floor, 1)
    site = floor["site"]
    accounting_from(site, T0)

    written = fill_unknown(site, T0 + dt.timedelta(hours=3), grace_s=0)

    assert written == 36 > services_store.INTERVALS_PER_TRANSACTION
    assert Window.objects.filter(machine=machine, reachable__isnull=True).count() == 36


@pytest.mark.django_db
def test_a_changed_interval_goes_on_from_the_next_aligned_start(floor):
    live_machines(floor, 1)
    site = floor["site"]
    accounting_from(site, T0 + dt.timedelta(minutes=1), interval_s=INTERVAL_S)  # was a 60 s interval

    fill_unknown(site, T0 + 2 * STEP, grace_s=0)

    assert sorted(s for _, s in _rows(site)) == [T0 + STEP]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_accounting_writes_each_unknown_once(floor):
    machines = live_machines(floor, 5)
    site = floor["site"]
    accounting_from(site, T0)

    results, _ = race(2, lambda _: fill_unknown(site, AFTER_THREE, grace_s=GRACE_S))

    assert sorted(results) == [0, 15]  # one did the work under the policy's lock; the other found it done
    assert Window.objects.filter(reachable__isnull=True).count() == 15
    assert policy_for(site).filled_until == T0 + 3 * STEP
    assert len({(w.machine_id, w.start) for w in Window.objects.all()}) == 15 == len(machines) * 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_accounting_run_waits_for_the_first_ones_lock(floor):
    live_machines(floor, 2)
    site = floor["site"]
    accounting_from(site, T0)
    second: list[Concurrent] = []

    def start_the_second_while_the_first_holds_the_lock(*_args):
        if not second:
            second.append(Concurrent(lambda: fill_unknown(site, AFTER_THREE, grace_s=GRACE_S)))
            second[0].wait_until_blocked()

    with run_before("hosting.telemetry.services_store._write_unknown", start_the_second_while_the_first_holds_the_lock):
        first = fill_unknown(site, AFTER_THREE, grace_s=GRACE_S)

    assert (first, second[0].result()) == (6, 0)
