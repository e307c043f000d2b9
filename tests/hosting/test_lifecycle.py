"""Every machine status change, legal and illegal, through the one service that applies them."""

import itertools

import pytest
from django.db import IntegrityError, transaction

from capacity import errors, ledger
from hosting import services
from hosting.lifecycle import (
    CONTRACT_TRANSITIONS,
    IN_SLOT,
    MACHINE_TRANSITIONS,
    IllegalTransition,
    MachineStatus,
    check_contract_move,
    check_machine_move,
)
from hosting.models import Machine, MachineEvent
from tests.factories import CircuitFactory, ContractFactory, MachineFactory, RackFactory, SlotFactory, StaffFactory

pytestmark = pytest.mark.django_db

S = MachineStatus
ALL = list(S.values)
PAIRS = list(itertools.product(ALL, ALL))


def test_the_table_covers_every_status_and_only_statuses():
    assert set(MACHINE_TRANSITIONS) == set(ALL)
    assert all(targets <= set(ALL) for targets in MACHINE_TRANSITIONS.values())


def test_a_machine_only_goes_live_through_testing_or_back_from_curtailment():
    assert [s for s, targets in MACHINE_TRANSITIONS.items() if S.LIVE in targets] == [S.TESTING, S.CURTAILED]
    assert [s for s, targets in MACHINE_TRANSITIONS.items() if S.CURTAILED in targets] == [S.LIVE]


@pytest.mark.parametrize(("current", "requested"), PAIRS)
def test_the_pure_check_allows_exactly_the_table(current, requested):
    if requested in MACHINE_TRANSITIONS[current]:
        check_machine_move(current, requested)
    else:
        with pytest.raises(IllegalTransition) as refused:
            check_machine_move(current, requested)
        assert f"cannot go from {current} to {requested}" in str(refused.value)


@pytest.mark.parametrize(("current", "requested"), list(itertools.product(CONTRACT_TRANSITIONS, CONTRACT_TRANSITIONS)))
def test_contract_moves_follow_their_table(current, requested):
    if requested in CONTRACT_TRANSITIONS[current]:
        check_contract_move(current, requested)
    else:
        with pytest.raises(IllegalTransition):
            check_contract_move(current, requested)


@pytest.fixture
def site_with_slots():
    rack = RackFactory()
    circuit = CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100)
    return rack, [SlotFactory(rack=rack, circuit=circuit, position=i + 1) for i in range(3)]


def machine_in(status, rack, slot):
    """A machine placed directly in `status` (slot booked through the ledger where it needs one)."""
    contract = ContractFactory(site=rack.site)
    machine = MachineFactory(contract=contract)
    if status in IN_SLOT or status == S.FAILED:
        ledger.assign_slot(slot, watts=machine.model.nameplate_power_w, occupant=machine.occupant_ref)
        machine.slot = slot
    machine.status = status
    machine.save()
    return machine


@pytest.mark.parametrize(("current", "requested"), PAIRS)
def test_every_transition_through_the_service(site_with_slots, current, requested):
    rack, (slot, spare, _) = site_with_slots
    machine = machine_in(current, rack, slot)
    staff = StaffFactory()
    legal = requested in MACHINE_TRANSITIONS[current]
    if requested == S.RACKED:
        move = lambda: services.rack_machine(machine, spare, by=staff, reason="test")  # noqa: E731
    else:
        move = lambda: services.transition(machine, requested, by=staff, reason="test")  # noqa: E731

    if not legal:
        with pytest.raises(IllegalTransition):
            move()
        machine.refresh_from_db()
        assert machine.status == current
        assert not MachineEvent.objects.filter(machine=machine).exists()
        return

    moved = move()
    machine.refresh_from_db()
    assert machine.status == requested == moved.status
    event = MachineEvent.objects.get(machine=machine)
    assert (event.from_status, event.to_status, event.by, event.reason) == (current, requested, staff, "test")
    if requested in IN_SLOT:
        assert machine.slot is not None
        assert machine.slot.occupant == machine.occupant_ref
    if requested in (S.RECEIVED, S.RMA, S.RETURNED):
        assert machine.slot is None
        slot.refresh_from_db()
        assert slot.occupant is None  # the ledger freed the watts too


def test_racking_needs_the_slot_service():
    machine = MachineFactory(status=S.RECEIVED)
    with pytest.raises(services.ServiceError, match="rack_machine"):
        services.transition(machine, S.RACKED)


def test_racking_into_an_occupied_slot_is_refused_and_changes_nothing(site_with_slots):
    rack, (slot, *_) = site_with_slots
    first = MachineFactory(contract=ContractFactory(site=rack.site), status=S.RECEIVED)
    second = MachineFactory(contract=first.contract, status=S.RECEIVED)
    services.rack_machine(first, slot)
    with pytest.raises(errors.SlotOccupied):
        services.rack_machine(second, slot)
    second.refresh_from_db()
    assert (second.status, second.slot) == (S.RECEIVED, None)
    assert not second.events.exists()


def test_racking_at_another_site_is_refused(site_with_slots):
    _, (slot, *_) = site_with_slots
    machine = MachineFactory(status=S.RECEIVED)  # its contract is at some other site
    with pytest.raises(services.ServiceError, match="not at the site"):
        services.rack_machine(machine, slot)


def test_the_database_refuses_inconsistent_status_and_slot(site_with_slots):
    rack, (slot, *_) = site_with_slots
    machine = MachineFactory(status=S.RECEIVED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Machine.objects.filter(pk=machine.pk).update(status=S.LIVE)  # live without a slot
    machine_in_slot = machine_in(S.RACKED, rack, slot)
    with pytest.raises(IntegrityError), transaction.atomic():
        Machine.objects.filter(pk=machine_in_slot.pk).update(status=S.RETURNED)  # returned, still in a slot
    with pytest.raises(IntegrityError), transaction.atomic():
        Machine.objects.filter(pk=machine.pk).update(slot=slot)  # two machines, one slot


def test_rack_machines_places_a_batch_through_the_planner(site_with_slots):
    rack, slots = site_with_slots
    contract = ContractFactory(site=rack.site)
    machines = [MachineFactory(contract=contract, status=S.RECEIVED) for _ in slots]
    racked = services.rack_machines(machines, by=StaffFactory(), reason="batch")
    assert {m.status for m in racked} == {S.RACKED}
    assert {m.slot_id for m in racked} == {s.pk for s in slots}
    for machine in racked:
        machine.refresh_from_db()
        assert machine.slot.occupant == machine.occupant_ref
        assert machine.events.get().to_status == S.RACKED


def test_rack_machines_is_all_or_nothing_when_the_floor_is_short(site_with_slots):
    rack, slots = site_with_slots
    contract = ContractFactory(site=rack.site)
    machines = [MachineFactory(contract=contract, status=S.RECEIVED) for _ in range(len(slots) + 1)]
    with pytest.raises(services.ServiceError, match=f"Only {len(slots)} of {len(slots) + 1} machines"):
        services.rack_machines(machines)
    assert not Machine.objects.filter(slot__isnull=False).exists()
    assert not MachineEvent.objects.exists()
