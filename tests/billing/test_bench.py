"""`make bench --only billing` at a tiny scale: its dataset is written with SQL around the
models' own code, so a model change it no longer fits fails here rather than at bench time;
and the run it times invoices every contract from the machine-days it seeded."""

import pytest

from hosting.billing import benchmark
from hosting.billing.models import ContractTerms, Invoice, InvoiceMachine, MachineDay
from hosting.models import Contract, Machine

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_billing_part_invoices_every_contract_from_its_machine_days():
    built = benchmark.seed_billing("tiny", log=lambda *_: None)
    scale = benchmark.SIZES["tiny"]
    assert built["machines"] == scale.sites * scale.machines_per_site
    contracts = Contract.objects.filter(status="active")
    assert built["contracts"] == contracts.count() == scale.sites * scale.contracts_per_site
    assert set(ContractTerms.objects.values_list("billing_mode", flat=True)) <= {"metered", "nameplate", "flat"}
    assert MachineDay.objects.count() == built["machine_days"] > built["machines"] * 14

    result = benchmark.measure_billing(log=lambda *_: None)
    assert result["failed"] == 0
    assert result["invoices"] == result["issued"] == built["contracts"]
    period_start, _ = benchmark._period(benchmark.billing_now())
    invoices = Invoice.objects.filter(period_start=period_start, status="issued")
    assert invoices.count() == built["contracts"]
    assert result["invoice_machines"] == InvoiceMachine.objects.filter(invoice__in=invoices).count()
    assert result["invoice_machines"] == Machine.objects.filter(status="live").count()
    assert result["machine_days"] == built["machine_days"]
    assert result["windows"]["same_total"]  # 60 s windows bill to the cent what 300 s windows do
    rollup = result["rollup"]
    site_machines = scale.machines_per_site
    assert rollup["machine_days"] == rollup["machines"] == site_machines
    assert rollup["windows"] == site_machines * 288
