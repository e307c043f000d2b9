"""API v1 invoices: tenants read their issued invoices (never a draft, never another
tenant's), staff all; lines, machines, PDF and CSVs; the contract's billing terms."""

import csv
import io

import pytest
from pypdf import PdfReader

from tests.api.conftest import client_for
from tests.billing.conftest import FORMULA_SERIAL

pytestmark = pytest.mark.django_db


def urls(invoice):
    base = f"/api/v1/invoices/{invoice.pk}/"
    return [base, base + "lines/", base + "machines/", base + "?format=pdf", base + "?format=csv",
            base + "machines/?format=csv", base + "days/"]  # fmt: skip


def test_a_tenant_lists_its_issued_invoices_but_not_drafts(billed, owner):
    body = client_for(owner).get("/api/v1/invoices/").json()
    assert [row["number"] for row in body["results"]] == [billed["invoice"].number]
    assert body["results"][0]["total_amount"] == "216.00"
    assert body["results"][0]["period"] == "2026-04"


def test_staff_list_every_invoice_drafts_included(billed, staff):
    body = client_for(staff).get("/api/v1/invoices/").json()
    assert {row["id"] for row in body["results"]} == {billed["invoice"].pk, billed["draft"].pk}


def test_filters_by_status_contract_and_period(billed, staff):
    api = client_for(staff)
    assert [r["id"] for r in api.get("/api/v1/invoices/?status=draft").json()["results"]] == [billed["draft"].pk]
    assert [r["id"] for r in api.get("/api/v1/invoices/?period=2026-04").json()["results"]] == [billed["invoice"].pk]
    assert api.get(f"/api/v1/invoices/?contract={billed['contract'].pk}").json()["count"] == 2
    assert api.get("/api/v1/invoices/?period=2026-13").status_code == 400
    assert api.get("/api/v1/invoices/?period=april").status_code == 400
    assert api.get("/api/v1/invoices/?status=unpaid").status_code == 400


def test_the_detail_carries_lines_and_the_uptime_summary(billed, owner):
    body = client_for(owner).get(f"/api/v1/invoices/{billed['invoice'].pk}/").json()
    assert body["number"] == billed["invoice"].number
    assert [(ln["kind"], ln["amount"]) for ln in body["lines"]] == [("energy", "216.00")]
    assert body["summary"]["windows_counted"] == 1440
    assert body["summary"]["excluded"] == {"curtailed": 0, "maintenance": 0, "rma": 0}


def test_lines_and_machines_are_paginated(billed, owner):
    api = client_for(owner)
    lines = api.get(f"/api/v1/invoices/{billed['invoice'].pk}/lines/").json()
    assert lines["count"] == 1
    machines = api.get(f"/api/v1/invoices/{billed['invoice'].pk}/machines/?page_size=1").json()
    assert machines["count"] == 2
    assert len(machines["results"]) == 1
    assert machines["next"]
    assert machines["results"][0]["kwh_billed"] == "2160.000"


def test_the_pdf_and_csvs_download(billed, owner):
    api, invoice = client_for(owner), billed["invoice"]
    pdf = api.get(f"/api/v1/invoices/{invoice.pk}/?format=pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert invoice.number in text
    assert "216.00 USD" in text
    lines = api.get(f"/api/v1/invoices/{invoice.pk}/?format=csv")
    assert lines["Content-Type"].startswith("text/csv")
    assert "216.00" in b"".join(lines.streaming_content).decode()
    machines = api.get(f"/api/v1/invoices/{invoice.pk}/machines/?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(machines.streaming_content).decode())))
    assert "'" + FORMULA_SERIAL in [r[0] for r in rows]


def test_another_tenant_gets_404_on_every_invoice_url(billed, stranger):
    api = client_for(stranger)
    assert api.get("/api/v1/invoices/").json()["count"] == 0
    for url in urls(billed["invoice"]):
        assert api.get(url).status_code == 404, url
    assert api.get(f"/api/v1/contracts/{billed['contract'].pk}/terms/").status_code == 404


def test_the_owner_gets_404_on_its_draft(billed, owner):
    api = client_for(owner)
    for url in urls(billed["draft"]):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json"


def test_anonymous_gets_401(billed, anon):
    for url in [*urls(billed["invoice"]), "/api/v1/invoices/", f"/api/v1/contracts/{billed['contract'].pk}/terms/"]:
        assert anon.get(url).status_code == 401, url


def test_staff_read_a_draft_and_its_pdf(billed, staff):
    api = client_for(staff)
    for url in urls(billed["draft"]):
        assert api.get(url).status_code == 200, url


def test_the_contract_terms_are_readable_by_its_tenant(billed, owner):
    body = client_for(owner).get(f"/api/v1/contracts/{billed['contract'].pk}/terms/").json()
    assert body["billing_mode"] == "metered"
    assert body["sla_target_pct"] == "95.00"
    assert body["sla_tiers"][0] == {"below_pct": "95", "credit_pct": "5"}
    assert body["curtailable"] is False


def test_the_api_is_read_only(billed, staff):
    api = client_for(staff)
    assert api.post("/api/v1/invoices/", {}).status_code == 405
    assert api.delete(f"/api/v1/invoices/{billed['invoice'].pk}/").status_code == 405


@pytest.fixture
def keep_the_test_connection():
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("keep_the_test_connection")
@pytest.mark.parametrize("who", ["owner", "staff"])
def test_the_invoice_answers_are_as_the_schema_says(billed, who, request):
    """Schemathesis's generated ids rarely name an invoice: read the world's own, in every format."""
    from hosting.models import ApiToken
    from tests.api.test_schema import CHECKS, operation

    _, key = ApiToken.issue(request.getfixturevalue(who), "schema")
    invoice_id, contract_id = billed["invoice"].pk, billed["contract"].pk
    reads = [
        ("/invoices/", {}, {}),
        ("/invoices/", {}, {"period": "2026-04", "status": "issued"}),
        ("/invoices/{id}/", {"id": invoice_id}, {}),
        ("/invoices/{id}/", {"id": invoice_id}, {"format": "pdf"}),
        ("/invoices/{id}/", {"id": invoice_id}, {"format": "csv"}),
        ("/invoices/{id}/lines/", {"id": invoice_id}, {}),
        ("/invoices/{id}/machines/", {"id": invoice_id}, {}),
        ("/invoices/{id}/machines/", {"id": invoice_id}, {"format": "csv"}),
        ("/contracts/{id}/terms/", {"id": contract_id}, {}),
    ]
    for path, parameters, query in reads:
        case = operation("GET", path).Case(
            path_parameters=parameters, query=query, headers={"Authorization": f"Token {key}"}
        )
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == 200, (path, query, response.text)


def test_the_days_behind_an_invoice_are_each_machines_local_days(billed, owner):
    """Two machines × 30 April days of 24 hourly windows, 72 kWh each day at 3,000 W."""
    api = client_for(owner)
    base = f"/api/v1/invoices/{billed['invoice'].pk}/days/"
    body = api.get(base, {"page_size": 100}).json()
    assert body["count"] == 60
    first = body["results"][0]
    assert (first["day"], first["windows"], first["windows_hashing"], first["energy_wh_pdu"]) == (
        "2026-04-01", 24, 24, 72000.0,
    )  # fmt: skip
    a = billed["machines"][0]
    assert api.get(base, {"machine": a.pk}).json()["count"] == 30
    assert api.get(base, {"machine": "x"}).status_code == 400
