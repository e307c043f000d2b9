"""The curtailment tests' world: live machines on a metered circuit of the `floor` fixture, their
contract's curtailment rights, an event, and the emulated fleet that answers for them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from capacity.models import Pdu
from hosting.billing.models import ContractTerms
from hosting.commissioning import fleet
from hosting.commissioning.emulator import INSTANT, Fault, Fleet
from hosting.curtailment.models import Event
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, MachineModel
from tests.factories import racked

S19 = "antminer-s19-pro"


def live_floor(floor, n: int, *, net: int, model: str = S19, **terms) -> list[Machine]:
    """n live machines on circuit 0 behind one PDU (outlet k for the k-th), at 127.<net>.0.k,
    their contract curtailable (priority 1) unless `terms` say otherwise."""
    site = floor["site"]
    circuit = floor["circuits"][0]
    circuit.pdu = Pdu.objects.create(site=site, name="PDU A", host=f"127.{net}.1.1", port=16100 + net)
    circuit.save()
    machines = []
    for k in range(1, n + 1):
        (machine,) = racked(floor, 1, circuit=0, model=MachineModel.objects.get(slug=model), ip=f"127.{net}.0.{k}")
        machine.slot.outlet = k
        machine.slot.save(update_fields=["outlet"])
        machines.append(machine)
    Machine.objects.filter(pk__in=[m.pk for m in machines]).update(status=MachineStatus.LIVE)
    ContractTerms.objects.update_or_create(contract=floor["contract"], defaults={"curtailment_priority": 1, **terms})
    return list(Machine.objects.filter(pk__in=[m.pk for m in machines]).order_by("pk"))


def emulated(site, machines, faults: dict[str, set[Fault]] | None = None, latency: str = INSTANT):
    watched = Machine.objects.filter(pk__in=[m.pk for m in machines]).select_related("model")
    miners = fleet.miner_specs(watched, faults=faults or {})
    return Fleet(miners, web=True, latency=latency), fleet.pdu_specs(Pdu.objects.filter(site=site))


def event(site, *, target_mw: str = "1", deadline_s: float = 3, **fields) -> Event:
    now = timezone.now()
    return Event.objects.create(
        site=site, target_mw=Decimal(target_mw), starts_at=now, deadline_at=now + dt.timedelta(seconds=deadline_s),
        created_at=now, **fields,
    )  # fmt: skip
