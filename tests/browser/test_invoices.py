"""Invoices in a real browser: a tenant opens the list from the navigation, then an invoice
with its lines, uptime and machines, and sees the documents' links."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.billing.conftest import build_billed
from tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_tenant_opens_the_invoice_list_and_an_invoice(floor, live_server, page, shot):
    billed = build_billed(floor)
    invoice = billed["invoice"]
    user = MembershipFactory(tenant=billed["contract"].tenant, user__username="sibir").user
    assert user.username == "sibir"
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}{reverse('portal:login')}")
    page.fill("input[name=username]", "sibir")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.get_by_role("link", name="Invoices", exact=True).first.click()
    expect(page).to_have_url(f"{live_server.url}{reverse('portal:invoices')}")
    rows = page.locator("#invoices tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(invoice.number)
    expect(rows.first).to_contain_text("216.00 USD")
    shot("invoice-list")
    page.get_by_role("link", name=invoice.number).click()
    expect(page.locator("h1")).to_contain_text(invoice.number)
    expect(page.locator("#total")).to_contain_text("216.00 USD")
    expect(page.locator("#lines tbody tr")).to_have_count(1)
    expect(page.locator("#machines tbody tr")).to_have_count(2)
    expect(page.locator("#uptime")).to_contain_text("Announced maintenance")
    expect(page.locator("body")).to_contain_text("ООО Сибирь Майнинг")
    shot("invoice-page")
    response = page.request.get(f"{live_server.url}{reverse('portal:invoice-pdf', args=[invoice.pk])}")
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
