"""An invoice's life after the run: issued and mailed, overdue and reminded (not too often,
not too many times), paid, voided and invoiced again; a yearly SLA settled in December."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from hosting.billing import services
from hosting.billing.models import Invoice, InvoiceStatus
from tests.billing.world import billing_floor, close, hours, live

pytestmark = pytest.mark.django_db
UTC = dt.UTC
APRIL = dt.date(2026, 4, 1)
A0 = dt.datetime(2026, 4, 1, tzinfo=UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def issued(floor, settings):
    settings.BILLING_REMINDER_DAYS = 7
    settings.BILLING_REMINDERS = 2
    contract = billing_floor(floor, payment_terms_days=10)
    (m,) = live(floor, 1, since=A0 - dt.timedelta(days=1))
    hours(m, A0, MAY)
    close(floor["site"], MAY)
    invoice = services.invoice_month(contract, APRIL).invoice
    return services.issue(invoice, now=dt.datetime(2026, 5, 1, 9, tzinfo=UTC))


def test_an_issued_invoice_is_numbered_and_due_after_the_payment_terms(issued):
    assert issued.due_on == dt.date(2026, 5, 11)
    assert issued.number.startswith(f"{issued.site.slug.upper()[:12]}-2026-I")


def test_issuing_mails_the_tenant_once_it_commits(floor, django_capture_on_commit_callbacks):
    contract = billing_floor(floor)
    invoice = services.invoice_month(contract, APRIL).invoice
    with django_capture_on_commit_callbacks(execute=True):
        services.issue(invoice)
        services.issue(invoice)  # already issued: nothing more
    (message,) = mail.outbox
    assert invoice.tenant.contact_email in message.to
    assert "0.00 USD" in message.subject


def test_overdue_invoices_are_reminded_every_seven_days_at_most_twice(issued, django_capture_on_commit_callbacks):
    def overdue_on(day: int) -> list[Invoice]:
        with django_capture_on_commit_callbacks(execute=True):
            return services.mark_overdue(now=dt.datetime(2026, 5, day, 12, tzinfo=UTC))

    assert overdue_on(11) == []  # due today: not yet overdue
    assert [i.pk for i in overdue_on(12)] == [issued.pk]
    assert overdue_on(15) == []  # reminded 3 days ago
    assert len(overdue_on(19)) == 1
    assert overdue_on(30) == []  # two reminders sent: no more
    issued.refresh_from_db()
    assert (issued.status, issued.reminders_sent) == (InvoiceStatus.OVERDUE, 2)
    assert [m.subject.startswith("Reminder") for m in mail.outbox] == [True, True]
    services.mark_paid(issued)
    issued.refresh_from_db()
    assert issued.status == InvoiceStatus.PAID


def test_a_paid_invoice_cannot_be_voided_or_paid_again(issued):
    services.mark_paid(issued)
    with pytest.raises(services.BillingRefusal, match="credit note"):
        services.void(issued, reason="wrong")
    with pytest.raises(services.BillingRefusal, match="Only an issued or overdue"):
        services.mark_paid(issued)


def test_a_voided_invoice_keeps_its_number_and_the_period_is_invoiced_again(issued):
    with pytest.raises(services.BillingRefusal, match="Say why"):
        services.void(issued, reason="  ")
    services.void(issued, reason="rate was wrong")
    again = services.invoice_month(issued.contract, APRIL)
    assert again.created
    assert again.invoice.pk != issued.pk
    issued.refresh_from_db()
    assert (issued.status, issued.reason, issued.number is not None) == (InvoiceStatus.VOID, "rate was wrong", True)


def test_a_draft_is_recomputed_by_a_second_run_until_issued(floor):
    contract = billing_floor(floor)
    (m,) = live(floor, 1, since=A0 - dt.timedelta(days=1))
    hours(m, A0, A0 + dt.timedelta(days=10))
    close(floor["site"], A0 + dt.timedelta(days=10))
    draft = services.invoice_month(contract, APRIL).invoice
    assert draft.total_amount == Decimal("39.00")  # 240 h × 3.25 kWh × 0.05
    contract.rate_usd_per_kwh = Decimal("0.04")
    contract.save(update_fields=["rate_usd_per_kwh"])
    redone = services.invoice_month(contract, APRIL)
    assert (redone.created, redone.invoice.pk, redone.invoice.total_amount) == (False, draft.pk, Decimal("31.20"))


def test_a_yearly_sla_is_settled_on_decembers_invoice_over_the_whole_year(floor):
    """A machine down 3 days every month (90 % of a 30-day month, less in longer months):
    monthly invoices carry no credit; December's credits 5 % of the year's hosting fees,
    as the year's uptime (8,760 − 36 × 24 = 7,896 of 8,760 h = 90.14 %) is below 95 %."""
    contract = billing_floor(floor, sla_period="year", billing_mode="nameplate")
    (m,) = live(floor, 1, since=dt.datetime(2025, 12, 31, tzinfo=UTC))
    down = {"reachable": False, "hashing": False, "hashrate_ths": None, "power_w": None, "power_source": ""}
    for month in range(1, 13):
        start = dt.datetime(2026, month, 1, tzinfo=UTC)
        end = dt.datetime(2026 + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        hours(m, start, end, lambda i, at: down if i < 72 else {})
    close(floor["site"], dt.datetime(2027, 1, 1, tzinfo=UTC))
    hosting = Decimal(0)
    for month in range(1, 12):
        invoice = services.issue(services.invoice_month(contract, dt.date(2026, month, 1)).invoice)
        assert invoice.lines.filter(kind="sla_credit").count() == 0, month
        hosting += invoice.hosting_amount
    december = services.invoice_month(contract, dt.date(2026, 12, 1)).invoice
    hosting += december.hosting_amount
    credit = december.lines.get(kind="sla_credit")
    assert "90.14 %" in credit.description
    assert credit.amount == -(hosting * Decimal("0.05")).quantize(Decimal("0.01"))


def test_the_run_issues_no_empty_invoice_for_a_contract_with_nothing_to_bill(floor):
    contract = billing_floor(floor)  # no machines, no deposit
    close(floor["site"], MAY)
    run = services.run_invoices(now=dt.datetime(2026, 5, 1, 9, tzinfo=UTC))
    assert not Invoice.objects.filter(contract=contract).exists()
    assert [e["outcome"] for e in run.log] == ["nothing"]
