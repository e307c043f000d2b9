"""Watts on circuits and feeds: slots are assigned within the 80 % rule and the feed rating."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from capacity import errors, ledger
from capacity.models import Circuit, Slot
from tests.factories import CircuitFactory, FeedFactory, RackFactory, SlotFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rack():
    """One rack on a 2,500 kVA feed with a 240 V 30 A single-phase circuit (5,760 W usable)."""
    return RackFactory()


@pytest.fixture
def circuit(rack):
    return CircuitFactory(feed=rack.feed, voltage_v=240, breaker_amps=30, phases=1, power_factor=Decimal("1"))


def slots(rack, circuit, n):
    return [SlotFactory(rack=rack, circuit=circuit, position=i + 1) for i in range(n)]


def test_a_circuit_takes_machines_up_to_80_percent_and_refuses_the_next(rack, circuit):
    a, b, c = slots(rack, circuit, 3)
    ledger.assign_slot(a, watts=2_880, occupant="machine:1")
    ledger.assign_slot(b, watts=2_880, occupant="machine:2")  # 5,760 W: exactly the limit
    with pytest.raises(errors.CircuitOverloaded) as refused:
        ledger.assign_slot(c, watts=1, occupant="machine:3")
    assert refused.value.short_w == 1
    assert "5760 W usable" in str(refused.value)
    c.refresh_from_db()
    assert c.occupant is None
    assert c.allocated_w == 0
    assert Circuit.objects.with_load().get(pk=circuit.pk).load_w == 5_760


def test_a_second_occupant_in_a_slot_is_refused(rack, circuit):
    (slot,) = slots(rack, circuit, 1)
    ledger.assign_slot(slot, watts=1_000, occupant="machine:1")
    with pytest.raises(errors.SlotOccupied, match="already occupied by machine:1"):
        ledger.assign_slot(slot, watts=1_000, occupant="machine:2")
    slot.refresh_from_db()
    assert (slot.occupant, slot.allocated_w) == ("machine:1", 1_000)


def test_one_occupant_cannot_hold_two_slots(rack, circuit):
    a, b = slots(rack, circuit, 2)
    ledger.assign_slot(a, watts=1_000, occupant="machine:1")
    with pytest.raises(errors.SlotOccupied, match="machine:1 already occupies"):
        ledger.assign_slot(b, watts=1_000, occupant="machine:1")


def test_a_batch_is_all_or_nothing(rack, circuit):
    a, b, c = slots(rack, circuit, 3)
    requests = [ledger.SlotRequest(s.pk, 2_000, f"machine:{s.pk}") for s in (a, b, c)]  # 6,000 W > 5,760
    with pytest.raises(errors.CircuitOverloaded):
        ledger.assign_slots(requests)
    assert not Slot.objects.filter(occupant__isnull=False).exists()
    ledger.assign_slots(requests[:2])
    assert Slot.objects.filter(occupant__isnull=False).count() == 2


def test_releasing_a_slot_frees_its_watts(rack, circuit):
    a, b = slots(rack, circuit, 2)
    ledger.assign_slot(a, watts=5_760, occupant="machine:1")
    ledger.release_slots([a.pk])
    ledger.assign_slot(b, watts=5_760, occupant="machine:2")
    a.refresh_from_db()
    assert (a.occupant, a.allocated_w) == (None, 0)


def test_the_feed_rating_caps_all_its_circuits_together():
    # A 10 kVA feed with two 5,760 W circuits at PF 0.8: 4,000 W draws 5,000 VA on each.
    feed = FeedFactory(rating_kva=10)
    rack = RackFactory(site=feed.site, feed=feed)
    c1 = CircuitFactory(feed=feed, power_factor=Decimal("0.8"))
    c2 = CircuitFactory(feed=feed, power_factor=Decimal("0.8"))
    (s1,) = slots(rack, c1, 1)
    s2, s3 = (SlotFactory(rack=rack, circuit=c2, position=p) for p in (10, 11))
    ledger.assign_slot(s1, watts=4_000, occupant="machine:1")  # 5,000 VA
    ledger.assign_slot(s2, watts=4_000, occupant="machine:2")  # 10,000 VA: the rating
    with pytest.raises(errors.FeedOverloaded, match="10 kVA rating"):
        ledger.assign_slot(s3, watts=1, occupant="machine:3")


def test_a_circuit_cannot_be_derated_below_its_load(rack, circuit):
    (slot,) = slots(rack, circuit, 1)
    ledger.assign_slot(slot, watts=5_000, occupant="machine:1")
    circuit.breaker_amps = 20  # 3,840 W usable
    with pytest.raises(errors.CircuitOverloaded):
        ledger.save_circuit(circuit)
    assert Circuit.objects.get(pk=circuit.pk).breaker_amps == 30
    circuit.breaker_amps = 40
    ledger.save_circuit(circuit)
    assert Circuit.objects.get(pk=circuit.pk).usable_w == 7_680


def test_a_feed_cannot_be_derated_below_its_load(rack, circuit):
    (slot,) = slots(rack, circuit, 1)
    ledger.assign_slot(slot, watts=5_000, occupant="machine:1")
    feed = rack.feed
    feed.rating_kva = 4
    with pytest.raises(errors.FeedOverloaded):
        ledger.save_feed(feed)


def test_zero_or_negative_watts_are_refused(rack, circuit):
    (slot,) = slots(rack, circuit, 1)
    with pytest.raises(ValidationError):
        ledger.assign_slot(slot, watts=0, occupant="machine:1")


def test_database_constraints_back_the_slot_rules_up(rack, circuit):
    (slot,) = slots(rack, circuit, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(occupant="machine:1", allocated_w=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        SlotFactory(rack=rack, circuit=circuit, position=slot.position)
    with pytest.raises(IntegrityError), transaction.atomic():
        Circuit.objects.filter(pk=circuit.pk).update(power_factor=Decimal("0"))
