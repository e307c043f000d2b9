"""Packing lists: a tenant's CSV of the machines it ships for a contract, checked as a whole.

Every row is checked (unknown model, malformed or duplicated MAC, serial or IP, more
machines than the contract's kW allow) and every problem reported with its line; only a
list with no problem is imported, in one transaction — all or nothing.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from capacity.models import BULK_BATCH_SIZE
from changelog import record as changes
from hosting import services
from hosting.fields import normalize_mac
from hosting.lifecycle import GONE, ContractStatus, MachineStatus
from hosting.models import Contract, Machine, MachineModel, Shipment

COLUMNS = ("serial", "mac", "model")
OPTIONAL = ("ip", "notes")
MAX_ROWS = 20_000
MAX_BYTES = 4 * 1024 * 1024
# The longest value each column may hold (the model fields' lengths; notes kept readable).
MAX_CHARS = {"serial": 64, "mac": 32, "model": 100, "ip": 15, "notes": 2_000}
# A serial is printed on the machine: visible ASCII, no spaces, no line breaks.
SERIAL = re.compile(r"[!-~]+")


@dataclass(frozen=True)
class Problem:
    line: int  # 1 is the header; 0 means the file as a whole
    column: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "the file"
        return f"{where}, {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


@dataclass
class Row:
    line: int
    serial: str
    mac: str
    model: str
    ip: str = ""
    notes: str = ""
    machine_model: MachineModel | None = field(default=None, repr=False)


class PackingListInvalid(ValidationError):
    """The list was refused; `problems` says where and why, line by line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__([str(p) for p in problems])


