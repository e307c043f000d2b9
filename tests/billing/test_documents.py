"""An invoice's PDF carries its facts and totals (read back with pypdf); its CSVs are
formula-safe."""

import csv
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from hosting.billing import documents
from tests.billing.conftest import FORMULA_SERIAL

pytestmark = pytest.mark.django_db


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_pdf_opens_and_carries_the_number_totals_and_the_tenants_cyrillic_name(billed):
    """2 machines × 720 h × 3 kWh = 4,320 kWh × 0.05 = 216.00 USD."""
    invoice = billed["invoice"]
    assert invoice.total_amount == Decimal("216.00")
    data = documents.pdf_bytes(invoice)
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    for expected in ("Haven", invoice.number, "216.00 USD", "Invoice", "2026-04-01", "2026-04-30",
                     invoice.site.name, f"#{invoice.contract_id}", "Issued", "Uptime summary",
                     "machines CSV", "4320", "Сибирь Майнинг", "Қазақ"):  # fmt: skip
        assert expected in text, expected


def test_a_draft_pdf_says_draft(billed):
    assert "DRAFT" in pdf_text(documents.pdf_bytes(billed["draft"]))


def test_the_lines_csv_lists_every_line_with_its_currency(billed):
    body = b"".join(documents.lines_csv(billed["invoice"]).streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == documents.LINE_HEADER
    assert [(r[1], r[3], r[6], r[7]) for r in rows[1:]] == [("energy", "4320.0000", "216.00", "USD")]


def test_the_machines_csv_escapes_a_serial_that_is_a_formula(billed):
    body = b"".join(documents.machines_csv(billed["invoice"]).streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == documents.MACHINE_HEADER
    serials = [r[0] for r in rows[1:]]
    assert "'" + FORMULA_SERIAL in serials
    assert FORMULA_SERIAL not in serials
    assert len(rows) == 3


def test_a_description_that_is_a_formula_is_escaped_in_the_lines_csv(billed):
    billed["invoice"].lines.update(description="=1+1")
    body = b"".join(documents.lines_csv(billed["invoice"]).streaming_content).decode()
    assert list(csv.reader(io.StringIO(body)))[1][2] == "'=1+1"
