"""Golden invoices, worked out by hand in the docstrings: the same windows billed in each
mode, an SLA miss, curtailment and maintenance left out of the SLA, a DST month, a machine
live from the 17th, a re-run, a credit note.

Hourly windows (one an hour, 720 in April) keep the hand arithmetic short; an S19's
nameplate is 3,250 W; the rate is 0.05 per kWh; the site's currency is USD."""

import datetime as dt
from decimal import Decimal

import pytest

from hosting.billing import services
from hosting.billing.models import FlatFee, Invoice, InvoiceStatus, Levy, Maintenance
from tests.billing.world import billing_floor, close, hours, live, local

pytestmark = pytest.mark.django_db
UTC = dt.UTC
APRIL = dt.date(2026, 4, 1)
A0 = dt.datetime(2026, 4, 1, tzinfo=UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=UTC)


def april(floor, **terms):
    """Machine A live all April: 700 windows hashing at 3,000 W (PDU), 10 unreachable with
    no reading (0 W), 10 unknown. Machine B live from the 17th (14 days, 336 windows),
    hashing at 3,100 W as the miner reports it."""
    contract = billing_floor(floor, **terms)
    a, b = live(floor, 2, since=A0 - dt.timedelta(days=1))

    def story_a(i, at):
        if i < 10:
            return {"reachable": False, "hashing": False, "hashrate_ths": None, "power_w": None, "power_source": ""}
        if i < 20:
            return None
        return {"power_w": 3000.0}

    hours(a, A0, MAY, story_a)
    hours(b, dt.datetime(2026, 4, 17, tzinfo=UTC), MAY, lambda i, at: {"power_w": 3100.0, "power_source": "miner"})
    close(floor["site"], MAY)
    return contract, a, b


def amounts(invoice: Invoice) -> dict[str, Decimal]:
    return {line.kind: line.amount for line in invoice.lines.all()}


def test_metered_bills_each_windows_energy_and_unknown_windows_at_nameplate(floor):
    """A: 700 × 3.0 kWh + 10 × 0 + 10 unknown × 3.25 kWh = 2,132.5 kWh; B: 336 × 3.1 =
    1,041.6 kWh. 3,174.1 kWh × 0.05 = 158.705 → 158.71 (half-up, once on the line)."""
    contract, a, b = april(floor, billing_mode="metered")
    invoice = services.invoice_month(contract, APRIL).invoice
    (line,) = invoice.lines.all()
    assert (line.kind, line.quantity, line.unit_price, line.amount) == (
        "energy", Decimal("3174.1"), Decimal("0.05"), Decimal("158.71"),
    )  # fmt: skip
    assert invoice.total_amount == Decimal("158.71")
    detail = {m.machine_id: m for m in invoice.machines.all()}
    assert detail[a.pk].kwh_billed == Decimal("2132.5")
    assert detail[b.pk].kwh_billed == Decimal("1041.6")
    assert (detail[a.pk].days_live, detail[b.pk].days_live) == (30, 14)
    assert detail[a.pk].hours_live == 720
    assert detail[b.pk].hours_live == 336


def test_nameplate_bills_operational_hours_at_the_models_wattage(floor):
    """(720 + 336) operational hours × 3.25 kW = 3,432 kWh × 0.05 = 171.60."""
    contract, *_ = april(floor, billing_mode="nameplate")
    invoice = services.invoice_month(contract, APRIL).invoice
    (line,) = invoice.lines.all()
    assert (line.quantity, line.amount) == (Decimal("3432"), Decimal("171.60"))


def test_flat_bills_a_monthly_fee_prorated_by_days_live(floor):
    """120.00 a month: A 30 days + B 14 days (live from the 17th) = 44 machine-days × 120 ÷ 30 = 176.00."""
    contract, a, _ = april(floor, billing_mode="flat")
    FlatFee.objects.create(terms=contract.terms, machine_model=a.model, fee_per_month=Decimal("120"))
    invoice = services.invoice_month(contract, APRIL).invoice
    (line,) = invoice.lines.all()
    assert (line.kind, line.quantity, line.amount) == ("flat", Decimal(44), Decimal("176.00"))
    assert {m.machine_id: m.amount for m in invoice.machines.all()}[a.pk] == Decimal("120.00")