def parse(data: bytes) -> tuple[list[Row], list[Problem]]:
    """Rows from CSV bytes (UTF-8, header row naming the columns, any order; any line
    endings: Excel's "CSV (Macintosh)" ends lines with a bare CR). A line that cannot be
    read (a NUL byte, a field past the csv module's limit) is a problem on that line."""
    if len(data) > MAX_BYTES:
        return [], [Problem(0, "", f"is larger than {MAX_BYTES // (1024 * 1024)} MB")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [Problem(0, "", "is not UTF-8 text (export the sheet as CSV UTF-8)")]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    problems = [
        Problem(line, "", "contains a NUL byte")
        for line, content in enumerate(text.split("\n"), start=1)
        if "\x00" in content
    ]
    reader = csv.reader(io.StringIO(text.replace("\x00", ""), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        return [], [Problem(1, "", f"the header cannot be read ({exc})")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [Problem(1, "", f"the header lacks {', '.join(missing)} (needs: {', '.join(COLUMNS)})")]
    rows = []
    while True:
        line = reader.line_num + 1  # where the record starts (a quoted field may span lines)
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field larger than the csv module's 128 KB limit
            problems.append(Problem(line, "", f"cannot be read: {exc}"))
            continue
        values = {name: value.strip() for name, value in zip(header, record, strict=False)}
        if not any(values.values()):
            continue  # a blank line
        get = values.get
        rows.append(Row(line, get("serial", ""), get("mac", ""), get("model", ""), get("ip", ""), get("notes", "")))
        if len(rows) > MAX_ROWS:
            return [], [Problem(0, "", f"has more than {MAX_ROWS:,} machines; split it")]
    if problems:
        return [], sorted(problems, key=lambda p: p.line)
    if not rows:
        return [], [Problem(0, "", "lists no machine")]
    return rows, []


def models_by_name() -> dict[str, MachineModel]:
    """What a packing list's model column may say → the model: its slug, name or pyasic name."""
    names = {}
    for model in MachineModel.objects.all():
        for name in (model.slug, model.name, model.pyasic_model):
            if name:
                names[name.casefold()] = model
    return names


def check(contract: Contract, rows: list[Row]) -> list[Problem]:
    """Every problem of every row, and of the list as a whole; sets each row's machine model."""
    problems: list[Problem] = []
    if contract.status not in (ContractStatus.SIGNED, ContractStatus.ACTIVE):
        problems.append(Problem(0, "", f"contract #{contract.pk} is {contract.status}: it takes no machines"))
    models = models_by_name()
    serials = Counter(r.serial for r in rows)
    ips = Counter(r.ip for r in rows if r.ip)
    macs: Counter = Counter()
    for row in rows:
        problems.extend(row_problems(row, models))
        if row.serial and SERIAL.fullmatch(row.serial) and serials[row.serial] > 1:
            problems.append(Problem(row.line, "serial", f"{row.serial} appears {serials[row.serial]} times"))
        if _is_mac(row.mac):  # normalized by row_problems when it is one
            macs[row.mac] += 1
        if row.ip and _is_ipv4(row.ip) and ips[row.ip] > 1:
            problems.append(Problem(row.line, "ip", f"{row.ip} appears {ips[row.ip]} times"))
    for row in rows:
        if row.mac in macs and macs[row.mac] > 1:
            problems.append(Problem(row.line, "mac", f"{row.mac} appears {macs[row.mac]} times"))
    taken = (
        Machine.objects.on_hand()
        .filter(Q(serial__in=list(serials)) | Q(mac__in=list(macs)))
        .values_list("serial", "mac")
    )
    taken_serials = {s for s, _ in taken}
    taken_macs = {m for _, m in taken}
    for row in rows:
        if row.serial in taken_serials:
            problems.append(Problem(row.line, "serial", f"{row.serial} is already registered"))
        if row.mac in taken_macs:
            problems.append(Problem(row.line, "mac", f"{row.mac} is already registered"))
    problems.extend(_within_contract(contract, rows))
    return sorted(problems, key=lambda p: (p.line, p.column))


def row_problems(row: Row, models: dict[str, MachineModel]) -> list[Problem]:
    """The problems of one row on its own (lengths, serial, MAC, model, IP): what a list
    and an edit of one announced machine share. Normalizes the row's MAC and sets its
    machine model; duplicates within a list and machines already registered are the
    caller's to check."""
    problems = _too_long(row)
    if not row.serial:
        problems.append(Problem(row.line, "serial", "is empty"))
    elif not SERIAL.fullmatch(row.serial):
        problems.append(Problem(row.line, "serial", f"{_shown(row.serial)!r} has spaces or control characters"))
    try:
        row.mac = normalize_mac(row.mac)
    except ValidationError:
        problems.append(Problem(row.line, "mac", f"{_shown(row.mac) or '(empty)'} is not a MAC address"))
    row.machine_model = models.get(row.model.casefold())
    if row.machine_model is None:
        problems.append(Problem(row.line, "model", f"{_shown(row.model) or '(empty)'} is not in the catalog"))
    if row.ip and not _is_ipv4(row.ip):
        problems.append(Problem(row.line, "ip", f"{_shown(row.ip)} is not an IPv4 address"))
    return problems


def _is_mac(value: str) -> bool:
    try:
        normalize_mac(value)
    except ValidationError:
        return False
    return True


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _shown(value: str, limit: int = 40) -> str:
    """A value as a problem quotes it: a 100 KB cell is not echoed back whole."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _too_long(row: Row) -> list[Problem]:
    return [
        Problem(row.line, column, f"is {len(getattr(row, column)):,} characters long; at most {limit:,}")
        for column, limit in MAX_CHARS.items()
        if len(getattr(row, column)) > limit
    ]


def _within_contract(contract: Contract, rows: list[Row]) -> list[Problem]:
    """The contract's kW bound the nameplate watts of all its machines still with us (not
    returned, not cancelled)."""
    if any(r.machine_model is None for r in rows):
        return []  # said already; the total would be meaningless
    present = contract.machines.exclude(status__in=sorted(GONE)).aggregate(w=Sum("model__nameplate_power_w"))["w"] or 0
    adding = sum(r.machine_model.nameplate_power_w for r in rows if r.machine_model is not None)
    allowed = int(contract.it_kw * 1000)
    if present + adding <= allowed:
        return []
    return [
        Problem(
            0,
            "",
            f"{len(rows):,} machines draw {adding / 1000:,.1f} kW at nameplate; with the {present / 1000:,.1f} kW "
            f"already on contract #{contract.pk} that is {(present + adding - allowed) / 1000:,.1f} kW more than "
            f"its {contract.it_kw:,} kW",
        )
    ]


def import_list(
    contract: Contract, data: bytes, *, reference: str = "", tracking_number: str = "", carrier: str = "", by=None
) -> Shipment:
    """Check the whole list and, only if nothing is wrong, register its machines: announced,
    or in transit when a tracking number is given. Raises PackingListInvalid otherwise."""
    rows, problems = parse(data)
    if not problems:
        problems = check(contract, rows)
    if problems:
        raise PackingListInvalid(problems)
    now = timezone.now()
    with transaction.atomic():
        Contract.objects.select_for_update().get(pk=contract.pk)  # one list at a time per contract
        problems = _within_contract(contract, rows)  # re-checked under the lock
        if problems:
            raise PackingListInvalid(problems)
        try:
            with transaction.atomic():  # a savepoint: a clash below leaves the rest intact
                return _register(
                    contract, rows, reference=reference, tracking_number=tracking_number, carrier=carrier, by=by,
                    now=now,
                )  # fmt: skip
        except IntegrityError:
            # Another list (maybe another contract's) registered a serial or MAC of this one
            # between our check and our insert; the constraint refused it. Once that list
            # has committed the check sees it and says which lines.
            problems = check(contract, rows) or [Problem(0, "", "clashed with a list registered at the same moment")]
            raise PackingListInvalid(problems) from None


def _register(
    contract: Contract, rows: list[Row], *, reference: str, tracking_number: str, carrier: str, by, now
) -> Shipment:
    shipment = Shipment.objects.create(
        contract=contract,
        tenant=contract.tenant,
        reference=reference,
        tracking_number=tracking_number,
        carrier=carrier,
        uploaded_by=by,
        created_at=now,
    )
    machines = Machine.objects.bulk_create(
        [
            Machine(
                tenant=contract.tenant,
                contract=contract,
                model=r.machine_model,
                serial=r.serial,
                mac=r.mac,
                ip=r.ip or None,
                notes=r.notes,
                shipment=shipment,
                status=MachineStatus.ANNOUNCED,
                status_changed_at=now,
                created_at=now,
            )
            for r in rows
        ],
        batch_size=BULK_BATCH_SIZE,
    )
    changes.created(machines, via="packing.register", describe=services.describe_machine)
    if tracking_number:
        reason = f"packing list {shipment}: tracking {tracking_number}"
        services.move_machines(machines, MachineStatus.IN_TRANSIT, by=by, now=now, reason=reason)
    return shipment
