"""Staff billing in a real browser: the dashboard with last month's revenue, an invoice's
page, a credit note issued from it (CSRF and all)."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from hosting.billing import services
from tests.billing.world import billing_floor, close, hours, live
from tests.factories import PASSWORD, StaffFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
UTC = dt.UTC
A0 = dt.datetime(2026, 4, 1, tzinfo=UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def invoice(floor):
    contract = billing_floor(floor)
    for m in live(floor, 2, since=A0 - dt.timedelta(days=1)):
        hours(m, A0, MAY, lambda i, at: {"power_w": 3000.0})
    close(floor["site"], MAY)
    StaffFactory(username="ops")
    return services.issue(services.invoice_month(contract, dt.date(2026, 4, 1)).invoice, now=MAY)


def test_staff_read_the_dashboard_and_credit_an_invoice(invoice, live_server, page, shot):
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/?next=/staff/billing/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/staff/billing/")
    expect(page.locator("#revenue tbody tr")).to_have_count(1)
    expect(page.locator("#revenue")).to_contain_text(str(invoice.total_amount))
    expect(page.locator("nav, header").get_by_role("link", name="Billing").first).to_be_visible()
    shot("billing-dashboard")
    page.goto(f"{live_server.url}/staff/billing/invoices/{invoice.pk}/")
    expect(page.locator("h1")).to_contain_text(invoice.number)
    expect(page.locator("#lines tbody tr").first).to_be_visible()
    page.fill("#credit-form input[name=amount]", "5.00")
    page.fill("#credit-form input[name=reason]", "PDU over-read on 3 April")
    page.click("#credit")
    expect(page.locator(".messages")).to_contain_text("Credit note")
    expect(page.locator("#credit-notes")).to_contain_text("-5.00 USD")
    shot("billing-invoice")