def test_a_flat_contract_without_a_fee_for_a_model_is_refused_not_billed_at_zero(floor):
    contract, *_ = april(floor, billing_mode="flat")
    with pytest.raises(ValueError, match="no flat fee"):
        services.invoice_month(contract, APRIL)
    assert not Invoice.objects.exists()


def test_uptime_counts_unknown_as_up_and_meets_the_target(floor):
    """Counted 720 + 336 = 1,056; up = 700 + 336 hashing + 10 unknown = 1,046 → 99.05 %: no credit."""
    contract, a, _ = april(floor)
    invoice = services.invoice_month(contract, APRIL).invoice
    assert invoice.summary["uptime_pct"] == "99.05"
    assert invoice.summary["windows_unknown"] == 10
    assert "sla_credit" not in amounts(invoice)
    assert invoice.machines.get(machine=a).uptime_pct == Decimal("98.61")  # (700 + 10) ÷ 720


def sla_miss(floor, hashing: int, **terms):
    contract = billing_floor(floor, **terms)
    (c,) = live(floor, 1, since=A0 - dt.timedelta(days=1))
    down = {"reachable": False, "hashing": False, "hashrate_ths": None, "power_w": None, "power_source": ""}
    hours(c, A0, MAY, lambda i, at: {} if i < hashing else down)
    close(floor["site"], MAY)
    return contract


def test_an_sla_miss_credits_its_tier_of_the_hosting_fees(floor):
    """648 of 720 windows hashing = 90.00 %: below 95 (5 %), not below 90. Energy 648 × 3.25
    = 2,106 kWh × 0.05 = 105.30; credit 5 % = 5.265 → 5.27; total 100.03."""
    contract = sla_miss(floor, 648)
    invoice = services.invoice_month(contract, APRIL).invoice
    assert amounts(invoice) == {"energy": Decimal("105.30"), "sla_credit": Decimal("-5.27")}
    assert invoice.total_amount == Decimal("100.03")
    assert invoice.credit_amount == Decimal("5.27")


def test_a_credit_never_takes_hosting_fees_below_zero(floor):
    """A tier crediting 150 % is capped at the hosting fees: the total is 0, not negative."""
    contract = sla_miss(floor, 360, sla_tiers=[{"below_pct": "95", "credit_pct": "100"}])
    invoice = services.invoice_month(contract, APRIL).invoice
    assert invoice.total_amount == Decimal("0.00")


def test_curtailment_within_rights_and_announced_maintenance_are_left_out_of_the_sla(floor):
    """D: 24 windows curtailed (50 W, sleep), 12 in maintenance announced 100 h ahead, 6 in
    maintenance announced 24 h ahead (less than the 72 h notice: counts as down), 678
    hashing. Counted 720 − 24 − 12 = 684, up 678 → 99.12 %. Counting everything it would be
    678 ÷ 720 = 94.17 % and a credit."""
    contract = billing_floor(floor, curtailment_priority=1)
    (d,) = live(floor, 1, since=A0 - dt.timedelta(days=1))
    m1, m2 = A0 + dt.timedelta(hours=100), A0 + dt.timedelta(hours=200)
    Maintenance.objects.create(site=floor["site"], starts_at=m1, ends_at=m1 + dt.timedelta(hours=12),
                               announced_at=m1 - dt.timedelta(hours=100), reason="busbar")  # fmt: skip
    Maintenance.objects.create(site=floor["site"], starts_at=m2, ends_at=m2 + dt.timedelta(hours=6),
                               announced_at=m2 - dt.timedelta(hours=24), reason="late notice")  # fmt: skip
    off = {"reachable": False, "hashing": False, "hashrate_ths": None, "power_w": None, "power_source": ""}

    def story(i, at):
        if i < 24:
            return {"machine_status": "curtailed", "hashing": False, "hashrate_ths": 0.0, "power_w": 50.0}
        return off if 100 <= i < 112 or 200 <= i < 206 else {}

    hours(d, A0, MAY, story)
    close(floor["site"], MAY)
    invoice = services.invoice_month(contract, APRIL).invoice
    row = invoice.machines.get()
    assert (row.windows_counted, row.windows_up, row.excluded_curtailed, row.excluded_maintenance) == (684, 678, 24, 12)
    assert row.uptime_pct == Decimal("99.12")
    assert "sla_credit" not in amounts(invoice)


