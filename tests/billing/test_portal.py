"""The portal's invoices: the tenant's issued ones with lines, uptime, machines and documents;
a draft or another tenant's invoice is 404; anonymous users are sent to log in; the contract
page shows its billing terms."""

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from tests.billing.conftest import FORMULA_SERIAL

pytestmark = pytest.mark.django_db

NAMES = ["portal:invoice", "portal:invoice-pdf", "portal:invoice-lines-csv", "portal:invoice-machines-csv"]


def logged_in(client, user):
    client.force_login(user)
    return client


def test_the_list_shows_issued_invoices_not_drafts(client, billed, owner):
    page = logged_in(client, owner).get(reverse("portal:invoices"))
    assert page.status_code == 200
    html = page.content.decode()
    assert billed["invoice"].number in html
    assert "216.00 USD" in html
    assert reverse("portal:invoice", args=[billed["draft"].pk]) not in html
    assert reverse("portal:invoices") in html  # the navigation link


def test_the_invoice_page_shows_lines_uptime_and_machines(client, billed, owner):
    invoice = billed["invoice"]
    html = logged_in(client, owner).get(reverse("portal:invoice", args=[invoice.pk])).content.decode()
    for expected in (invoice.number, "216.00 USD", "Announced maintenance", "Unknown windows", "1,440", "2026-04-30",
                     FORMULA_SERIAL.replace('"', "&quot;"), reverse("portal:invoice-pdf", args=[invoice.pk]),
                     reverse("portal:invoice-machines-csv", args=[invoice.pk])):  # fmt: skip
        assert expected in html, expected


def test_the_documents_download(client, billed, owner):
    client = logged_in(client, owner)
    invoice = billed["invoice"]
    pdf = client.get(reverse("portal:invoice-pdf", args=[invoice.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert invoice.number in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    machines = b"".join(client.get(reverse("portal:invoice-machines-csv", args=[invoice.pk])).streaming_content)
    assert ("'" + FORMULA_SERIAL).encode().replace(b'"', b'""') in machines
    lines = b"".join(client.get(reverse("portal:invoice-lines-csv", args=[invoice.pk])).streaming_content)
    assert b"216.00" in lines


def test_another_tenant_gets_404_on_every_invoice_url(client, billed, stranger):
    client = logged_in(client, stranger)
    assert billed["invoice"].number not in client.get(reverse("portal:invoices")).content.decode()
    for name in NAMES:
        assert client.get(reverse(name, args=[billed["invoice"].pk])).status_code == 404, name


def test_the_owner_gets_404_on_its_draft(client, billed, owner):
    client = logged_in(client, owner)
    for name in NAMES:
        assert client.get(reverse(name, args=[billed["draft"].pk])).status_code == 404, name


def test_anonymous_users_are_sent_to_log_in(client, billed):
    for url in [reverse("portal:invoices"), *(reverse(n, args=[billed["invoice"].pk]) for n in NAMES)]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert reverse("portal:login") in response["Location"]


def test_staff_without_a_tenant_are_sent_to_their_pages(client, billed, staff):
    response = logged_in(client, staff).get(reverse("portal:invoices"))
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:home")


def test_the_contract_page_shows_billing_terms_sla_and_curtailment_rights(client, billed, owner):
    from hosting.billing.models import ContractTerms

    ContractTerms.objects.filter(contract=billed["contract"]).update(
        curtailment_priority=2, max_curtailed_hours_month=40, sla_target_pct=97
    )
    html = logged_in(client, owner).get(reverse("portal:contract", args=[billed["contract"].pk])).content.decode()
    for expected in ("Billing terms", "Metered", "due 15 days", "97.00 %", "below 95 % → 5 % credit",
                     "72 h notice", "Curtailable (priority 2)", "at most 40 h a month"):  # fmt: skip
        assert expected in html, expected
