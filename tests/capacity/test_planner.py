"""The planner spreads machines within circuit and feed limits; plans are free, applying books."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from capacity import errors, ledger, planner
from capacity.models import Circuit, Site, Slot
from tests.factories import CircuitFactory, FeedFactory, RackFactory, SiteFactory, SlotFactory

pytestmark = pytest.mark.django_db

S19 = 3_250  # W


def hall(circuits=3, slots_per_circuit=4, feed_kva=2500, **circuit):
    """A site with one feed and `circuits` 240 V 60 A single-phase circuits (11,520 W: 3 S19s)."""
    site = SiteFactory()
    feed = FeedFactory(site=site, rating_kva=feed_kva)
    rack = RackFactory(site=site, feed=feed)
    made = []
    position = 0
    for _ in range(circuits):
        c = CircuitFactory(feed=feed, **{"voltage_v": 240, "breaker_amps": 60, **circuit})
        made.append(c)
        for _ in range(slots_per_circuit):
            position += 1
            SlotFactory(rack=rack, circuit=c, position=position)
    return site, made


def floor_of(site):
    return planner.load_floors([site])[site.pk]


def test_a_plan_spreads_machines_evenly_and_within_the_80_percent_rule():
    site, circuits = hall()
    result = planner.plan(floor_of(site), S19, 6)
    assert result.per_circuit == {c.pk: 2 for c in circuits}
    # Each circuit takes 3 S19s by watts (11,520 // 3,250) though it has 4 slots.
    full = planner.plan(floor_of(site), S19, 20)
    assert (full.placed, full.unplaced) == (9, 11)
    assert all(n == 3 for n in full.per_circuit.values())


def test_a_plan_fills_the_least_loaded_circuits_first():
    site, (busy, _, _) = hall(circuits=3)
    slot = Slot.objects.filter(circuit=busy).first()
    ledger.assign_slot(slot, watts=6_000, occupant="machine:x")
    result = planner.plan(floor_of(site), S19, 2)
    assert busy.pk not in result.per_circuit
    assert result.circuits == 2


def test_a_plan_keeps_each_feed_within_its_rating():
    # A 10 kVA feed at PF 1 takes three S19s (9,750 VA) though its circuits take nine.
    site, _ = hall(feed_kva=10, power_factor=Decimal("1.00"))
    result = planner.plan(floor_of(site), S19, 9)
    assert result.placed == 3
    assert floor_of(site).placeable(S19) == 3


def test_planning_reads_nothing_and_writes_nothing():
    site, _ = hall()
    floor = floor_of(site)
    with CaptureQueriesContext(connection) as queries:
        planner.plan(floor, S19, 9)
    assert len(queries) == 0
    assert not Slot.objects.filter(occupant__isnull=False).exists()


def test_applying_a_plan_books_its_slots_balancing_the_legs():
    site = SiteFactory()
    rack = RackFactory(site=site)
    three_phase = CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100)  # 54 kW
    slots = [SlotFactory(rack=rack, circuit=three_phase, position=p) for p in range(1, 10)]
    result = planner.plan(floor_of(site), S19, 3)
    booked = planner.apply(result, ["machine:1", "machine:2", "machine:3"])
    legs = {(s.position - 1) % 3 for s in booked}
    assert legs == {0, 1, 2}  # one machine on each leg, not three on the first
    assert Circuit.objects.with_load().get(pk=three_phase.pk).load_w == 3 * S19
    assert len(slots) == 9


def test_apply_refuses_when_the_floor_changed_under_the_plan():
    site, circuits = hall(circuits=1, slots_per_circuit=3)
    stale_plan = planner.plan(floor_of(site), S19, 3)
    ledger.assign_slot(Slot.objects.filter(circuit=circuits[0]).first(), watts=S19, occupant="machine:first")
    with pytest.raises(errors.LedgerError):
        planner.apply(stale_plan, ["machine:1", "machine:2", "machine:3"])


def test_cached_floors_follow_the_floor_version():
    site, circuits = hall(circuits=1, slots_per_circuit=3)
    before = planner.floors([Site.objects.get(pk=site.pk)])[site.pk]
    assert before.placeable(S19) == 3
    ledger.assign_slot(Slot.objects.filter(circuit=circuits[0]).first(), watts=S19, occupant="machine:first")
    with CaptureQueriesContext(connection) as queries:
        planner.floors([Site.objects.get(pk=site.pk)])  # version moved: reloaded
    assert len(queries) == 3
    fresh = Site.objects.get(pk=site.pk)
    assert planner.floors([fresh])[site.pk].placeable(S19) == 2
    with CaptureQueriesContext(connection) as queries:
        planner.floors([fresh])
    assert len(queries) == 0  # unchanged: from the cache


def test_the_standard_circuit_gives_the_footprint():
    site, _ = hall(circuits=5, slots_per_circuit=4)
    floor = floor_of(site)
    assert floor.circuits_for(S19, 10) == 4  # 3 S19s per 11,520 W circuit
    assert floor.circuits_for(2_000, 10) == 3  # 4 slots per circuit bind first
