"""Shipping help for tenants: the packing-list template and the model list they fill it
from, and changing their mind about machines that have not arrived yet — correcting a
serial, MAC or model, or cancelling the machine.

An edit obeys the packing list's rules (`hosting.packing.row_problems`: the same lengths,
serial and MAC spelling, catalog names; no serial or MAC of another machine still with
us, which the partial unique constraints of migration 0007 also hold; the contract's kW).
A cancel is a lifecycle move (`cancelled`, final): the machine holds no slot before it
arrives, so nothing in the ledger moves; it frees its serial, its MAC and its place in the
contract's kW. Both only while the machine is announced or in transit, checked under the
machine's row lock: once it is received it is in the site's hands.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from hosting import packing, services
from hosting.lifecycle import AWAITING_ARRIVAL, GONE, MachineStatus
from hosting.models import Contract, Machine, MachineModel, Shipment

# The packing-list template: exactly the columns `packing.parse` reads, and one example row.
TEMPLATE_HEADER: tuple[str, ...] = (*packing.COLUMNS, *packing.OPTIONAL)
TEMPLATE_EXAMPLE: tuple[str, ...] = ("YNAHD4BBAJABC0123", "02:1a:2b:3c:4d:5e", "antminer-s19-xp", "", "pallet 1")

MODEL_LIST_HEADER = (
    "model",
    "name",
    "vendor",
    "nominal_ths",
    "nameplate_w",
    "efficiency_j_per_th",
    "hashboards",
    "fans",
    "also_accepted",
)


def template_rows() -> list[tuple[str, ...]]:
    return [TEMPLATE_EXAMPLE]


def model_list_rows() -> Iterator[tuple]:
    """The catalog as a packing list accepts it: the slug to write in the model column, the
    name (also accepted, as is what pyasic reports) and the nameplate figures."""
    for m in MachineModel.objects.order_by("vendor", "name"):
        yield (
            m.slug,
            m.name,
            m.get_vendor_display(),
            m.nominal_hashrate_ths,
            m.nameplate_power_w,
            m.efficiency_j_per_th,
            m.hashboards,
            m.fans,
            m.pyasic_model,
        )


class NotEditable(services.ServiceError):
    """The machine is past the point a tenant may change or cancel it (it has arrived)."""

    code = "not_editable"


class EditInvalid(services.ServiceError):
    """The edit breaks a packing-list rule; `errors` says which field and why."""

    code = "invalid"

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(" ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))


@dataclass(frozen=True)
class Edit:
    serial: str
    mac: str
    model: str  # slug, name or pyasic name, as in a packing list
    notes: str = ""


def not_editable_message(machine: Machine, what: str) -> str:
    return (
        f"{machine} is {machine.get_status_display().lower()}: it can be {what} only before it arrives "
        "(announced or in transit). Ask Haven staff instead."
    )


def _check_awaiting(machine: Machine, what: str) -> None:
    if machine.status not in AWAITING_ARRIVAL:
        raise NotEditable(not_editable_message(machine, what))


def edit_machine(machine: Machine, edit: Edit) -> Machine:
    """Correct an announced (or in-transit) machine's serial, MAC, model or notes.

    Raises EditInvalid (by field) when the values break a packing-list rule or another
    machine holds the serial or MAC — also when that other machine registered it a moment
    ago, in a transaction that overlapped ours (the unique constraint decides; never a 500)
    — and NotEditable once the machine has arrived."""
    row = packing.Row(0, edit.serial.strip(), edit.mac.strip(), edit.model.strip(), notes=edit.notes.strip())
    problems = packing.row_problems(row, packing.models_by_name())
    if problems:
        raise EditInvalid(_by_field(problems))
    assert row.machine_model is not None
    with transaction.atomic():
        # Contract, then machine: the order import_list takes them in (one list or edit at a
        # time per contract, so its kW check holds).
        contract = Contract.objects.select_for_update().get(pk=machine.contract_id)
        locked = Machine.objects.select_for_update().select_related("model").get(pk=machine.pk)
        _check_awaiting(locked, "edited")
        errors = _taken(locked, row)
        if row.machine_model.pk != locked.model_id:
            errors |= _within_contract(contract, locked, row.machine_model)
        if errors:
            raise EditInvalid(errors)
        locked.serial, locked.mac, locked.model, locked.notes = row.serial, row.mac, row.machine_model, row.notes
        try:
            with transaction.atomic():  # a savepoint: the constraint may refuse a clash we could not see
                locked.save(update_fields=["serial", "mac", "model", "notes"])
        except IntegrityError:
            raise EditInvalid(
                _taken(locked, row, fresh=True)
                or {"__all__": ["Another machine took this serial or MAC at the same moment; check and try again."]}
            ) from None
    return locked


def _taken(machine: Machine, row: packing.Row, *, fresh: bool = False) -> dict[str, list[str]]:
    """The serial or MAC another machine still with us holds (a committed one; with `fresh`,
    read again after the constraint refused us — it may still be uncommitted, then nothing)."""
    others = Machine.objects.on_hand().exclude(pk=machine.pk)
    errors: dict[str, list[str]] = {}
    if others.filter(serial=row.serial).exists():
        errors["serial"] = [f"{row.serial} is already registered"]
    if others.filter(mac=row.mac).exists():
        errors["mac"] = [f"{row.mac} is already registered"]
    return errors


def _within_contract(contract: Contract, machine: Machine, model: MachineModel) -> dict[str, list[str]]:
    """A new model must still fit the contract's kW at nameplate with its other machines."""
    others = (
        contract.machines.exclude(status__in=sorted(GONE))
        .exclude(pk=machine.pk)
        .aggregate(w=Sum("model__nameplate_power_w"))["w"]
        or 0
    )
    allowed = int(contract.it_kw * 1000)
    if others + model.nameplate_power_w <= allowed:
        return {}
    over = (others + model.nameplate_power_w - allowed) / 1000
    message = f"{model} draws {model.nameplate_power_w:,} W: {over:,.1f} kW more than contract #{contract.pk}'s"
    return {"model": [f"{message} {contract.it_kw:,} kW allow"]}


