"""Writes on the commercial side: each locks the row it changes, checks the lifecycle and
books capacity through the ledger, all in one transaction. Admin actions, the API and the
tasks call these; nothing else changes a status."""

import datetime as dt
import ipaddress
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from capacity import ledger, planner
from capacity.errors import Refusal
from capacity.models import BULK_BATCH_SIZE, Reservation, Slot
from changelog import record as changes
from hosting import leases
from hosting.lifecycle import IN_SLOT, OFF_FLOOR, ContractStatus, MachineStatus, check_contract_move, check_machine_move
from hosting.models import Contract, Machine, MachineEvent

machines_racked = Signal()
"""Sent after commit with `machine_ids`, `by` and `commission` (True, False or None: as each
site's policy says) when machines were racked. Commissioning listens; the services do not
know who."""


machines_addressed = Signal()
"""Sent after commit with `machine_ids` and `by` when machines got an IP (or another one).
Commissioning starts the self-test of a racked machine that was waiting for its address."""


machines_moved = Signal()
"""Sent after commit with `to_status`, `at`, `by` and `moves` (a list of (machine_id,
from_status, reason)) whenever machines change status — one machine or a whole bulk move
(racking, commissioning verdicts, curtailment). Webhooks listen; the services do not know who."""


def _racked_on_commit(machine_ids: list[int], *, by, commission: bool | None) -> None:
    transaction.on_commit(
        lambda: machines_racked.send(sender=Machine, machine_ids=machine_ids, by=by, commission=commission)
    )


class ServiceError(Refusal):
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


def describe_machine(machine: Machine) -> str:
    """A machine in the change log's bulk entries: its serial (its model would cost a query)."""
    return f"machine {machine.serial}"


def move_machines(
    machines: Sequence[Machine],
    to_status: str,
    *,
    now: dt.datetime,
    by=None,
    reason: str | Callable[[Machine], str] = "",
    fields: Sequence[str] = (),
) -> None:
    """Move machines the caller has locked: check each move against the lifecycle, record
    one event each (who, when, why: `reason` or `reason(machine)`), save the new status and
    any other `fields` the caller changed. Every status change goes through here."""
    for machine in machines:
        check_machine_move(machine.status, to_status)
    reason_of = reason if callable(reason) else lambda _machine: reason
    moves = [(m.pk, m.status, reason_of(m)) for m in machines]
    MachineEvent.objects.bulk_create(
        [
            MachineEvent(machine=m, from_status=from_status, to_status=to_status, at=now, by=by, reason=why)
            for m, (_, from_status, why) in zip(machines, moves, strict=True)
        ],
        batch_size=BULK_BATCH_SIZE,
    )
    for machine in machines:
        machine.status = to_status
        machine.status_changed_at = now
    changes.bulk_update(
        machines,
        ["status", "status_changed_at", *fields],
        via="services.move_machines",
        batch_size=BULK_BATCH_SIZE,
        describe=describe_machine,
    )
    if moves:
        transaction.on_commit(
            lambda: machines_moved.send(sender=Machine, moves=moves, to_status=to_status, at=now, by=by)
        )


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
        move_machines([locked], to_status, by=by, reason=reason, now=now, fields=fields)
    return locked


