"""make bench's datasets are written with COPY, around the models' own code: these tests
seed them small, so that a model change they no longer fit (a new NOT NULL column, a
rule the ledger would refuse) fails here rather than at bench time."""

import pytest

from capacity.models import Circuit, Reservation, Slot
from hosting import benchmark
from hosting.lifecycle import MachineStatus
from hosting.models import Contract, Machine

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_quote_dataset_seeds_and_keeps_the_ledgers_rules():
    scale = benchmark.SCALES["small"]
    built = benchmark.seed(scale, log=lambda *_: None)  # seed() ends by checking the ledger's rules
    assert built["sites"] == scale.sites
    assert built["slots"] == scale.sites * scale.hall.slot_count
    assert built["machines"] == scale.sites * scale.machines_per_site
    assert Machine.objects.filter(status=MachineStatus.LIVE, notes="").count() == built["machines"]
    occupied = Slot.objects.filter(occupant__isnull=False)
    assert occupied.count() == built["machines"]
    assert set(occupied.values_list("allocated_w", flat=True)) == {built["watts"]}
    firm = Reservation.objects.filter(kind=Reservation.Kind.FIRM)
    assert set(firm.values_list("reference", flat=True)) == {c.reference for c in Contract.objects.all()}


def test_the_commissioning_dataset_racks_every_machine_on_a_metered_outlet():
    built = benchmark.seed_commissioning(50, log=lambda *_: None)
    machines = Machine.objects.select_related("slot__circuit")
    assert built["machines"] == machines.count() == 50
    assert {m.status for m in machines} == {MachineStatus.RACKED}
    assert all(m.ip and m.slot.outlet and m.slot.circuit.pdu_id for m in machines)
    assert built["pdus"] == Circuit.objects.count()
    assert Slot.objects.filter(occupant__isnull=False).count() == 50