def _by_field(problems: list[packing.Problem]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for p in problems:
        errors.setdefault(p.column or "__all__", []).append(p.message)
    return errors


def cancel_machine(machine: Machine, *, by=None, reason: str = "") -> Machine:
    """Call off a machine that has not arrived: a final lifecycle move, recorded with who and
    why. It held no slot (off the floor), so the ledger is untouched; its serial, MAC and
    kW are free again. NotEditable once it has arrived."""
    with transaction.atomic():
        locked = Machine.objects.select_for_update().get(pk=machine.pk)
        _check_awaiting(locked, "cancelled")
        why = reason.strip() or "cancelled by the tenant before arrival"
        return services.transition(locked, MachineStatus.CANCELLED, by=by, reason=why)


def set_tracking(shipment: Shipment, *, carrier: str, tracking_number: str, by=None) -> int:
    """Give a shipment its carrier and tracking number (or correct them), as when the list was
    uploaded before the freight was booked: its announced machines are in transit from now
    (a recorded move each, as a list uploaded with a tracking number). Returns how many moved.
    NotEditable when nothing on it is still on its way."""
    number = tracking_number.strip()
    if not number:
        raise EditInvalid({"tracking_number": ["is empty"]})
    with transaction.atomic():
        locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
        machines = list(
            Machine.objects.select_for_update()
            .filter(shipment=locked, status__in=sorted(AWAITING_ARRIVAL))
            .order_by("pk")
        )
        if not machines:
            raise NotEditable(f"Nothing on {locked} is still on its way: its tracking is no longer changed.")
        locked.carrier, locked.tracking_number = carrier, number
        locked.save(update_fields=["carrier", "tracking_number"])
        announced = [m for m in machines if m.status == MachineStatus.ANNOUNCED]
        if announced:
            services.move_machines(
                announced,
                MachineStatus.IN_TRANSIT,
                by=by,
                now=timezone.now(),
                reason=f"shipment {locked}: tracking {number}",
            )
    return len(announced)