def rack_machine(
    machine: Machine,
    slot: Slot,
    *,
    by=None,
    reason: str = "",
    now: dt.datetime | None = None,
    commission=None,
    ip: str | None = None,
) -> Machine:
    """Put a received machine into a free slot of its contract's site, within circuit limits,
    with the IP staff gave it there (or none yet: it waits for one before its self-test).

    Once committed, `machines_racked` tells whoever listens (commissioning starts a
    self-test if `commission` is True, or if the site's policy says so when it is None)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Machine.objects.select_for_update().select_related("model", "contract").get(pk=machine.pk)
        check_machine_move(locked.status, MachineStatus.RACKED)
        fields = ["slot"]
        if ip:
            locked.ip = _free_ip(ip, locked.contract.site_id, [locked.pk])
            fields.append("ip")
        slot_site_id = Slot.objects.values_list("rack__site_id", flat=True).get(pk=slot.pk)
        if slot_site_id != locked.contract.site_id:
            raise ServiceError(f"Slot {slot} is not at the site of {locked}'s contract.")
        ledger.assign_slot(slot.pk, watts=locked.model.nameplate_power_w, occupant=locked.occupant_ref)
        locked.slot_id = slot.pk
        reason = reason or f"racked in {slot}"
        move_machines([locked], MachineStatus.RACKED, by=by, reason=reason, now=now, fields=fields)
        _racked_on_commit([locked.pk], by=by, commission=commission)
    return locked


def rack_machines(
    machines,
    *,
    by=None,
    reason: str = "",
    now: dt.datetime | None = None,
    commission=None,
    ips: Mapping[int, str] | None = None,
) -> list[Machine]:
    """Rack received machines into free slots the planner chooses, spreading the load, each
    with the IP staff gave it (`ips` by machine id; one without waits for its address).

    All or none: if the built floor cannot take every machine, or an IP is not free,
    nothing moves and the error says why.
    """
    ips = {pk: ip for pk, ip in (ips or {}).items() if ip}
    now = now or timezone.now()
    with transaction.atomic():
        locked = list(
            Machine.objects.select_for_update(of=("self",))
            .select_related("model", "contract__site")
            .filter(pk__in=[m.pk for m in machines])
            .order_by("pk")
        )
        for machine in locked:
            check_machine_move(machine.status, MachineStatus.RACKED)
        fields = ["slot"]
        if ips:
            fields.append("ip")
            if len(set(ips.values())) < len(ips):
                raise ServiceError("Two machines were given the same IP.")
            for machine in locked:
                if machine.pk in ips:
                    machine.ip = _free_ip(ips[machine.pk], machine.contract.site_id, [m.pk for m in locked])
        groups: dict[tuple, list[Machine]] = defaultdict(list)
        for machine in locked:
            groups[(machine.contract.site, machine.model.nameplate_power_w)].append(machine)
        for (site, watts), group in groups.items():
            floor = planner.load_floors([site])[site.pk]  # fresh: we are about to book
            placement = planner.plan(floor, watts, len(group))
            if placement.unplaced:
                raise ServiceError(
                    f"Only {placement.placed} of {len(group)} machines of {watts} W fit on the built floor of {site}."
                )
            slots = planner.apply(placement, [m.occupant_ref for m in group])
            for machine, slot in zip(group, slots, strict=True):
                machine.slot = slot
        why: str | Callable[[Machine], str] = reason
        if not reason:  # "racked in <slot>", each slot's label read in one query
            labels = Slot.objects.select_related("rack__site").in_bulk([m.slot_id for m in locked])
            why = lambda m: f"racked in {labels[m.slot_id]}"  # noqa: E731
        move_machines(locked, MachineStatus.RACKED, by=by, reason=why, now=now, fields=fields)
        ids = [m.pk for m in locked]
        _racked_on_commit(ids, by=by, commission=commission)
    return locked


# --------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------

ON_THE_FLOOR = tuple(s for s in MachineStatus if s not in OFF_FLOOR)  # racked, testing, live, failed


def _free_ip(ip: str, site_id: int, exclude: Sequence[int]) -> str:
    """`ip` as an IPv4 address no other machine on the floor of the site holds."""
    try:
        ip = str(ipaddress.IPv4Address(str(ip).strip()))
    except ValueError:
        raise ServiceError(f"{ip!r} is not an IPv4 address.") from None
    holder = (
        Machine.objects.filter(contract__site_id=site_id, ip=ip, status__in=ON_THE_FLOOR)
        .exclude(pk__in=exclude)
        .first()
    )
    if holder is not None:
        raise ServiceError(f"{ip} is already the address of {holder} at this site.")
    return ip


@dataclass
class Addressing:
    """What giving addresses by MAC did: machines given a (new) IP, and what was left alone."""

    addressed: list[Machine] = field(default_factory=list)
    unchanged: int = 0
    unknown_macs: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def assign_ips(site_id: int, ip_by_mac: Mapping[str, str], *, by=None) -> Addressing:
    """Give the site's machines the IPs its DHCP server leased them, matched by MAC (a lease
    list import). Machines off the floor keep theirs until racked; an IP another machine of
    the site keeps is a conflict, left alone. Once committed, `machines_addressed` lets a
    racked machine that waited for its address start its self-test."""
    result = Addressing()
    macs = list(ip_by_mac)
    with transaction.atomic():
        machines = {
            m.mac: m
            for m in Machine.objects.select_for_update(of=("self",))
            .filter(contract__site_id=site_id, mac__in=macs)
            .exclude(status__in=[MachineStatus.RETURNED])
            .order_by("pk")
        }
        result.unknown_macs = [mac for mac in macs if mac not in machines]
        changing = {m.pk: ip_by_mac[mac] for mac, m in machines.items() if m.ip != ip_by_mac[mac]}
        result.unchanged = len(machines) - len(changing)
        held = dict(
            Machine.objects.filter(contract__site_id=site_id, ip__in=set(changing.values()), status__in=ON_THE_FLOOR)
            .exclude(pk__in=changing)
            .values_list("ip", "serial")
        )
        for machine in machines.values():
            ip = changing.get(machine.pk)
            if ip is None:
                continue
            if ip in held:
                result.conflicts.append(f"{machine.serial}: {ip} is held by {held[ip]}")
                continue
            machine.ip = ip
            result.addressed.append(machine)
        changes.bulk_update(
            result.addressed, ["ip"], via="services.assign_ips", batch_size=BULK_BATCH_SIZE, describe=describe_machine
        )
        ids = [m.pk for m in result.addressed]
        if ids:
            transaction.on_commit(lambda: machines_addressed.send(sender=Machine, machine_ids=ids, by=by))
    return result


def set_ip(machine: Machine, ip: str | None, *, by=None) -> Machine:
    """Give one machine its IP by hand (or take it away); a racked machine waiting for its
    address then starts its self-test (`machines_addressed`, after commit)."""
    with transaction.atomic():
        locked = Machine.objects.select_for_update().select_related("contract").get(pk=machine.pk)
        new = _free_ip(ip, locked.contract.site_id, [locked.pk]) if ip else None
        if new == locked.ip:
            return locked
        locked.ip = new
        locked.save(update_fields=["ip"])
        if new:
            transaction.on_commit(lambda: machines_addressed.send(sender=Machine, machine_ids=[locked.pk], by=by))
    return locked


def import_leases(site, content: bytes, *, by=None) -> str:
    """Read a site's DHCP lease list and address its machines by MAC; a one-line account of it."""
    parsed = leases.parse(content.decode("utf-8", errors="replace"))
    done = assign_ips(site.pk, parsed.ip_by_mac, by=by)
    parts = [f"{len(done.addressed)} machine(s) given an IP", f"{done.unchanged} unchanged"]
    if done.unknown_macs:
        parts.append(f"{len(done.unknown_macs)} MAC(s) not of this site's machines")
    parts += done.conflicts[:5] + parsed.problems[:5]
    return f"{site.name}: " + "; ".join(parts) + "."
