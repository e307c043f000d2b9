"""Writes on the commercial side: each locks the row it changes, checks the lifecycle and
books capacity through the ledger, all in one transaction. Admin actions, the API and the
tasks call these; nothing else changes a status."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from capacity import ledger
from capacity.models import Reservation, Slot
from hosting.lifecycle import IN_SLOT, OFF_FLOOR, ContractStatus, MachineStatus, check_contract_move, check_machine_move
from hosting.models import Contract, Machine, MachineEvent


class ServiceError(Exception):
    """A request the domain refuses for a reason other than the lifecycle or capacity."""

    code = "refused"


# --------------------------------------------------------------------------------------
# Contracts
# --------------------------------------------------------------------------------------


def sign_contract(contract: Contract, *, by=None, now: dt.datetime | None = None) -> Contract:
    """Book the contract's kW firm at its site (turning its hold firm if it has one)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Contract.objects.select_for_update().get(pk=contract.pk)
        check_contract_move(locked.status, ContractStatus.SIGNED)
        if locked.reservation is not None and locked.reservation.kind == Reservation.Kind.HOLD:
            reservation = ledger.firm_up(locked.reservation, reference=locked.reference, now=now)
        else:
            reservation = ledger.reserve(
                locked.site_id,
                it_kw=locked.it_kw,
                starts_on=locked.starts_on,
                ends_on=locked.ends_on,
                kind=Reservation.Kind.FIRM,
                reference=locked.reference,
                now=now,
            )
        locked.reservation = reservation
        locked.status = ContractStatus.SIGNED
        locked.signed_at = now
        locked.signed_by = by
        locked.save(update_fields=["reservation", "status", "signed_at", "signed_by"])
    return locked


def activate_contract(contract: Contract) -> Contract:
    with transaction.atomic():
        locked = Contract.objects.select_for_update().get(pk=contract.pk)
        check_contract_move(locked.status, ContractStatus.ACTIVE)
        locked.status = ContractStatus.ACTIVE
        locked.save(update_fields=["status"])
    return locked


def end_contract(contract: Contract, *, now: dt.datetime | None = None) -> Contract:
    """End a contract and give its capacity back; its machines must be off the floor first."""
    with transaction.atomic():
        locked = Contract.objects.select_for_update().get(pk=contract.pk)
        check_contract_move(locked.status, ContractStatus.ENDED)
        on_floor = locked.machines.filter(slot__isnull=False).count()
        if on_floor:
            raise ServiceError(f"Contract #{locked.pk} still has {on_floor} machine(s) in slots; unrack them first.")
        if locked.reservation is not None:
            ledger.release(locked.reservation, now=now)
        locked.status = ContractStatus.ENDED
        locked.save(update_fields=["status"])
    return locked


# --------------------------------------------------------------------------------------
# Machines
# --------------------------------------------------------------------------------------


def _record(machine: Machine, to_status: str, *, by, reason: str, now: dt.datetime, fields: list[str]) -> None:
    MachineEvent.objects.create(
        machine=machine, from_status=machine.status, to_status=to_status, at=now, by=by, reason=reason
    )
    machine.status = to_status
    machine.status_changed_at = now
    machine.save(update_fields=["status", "status_changed_at", *fields])


def transition(
    machine: Machine, to_status: str, *, by=None, reason: str = "", now: dt.datetime | None = None
) -> Machine:
    """Move a machine to another status, recording who, when and why.

    Racking needs a slot, so it goes through `rack_machine`; moving off the floor frees
    the slot in the ledger.
    """
    now = now or timezone.now()
    if to_status == MachineStatus.RACKED:
        raise ServiceError("Racking needs a slot: use rack_machine(machine, slot).")
    with transaction.atomic():
        locked = Machine.objects.select_for_update().get(pk=machine.pk)
        check_machine_move(locked.status, to_status)
        fields: list[str] = []
        if to_status in OFF_FLOOR and locked.slot_id is not None:
            ledger.release_slots([locked.slot_id])
            locked.slot = None
            fields.append("slot")
        if to_status in IN_SLOT and locked.slot_id is None:
            raise ServiceError(f"{locked} has no slot; it cannot be {to_status}.")
        _record(locked, to_status, by=by, reason=reason, now=now, fields=fields)
    return locked


def rack_machine(machine: Machine, slot: Slot, *, by=None, reason: str = "", now: dt.datetime | None = None) -> Machine:
    """Put a received machine into a free slot of its contract's site, within circuit limits."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Machine.objects.select_for_update().select_related("model", "contract").get(pk=machine.pk)
        check_machine_move(locked.status, MachineStatus.RACKED)
        slot_site_id = Slot.objects.values_list("rack__site_id", flat=True).get(pk=slot.pk)
        if slot_site_id != locked.contract.site_id:
            raise ServiceError(f"Slot {slot} is not at the site of {locked}'s contract.")
        ledger.assign_slot(slot.pk, watts=locked.model.nameplate_power_w, occupant=locked.occupant_ref)
        locked.slot_id = slot.pk
        _record(locked, MachineStatus.RACKED, by=by, reason=reason or f"racked in {slot}", now=now, fields=["slot"])
    return locked


def rack_anywhere(machine: Machine, *, by=None, attempts: int = 3) -> Machine:
    """Rack a received machine into the first free slot that fits at its contract's site."""
    for _ in range(attempts):
        slot = ledger.find_free_slot(machine.contract.site_id, machine.model.nameplate_power_w)
        if slot is None:
            raise ServiceError(f"No free slot with circuit headroom for {machine} at {machine.contract.site}.")
        try:
            return rack_machine(machine, slot, by=by)
        except ledger.LedgerError:
            continue  # taken meanwhile: look again
    raise ServiceError(f"Could not rack {machine}: slots kept being taken; try again.")
