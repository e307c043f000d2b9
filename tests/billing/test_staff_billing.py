"""The staff side of billing: the dashboard, the invoice runs with "Run now", an invoice's
page and its actions, announced maintenance. Staff only; tenants and anonymous users are
sent to the admin login; refusals are messages, never 500s."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.billing import services
from hosting.billing.models import ContractTerms, Invoice, InvoiceRun, InvoiceStatus, Maintenance
from tests.billing.world import billing_floor, close, hours, live
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
APRIL = dt.date(2026, 4, 1)
A0 = dt.datetime(2026, 4, 1, tzinfo=UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="ops", is_staff=True))
    return client


@pytest.fixture
def tenant_client(client):
    client.force_login(MembershipFactory().user)
    return client


def april(floor, **terms):
    """Two machines live all April, hashing at 3,000 W from the PDU (as test_golden)."""
    contract = billing_floor(floor, **terms)
    for m in live(floor, 2, since=A0 - dt.timedelta(days=1)):
        hours(m, A0, MAY, lambda i, at: {"power_w": 3000.0})
    close(floor["site"], MAY)
    return contract


def draft(floor) -> Invoice:
    return services.invoice_month(april(floor), APRIL).invoice


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_every_page_is_staff_only(client, tenant_client, floor):
    invoice = draft(floor)
    run = InvoiceRun.objects.create(on_date=dt.date(2026, 5, 1))
    urls = [
        reverse("staff:billing"),
        reverse("staff:billing-runs"),
        reverse("staff:billing-run", args=[run.pk]),
        reverse("staff:billing-invoice", args=[invoice.pk]),
        reverse("staff:billing-maintenance-first"),
        reverse("staff:billing-maintenance", args=[floor["site"].slug]),
    ]
    posts = [
        reverse("staff:billing-run-now"),
        reverse("staff:billing-invoice-act", args=[invoice.pk, "issue"]),
        reverse("staff:billing-maintenance-announce"),
    ]
    for c in (tenant_client, client.__class__()):
        for url in urls + posts:
            response = c.get(url) if url in urls else c.post(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.DRAFT
    assert InvoiceRun.objects.count() == 1


def test_staff_see_each_page(staff_client, floor):
    invoice = draft(floor)
    run = InvoiceRun.objects.create(on_date=dt.date(2026, 5, 1), log=[{"site": "x", "outcome": "waiting"}])
    for url in [
        reverse("staff:billing"),
        reverse("staff:billing-runs"),
        reverse("staff:billing-run", args=[run.pk]),
        reverse("staff:billing-invoice", args=[invoice.pk]),
        reverse("staff:billing-maintenance-first"),
    ]:
        assert staff_client.get(url).status_code == 200, url
    assert staff_client.get(reverse("staff:billing-invoice", args=[999999])).status_code == 404
    assert staff_client.get(reverse("staff:billing-maintenance", args=["nowhere"])).status_code == 404


def test_the_dashboard_shows_revenue_unbilled_overdue_and_drafts(staff_client, floor):
    invoice = draft(floor)
    site = floor["site"]
    html = staff_client.get(reverse("staff:billing")).content.decode()
    assert f"draft invoice #{invoice.pk}" in html  # a draft waits to be issued
    assert "No issued invoice in the last 12 months." in html
    services.issue(invoice, now=MAY)
    services.mark_overdue(now=MAY + dt.timedelta(days=30))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OVERDUE
    response = staff_client.get(reverse("staff:billing"))
    rows = response.context["revenue"]
    (row,) = rows
    assert (row.site, row.month, row.currency) == (site.name, APRIL, "USD")
    assert row.total == invoice.total_amount
    assert row.hosting > 0
    (late, days) = response.context["overdue"][0]
    assert late.pk == invoice.pk
    assert days == (timezone.now().date() - invoice.due_on).days
    assert late.reminders_sent == 1
    assert "No draft." in response.content.decode()


def test_unbilled_lists_contracts_without_an_issued_invoice_of_last_month(staff_client, floor):
    contract = billing_floor(floor)
    (entry,) = staff_client.get(reverse("staff:billing")).context["unbilled"]
    assert [c.pk for c in entry.contracts] == [contract.pk]
    last_month = entry.period_start
    invoice = services.invoice_month(contract, last_month).invoice
    (entry,) = staff_client.get(reverse("staff:billing")).context["unbilled"]
    assert [c.pk for c in entry.contracts] == [contract.pk]  # a draft is not billed yet
    services.issue(invoice)
    (entry,) = staff_client.get(reverse("staff:billing")).context["unbilled"]
    assert entry.contracts == []


def test_run_now_invoices_the_month_and_shows_its_log(staff_client, floor, settings, monkeypatch):
    contract = april(floor)
    settings.BILLING_AUTO_ISSUE = True
    # "now" is 1 May noon for the run: freeze Django's clock the honest way, through the setting-free
    # services default (timezone.now), so the run bills April.
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 5, 1, 12, tzinfo=UTC))
    response = staff_client.post(reverse("staff:billing-run-now"), follow=True)
    assert response.status_code == 200
    run = InvoiceRun.objects.get()
    assert run.triggered_by.username == "ops"
    assert (run.contracts, run.created, run.failed) == (1, 1, 0)
    invoice = Invoice.objects.get(contract=contract)
    assert invoice.status == InvoiceStatus.ISSUED
    html = response.content.decode()
    assert "Run done: 1 contracts, 1 created" in html
    assert invoice.number in html
    assert "created" in html
    again = staff_client.post(reverse("staff:billing-run-now"), follow=True)
    assert "Nothing was due" in again.content.decode()
    assert InvoiceRun.objects.count() == 1


def test_staff_issue_pay_and_refusals_are_messages(staff_client, floor):
    invoice = draft(floor)
    act = lambda action, **data: staff_client.post(  # noqa: E731
        reverse("staff:billing-invoice-act", args=[invoice.pk, action]), data, follow=True
    )
    response = act("paid")
    assert response.status_code == 200
    assert messages_of(response) == ["Only an issued or overdue invoice can be paid; this one is draft."]
    response = act("issue")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.number
    assert f"Issued as {invoice.number}" in messages_of(response)[0]
    act("paid")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    response = act("void", reason="wrong rate")
    assert messages_of(response) == ["A paid invoice cannot be voided; issue a credit note."]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert staff_client.post(reverse("staff:billing-invoice-act", args=[invoice.pk, "explode"])).status_code == 404
    assert staff_client.get(reverse("staff:billing-invoice-act", args=[invoice.pk, "issue"])).status_code == 405


def test_void_needs_a_reason_and_keeps_it(staff_client, floor):
    invoice = draft(floor)
    url = reverse("staff:billing-invoice-act", args=[invoice.pk, "void"])
    response = staff_client.post(url, {"reason": ""})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    staff_client.post(url, {"reason": "Wrong rate on the contract"})
    invoice.refresh_from_db()
    assert (invoice.status, invoice.reason) == (InvoiceStatus.VOID, "Wrong rate on the contract")


def test_a_credit_note_from_the_invoice_page_and_bad_amounts(staff_client, floor):
    invoice = services.issue(draft(floor))
    url = reverse("staff:billing-invoice-act", args=[invoice.pk, "credit"])
    for bad in ["abc", "-5", "0", "1.234"]:
        response = staff_client.post(url, {"amount": bad, "reason": "PDU over-read"})
        assert response.status_code == 400, bad
        assert 'class="errorlist' in response.content.decode(), bad
    too_much = invoice.total_amount + Decimal("0.01")
    response = staff_client.post(url, {"amount": str(too_much), "reason": "PDU over-read"}, follow=True)
    assert messages_of(response) == [f"At most {invoice.total_amount} USD of {invoice.number} is left to credit."]
    response = staff_client.post(url, {"amount": "8.71", "reason": "PDU over-read"}, follow=True)
    note = Invoice.objects.get(corrects=invoice)
    assert (note.total_amount, note.status, note.reason) == (Decimal("-8.71"), InvoiceStatus.ISSUED, "PDU over-read")
    assert f"Credit note {note.number} issued: -8.71 USD." in messages_of(response)
    assert note.number in response.content.decode()  # listed on the invoice's page
    assert staff_client.get(reverse("staff:billing-invoice", args=[note.pk])).status_code == 200


def announce(client, where, starts_at, hours_long=4, **extra):
    data = {
        "site": where.slug,
        "starts_at": starts_at.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (starts_at + dt.timedelta(hours=hours_long)).strftime("%Y-%m-%dT%H:%M"),
        "reason": "Transformer service",
    } | extra
    return client.post(reverse("staff:billing-maintenance-announce"), data, follow=True)


def test_announcing_maintenance_shows_whose_notice_it_meets(staff_client, floor):
    contract = billing_floor(floor, maintenance_notice_h=72)
    site = floor["site"]
    soon = (timezone.now() + dt.timedelta(hours=24)).replace(second=0, microsecond=0)
    response = announce(staff_client, site, soon)
    assert response.status_code == 400  # too late for the contract: staff are asked first
    assert Maintenance.objects.count() == 0
    html = response.content.decode()
    assert "will not be left out of the SLA of 1 contract(s)" in html
    assert contract.reference in html
    response = announce(staff_client, site, soon, late_ok="on")
    m = Maintenance.objects.get()
    assert m.announced_by.username == "ops"
    assert m.cancelled_at is None
    assert Decimal(23) < m.notice_h <= Decimal(24)
    assert "Too late for 1 contract(s)" in messages_of(response)[0]
    (row,) = response.context["rows"]
    assert (row["met"], [n.contract.pk for n in row["missed"]]) == ([], [contract.pk])

    later = soon + dt.timedelta(days=4)
    response = announce(staff_client, site, later)
    assert Maintenance.objects.count() == 2
    newest = response.context["rows"][0]
    assert [n.contract.pk for n in newest["met"]] == [contract.pk]
    assert newest["missed"] == []


def test_maintenance_validation(staff_client, floor):
    billing_floor(floor)
    site = floor["site"]
    later = timezone.now() + dt.timedelta(days=5)
    response = announce(staff_client, site, later, hours_long=-1)
    assert response.status_code == 400
    assert "Maintenance must end after it starts." in response.content.decode()
    response = announce(staff_client, site, timezone.now() - dt.timedelta(hours=2))
    assert response.status_code == 400
    assert "cannot be announced after it has started" in response.content.decode()
    response = announce(staff_client, site, later, site="nowhere")
    assert response.status_code == 400
    assert Maintenance.objects.count() == 0


def test_cancelling_maintenance(staff_client, floor):
    site = floor["site"]
    start = timezone.now() + dt.timedelta(days=5)
    m = Maintenance.objects.create(site=site, starts_at=start, ends_at=start + dt.timedelta(hours=2), reason="x")
    url = reverse("staff:billing-maintenance-cancel", args=[m.pk])
    response = staff_client.post(url, follow=True)
    m.refresh_from_db()
    assert m.cancelled_at is not None
    first = m.cancelled_at
    response = staff_client.post(url, follow=True)
    assert "already cancelled" in messages_of(response)[0]
    m.refresh_from_db()
    assert m.cancelled_at == first


def test_lists_read_in_a_constant_number_of_queries(staff_client, floor, django_assert_max_num_queries):
    from tests.factories import ContractFactory

    contract = april(floor)
    services.issue(services.invoice_month(contract, APRIL).invoice)
    for i in range(6):
        other = ContractFactory(site=floor["site"], tenant=contract.tenant)
        ContractTerms.objects.create(contract=other)
        start = timezone.now() + dt.timedelta(days=5 + i)
        Maintenance.objects.create(
            site=floor["site"], starts_at=start, ends_at=start + dt.timedelta(hours=1), reason="x"
        )
        InvoiceRun.objects.create(on_date=dt.date(2026, 5, 1))
    for url in [
        reverse("staff:billing"),
        reverse("staff:billing-runs"),
        reverse("staff:billing-maintenance", args=[floor["site"].slug]),
    ]:
        with django_assert_max_num_queries(14):
            assert staff_client.get(url).status_code == 200
