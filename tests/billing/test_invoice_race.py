"""Invoicing at the same moment, on PostgreSQL, round after round: runs racing for one
contract's month make one invoice with one number; issues racing across contracts take
distinct numbers without gaps; credit notes racing on one invoice never credit more than it."""

import datetime as dt
from decimal import Decimal

import pytest

from hosting.billing import services
from hosting.billing.models import Invoice, InvoiceCounter, InvoiceKind, InvoiceLine, InvoiceStatus
from tests.billing.world import billing_floor, close, hours, live
from tests.factories import ContractFactory, ReservationFactory
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

UTC = dt.UTC
APRIL = dt.date(2026, 4, 1)
A0 = dt.datetime(2026, 4, 1, tzinfo=UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=UTC)
BILLING_DAY = dt.datetime(2026, 5, 1, 9, tzinfo=UTC)
ROUNDS = 8
THREADS = 6


def month(floor, n: int = 2):
    contract = billing_floor(floor, setup_fee_per_machine=Decimal("50"), deposit_months=Decimal("1"))
    for machine in live(floor, n, since=A0 - dt.timedelta(days=1)):
        hours(machine, A0, MAY)
    close(floor["site"], MAY)
    return contract


def test_runs_racing_for_one_contracts_month_make_one_invoice(floor):
    contract = month(floor)
    for r in range(ROUNDS):
        if r % 2:
            race(THREADS, lambda _: services.run_invoices(now=BILLING_DAY))
        else:
            race(THREADS, lambda _: services.issue(services.invoice_month(contract, APRIL).invoice))
        live_invoices = Invoice.objects.filter(contract=contract, kind=InvoiceKind.INVOICE).exclude(status="void")
        (invoice,) = live_invoices
        assert invoice.status == InvoiceStatus.ISSUED, r
        assert invoice.total_amount == Decimal("3650.00") + Decimal("100.00") + Decimal("234.00"), r
        assert list(invoice.lines.values_list("kind", flat=True)) == ["energy", "setup", "deposit"], r
        assert invoice.setup_charges.count() == 2, r
        # Every issued invoice took the next number: no number twice, none skipped.
        numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
        assert numbers == [f"{numbers[0][:-5]}{i:05d}" for i in range(1, r + 2)], (r, numbers)
        services.void(invoice, reason=f"round {r}: invoiced again")
    assert InvoiceLine.objects.filter(invoice__status="void").count() == 3 * ROUNDS


def test_issues_racing_across_contracts_take_distinct_numbers_without_gaps(floor):
    site = floor["site"]
    drafts = []
    for _ in range(THREADS):
        hold = ReservationFactory(site=site, it_kw=Decimal("10"), starts_on=dt.date(2026, 1, 1))
        contract = ContractFactory(
            site=site, status="active", reservation=hold, starts_on=dt.date(2026, 1, 1), ends_on=None
        )
        drafts.append(services.invoice_month(contract, APRIL).invoice)
    for r in range(ROUNDS):
        results, _ = race(THREADS, lambda i, drafts=drafts: services.issue(drafts[i]))
        assert len({inv.number for inv in results}) == THREADS, r
        for draft in drafts:
            services.void(draft, reason="again")
        drafts = [services.invoice_month(d.contract, APRIL).invoice for d in drafts]
    (counter,) = InvoiceCounter.objects.all()
    assert counter.last == THREADS * ROUNDS
    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    assert [int(n[-5:]) for n in numbers] == list(range(1, THREADS * ROUNDS + 1))


def test_credit_notes_racing_on_one_invoice_never_credit_more_than_it(floor):
    contract = month(floor, n=1)
    for r in range(ROUNDS // 2):
        invoice = services.issue(services.invoice_month(contract, APRIL).invoice)
        left = invoice.total_amount  # 3,650 deposit + 50 setup + 117 energy = 3,817.00
        share = (left / 3).quantize(Decimal("0.01")) + Decimal("0.01")  # two fit, a third does not

        def credit(_, invoice=invoice, share=share):
            return services.credit_note(invoice, amount=share, reason="race")

        wins, losses = race(THREADS, credit, refusals=(services.BillingRefusal,))
        assert (len(wins), len(losses)) == (2, THREADS - 2), r
        assert {exc.code for exc in losses} == {"too_much"}
        credited = -sum(n.total_amount for n in invoice.credit_notes.all())
        assert credited == 2 * share <= left, r
        for note in invoice.credit_notes.all():
            Invoice.objects.filter(pk=note.pk).update(status=InvoiceStatus.VOID)  # clear the way for the next round
        services.void(invoice, reason="next round")