def test_curtailment_beyond_the_contracts_hours_counts_as_down(floor):
    """Rights of 10 hours a month: 10 of the 24 curtailed windows are left out, 14 count as
    down. Counted 720 − 10 = 710, up 696 hashing → 98.03 %."""
    contract = billing_floor(floor, curtailment_priority=1, max_curtailed_hours_month=10)
    (d,) = live(floor, 1, since=A0 - dt.timedelta(days=1))
    curtailed = {"machine_status": "curtailed", "hashing": False, "hashrate_ths": 0.0, "power_w": 50.0}
    hours(d, A0, MAY, lambda i, at: curtailed if i < 24 else {})
    close(floor["site"], MAY)
    row = services.invoice_month(contract, APRIL).invoice.machines.get()
    counts = (row.windows_counted, row.windows_up, row.excluded_curtailed, row.curtailed_over_rights)
    assert counts == (710, 696, 10, 14)
    assert row.uptime_pct == Decimal("98.03")


def test_a_machine_that_ignored_its_stop_kept_mining_and_is_counted_and_billed_as_live(floor):
    """24 windows `curtailed` but hashing at 3,000 W (the miner ignored the stop): not curtailed
    in fact — counted and up, not left out; nameplate bills them as operational hours. Counted
    720, up 720; (720 h) × 3.25 kW = 2,340 kWh × 0.05 = 117.00."""
    contract = billing_floor(floor, curtailment_priority=1, billing_mode="nameplate")
    (d,) = live(floor, 1, since=A0 - dt.timedelta(days=1))
    ignored = {"machine_status": "curtailed", "power_w": 3000.0}
    hours(d, A0, MAY, lambda i, at: ignored if i < 24 else {})
    close(floor["site"], MAY)
    invoice = services.invoice_month(contract, APRIL).invoice
    row = invoice.machines.get()
    assert (row.windows_counted, row.windows_up, row.excluded_curtailed) == (720, 720, 0)
    assert amounts(invoice)["energy"] == Decimal("117.00")


def test_a_contract_without_curtailment_rights_counts_every_curtailed_window_as_down(floor):
    contract = billing_floor(floor)  # curtailment_priority empty: not curtailable
    (d,) = live(floor, 1, since=A0 - dt.timedelta(days=1))
    curtailed = {"machine_status": "curtailed", "hashing": False, "hashrate_ths": 0.0, "power_w": 50.0}
    hours(d, A0, MAY, lambda i, at: curtailed if i < 72 else {})
    close(floor["site"], MAY)
    invoice = services.invoice_month(contract, APRIL).invoice
    assert invoice.machines.get().uptime_pct == Decimal("90.00")  # 648 ÷ 720
    assert amounts(invoice)["sla_credit"] < 0


def test_a_month_with_a_dst_change_has_its_743_hours(floor):
    """Chicago springs forward on 8 March 2026: local March has 743 hours. Nameplate: 743 ×
    3.25 kW = 2,414.75 kWh × 0.05 = 120.7375 → 120.74. Windows are cut at local midnight."""
    tz = "America/Chicago"
    contract = billing_floor(floor, tz=tz, billing_mode="nameplate")
    start, end = local(tz, 2026, 3, 1), local(tz, 2026, 4, 1)
    (m,) = live(floor, 1, since=start - dt.timedelta(days=1))
    hours(m, start.astimezone(UTC) - dt.timedelta(hours=3), end.astimezone(UTC) + dt.timedelta(hours=3))
    close(floor["site"], end.astimezone(UTC) + dt.timedelta(hours=3))
    invoice = services.invoice_month(contract, dt.date(2026, 3, 1)).invoice
    (line,) = invoice.lines.all()
    assert (line.quantity, line.amount) == (Decimal("2414.75"), Decimal("120.74"))
    assert invoice.machines.get().hours_live == 743


