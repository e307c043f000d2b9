"""What the emulator should pretend to be: machines and PDUs from the database, as specs."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping

from capacity.models import Pdu, Slot
from hosting.commissioning.emulator import EMULATED_MODELS, Fault, MinerSpec, PduSpec, Quirk
from hosting.models import Machine
from hosting.services import ON_THE_FLOOR

# What the demo's emulated fleet gets wrong, one machine in `every`: the commissioning
# pipeline should catch each of these.
DEMO_FAULTS = (
    Fault.DEAD_BOARD,
    Fault.MISSING_CHIPS,
    Fault.UNDER_HASHING,
    Fault.OVERHEATING,
    Fault.STOPPED_FAN,
    Fault.OVER_DRAWING,
    Fault.WRONG_MAC,
)


def demo_faults(serial: str, every: int = 4) -> frozenset[Fault]:
    """A deterministic fault for about one machine in `every`, by its serial."""
    digest = int(hashlib.sha256(serial.encode()).hexdigest(), 16)
    if digest % every:
        return frozenset()
    return frozenset({DEMO_FAULTS[(digest // every) % len(DEMO_FAULTS)]})


def demo_quirks(serial: str, every: int = 6) -> frozenset[Quirk]:
    """Firmware habits of about one healthy machine in `every` (a Whatsminer's slow get_psu)."""
    digest = int(hashlib.sha256(f"quirk:{serial}".encode()).hexdigest(), 16)
    return frozenset() if digest % every else frozenset({Quirk.SLOW_PSU})


def miner_specs(
    machines: Iterable[Machine],
    faults: Mapping[str, Iterable[str]] | None = None,
    quirks: Mapping[str, Iterable[Quirk]] | None = None,
) -> list[MinerSpec]:
    """One spec per machine with an IP and an emulated model; `faults` and `quirks` by serial."""
    faults = faults or {}
    quirks = quirks or {}
    return [
        MinerSpec(
            ip=m.ip,
            model=m.model.slug,
            serial=m.serial,
            mac=m.mac,
            hostname=m.serial.lower(),
            faults=frozenset(faults.get(m.serial, ())),
            quirks=frozenset(quirks.get(m.serial, ())),
        )
        for m in machines
        if m.ip and m.model.slug in EMULATED_MODELS
    ]


def pdu_specs(pdus: Iterable[Pdu], inlet_temp_c: float = 27.0) -> list[PduSpec]:
    """Each PDU with its outlets mapped to the IP of the machine in the slot they feed."""
    pdus = list(pdus)
    outlets: dict[int, dict[int, str]] = defaultdict(dict)
    wired = Slot.objects.filter(circuit__pdu__in=pdus, outlet__isnull=False, machine__ip__isnull=False).values_list(
        "circuit__pdu_id", "outlet", "machine__ip"
    )
    for pdu_id, outlet, ip in wired:
        outlets[pdu_id][outlet] = ip
    return [
        PduSpec(
            host=p.host,
            port=p.port,
            community=p.community,
            profile=p.profile,
            inlet_temp_c=inlet_temp_c,
            outlets=outlets[p.pk],
        )
        for p in pdus
    ]


def from_database(site_slug: str | None = None, fault_every: int | None = None) -> tuple[list, list]:
    """Specs for every machine on the floor that has an IP (and every PDU) — at one site or all."""
    machines = Machine.objects.filter(status__in=ON_THE_FLOOR, ip__isnull=False).select_related("model")
    pdus = Pdu.objects.all()
    if site_slug:
        machines = machines.filter(contract__site__slug=site_slug)
        pdus = pdus.filter(site__slug=site_slug)
    machines = list(machines)
    faults = {m.serial: demo_faults(m.serial, fault_every) for m in machines} if fault_every else {}
    quirks = {m.serial: demo_quirks(m.serial) for m in machines} if fault_every else {}
    return miner_specs(machines, faults, quirks), pdu_specs(pdus)