def test_setup_fees_are_billed_once_when_a_machine_first_goes_live(floor):
    """Setup 50.00 a machine: both machines on April's invoice, neither again in May."""
    contract, a, _b = april(floor, setup_fee_per_machine=Decimal("50"))
    hours(a, MAY, MAY + dt.timedelta(days=31))
    close(floor["site"], MAY + dt.timedelta(days=31))
    april_invoice = services.issue(services.invoice_month(contract, APRIL).invoice)
    setup = april_invoice.lines.get(kind="setup")
    assert (setup.quantity, setup.amount) == (2, Decimal("100.00"))
    may = services.invoice_month(contract, dt.date(2026, 5, 1)).invoice
    assert "setup" not in amounts(may)


def test_levies_are_charged_on_measured_kwh_at_their_tier(floor):
    """A levy of 1 KZT/kWh, 25 KZT above a power price of 20 KZT; the site pays 30 KZT → 25
    KZT/kWh at 0.002 USD per KZT = 0.05 USD/kWh × 3,174.1 measured kWh = 158.705 → 158.71."""
    contract, *_ = april(floor)
    Levy.objects.create(
        site=floor["site"], name="Mining energy tax", currency="KZT", per_kwh=Decimal("25"),
        tiers=[{"price_up_to": "20", "per_kwh": "1"}], power_price_per_kwh=Decimal("30"),
        to_billing_currency=Decimal("0.002"), effective_from=dt.date(2026, 1, 1),
    )  # fmt: skip
    invoice = services.invoice_month(contract, APRIL).invoice
    levy = invoice.lines.get(kind="levy")
    assert (levy.quantity, levy.unit_price, levy.amount) == (Decimal("3174.1"), Decimal("0.05"), Decimal("158.71"))


def test_the_deposit_is_invoiced_first_and_returned_at_the_end_of_the_term(floor):
    """Deposit 1 month: 100 kW × 730 h × 0.05 = 3,650.00 on April's invoice; the term ends
    on 1 May, so the same invoice returns it (the month of its last day)."""
    contract, *_ = april(floor, deposit_months=Decimal("1"))
    invoice = services.issue(services.invoice_month(contract, APRIL).invoice)
    assert amounts(invoice)["deposit"] == Decimal("3650.00")
    assert "deposit_refund" not in amounts(invoice)
    contract.ends_on = dt.date(2026, 6, 1)
    contract.save(update_fields=["ends_on"])
    may = services.invoice_month(contract, dt.date(2026, 5, 1)).invoice
    assert amounts(may) == {"deposit_refund": Decimal("-3650.00")}


def test_a_second_run_for_the_same_period_gives_the_same_invoice_never_a_second(floor):
    contract, *_ = april(floor)
    first = services.run_invoices(now=dt.datetime(2026, 5, 1, 12, tzinfo=UTC))
    second = services.run_invoices(now=dt.datetime(2026, 5, 1, 13, tzinfo=UTC))
    (invoice,) = Invoice.objects.filter(contract=contract)
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.number
    assert invoice.total_amount == Decimal("158.71")
    assert (first.created, second.pk) == (1, None)  # nothing was due the second time: no run kept
    again = services.invoice_month(contract, APRIL)
    assert (again.created, again.invoice.pk, again.invoice.total_amount) == (False, invoice.pk, Decimal("158.71"))


def test_an_issued_invoice_is_corrected_by_a_credit_note_not_changed(floor):
    contract, *_ = april(floor)
    invoice = services.issue(services.invoice_month(contract, APRIL).invoice)
    note = services.credit_note(invoice, amount=Decimal("8.71"), reason="A rack's PDU over-read on 3 April")
    invoice.refresh_from_db()
    assert invoice.total_amount == Decimal("158.71")
    assert invoice.status == InvoiceStatus.ISSUED
    assert (note.kind, note.corrects, note.status, note.total_amount) == (
        "credit_note", invoice, InvoiceStatus.ISSUED, Decimal("-8.71"),
    )  # fmt: skip
    assert note.number.endswith("C00001")
    with pytest.raises(services.BillingRefusal, match=r"At most 150\.00"):
        services.credit_note(invoice, amount=Decimal("150.01"), reason="too much")
