"""An invoice as documents people keep: a PDF (fpdf2) and CSVs of its lines and of its
per-machine detail (through `hosting.exports`, so every text cell is formula-safe).

The PDF embeds Roboto from the `font-roboto` package (PyPI): it covers Latin, Cyrillic and
Kazakh letters (Қ, ә, ң …) and ₸, so tenant names like "ООО Сибирь Майнинг" render as written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from fpdf import FPDF, FontFace

from hosting.billing.models import Invoice, InvoiceMachine
from hosting.exports import csv_response

HOST_NAME = "Haven"
MACHINE_CSV_NOTE = "Per-machine detail (energy, uptime, exclusions) is in the machines CSV of this invoice."

LINE_HEADER = ["position", "kind", "description", "quantity", "unit", "unit_price", "amount", "currency"]
MACHINE_HEADER = [
    "serial", "model", "days_live", "hours_live", "kwh_metered", "kwh_billed", "windows", "windows_counted",
    "windows_up", "windows_unknown", "excluded_curtailed", "excluded_maintenance", "excluded_rma",
    "curtailed_over_rights", "uptime_pct", "setup_billed", "amount", "currency",
]  # fmt: skip


def _font_dir() -> Path | None:
    try:
        import font_roboto
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        return None
    folder = Path(font_roboto.__file__).parent / "files"
    return folder if (folder / "Roboto-Regular.ttf").exists() else None


def invoice_number(invoice: Invoice) -> str:
    return invoice.number or "DRAFT"


def filename(invoice: Invoice, suffix: str) -> str:
    """A file name safe in a header: the number (or draft-<id>) and the suffix."""
    stem = invoice.number or f"draft-{invoice.pk}"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) + suffix


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _plain(text: str) -> str:
    """Fallback without the Unicode font: what Latin-1 cannot carry becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def summary_lines(invoice: Invoice) -> list[str]:
    """The uptime summary as sentences (for the PDF; the portal shows the same figures)."""
    s: dict[str, Any] = invoice.summary or {}
    if not s:
        return ["No uptime summary (no machine was billed)."]
    excluded = s.get("excluded") or {}
    uptime = s.get("uptime_pct")
    return [
        f"Machines billed: {s.get('machines', 0)} · kWh metered: {s.get('kwh_metered', '0')}",
        f"SLA uptime: {uptime + ' %' if uptime is not None else 'n/a'} "
        f"({s.get('windows_up', 0)} of {s.get('windows_counted', 0)} counted windows up; "
        f"{s.get('windows_unknown', 0)} unknown windows counted as up)",
        f"Excluded from the SLA: curtailed {excluded.get('curtailed', 0)}, "
        f"maintenance {excluded.get('maintenance', 0)}, RMA {excluded.get('rma', 0)} windows; "
        f"curtailed over rights (counted down): {s.get('curtailed_over_rights', 0)}",
        f"SLA credit: {s.get('sla_credit_pct', '0')} % of hosting fees",
    ]


def pdf_bytes(invoice: Invoice) -> bytes:
    """The invoice (or credit note) as a one-or-more-page A4 PDF."""
    contract, tenant, site = invoice.contract, invoice.tenant, invoice.site
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    fonts = _font_dir()
    text: Callable[[str], str]
    if fonts is not None:
        pdf.add_font("Roboto", "", str(fonts / "Roboto-Regular.ttf"))
        pdf.add_font("Roboto", "B", str(fonts / "Roboto-Bold.ttf"))
        family, text = "Roboto", str
    else:  # pragma: no cover - only without the pinned font package
        family, text = "Helvetica", _plain
    pdf.set_title(text(f"{HOST_NAME} {invoice.get_kind_display()} {invoice_number(invoice)}"))
    pdf.add_page()
    width = pdf.epw

    pdf.set_font(family, "B", 18)
    pdf.cell(width, 10, text(HOST_NAME), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "B", 13)
    pdf.cell(width, 8, text(f"{invoice.get_kind_display()} {invoice_number(invoice)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    pdf.set_font(family, "", 10)
    period_last = invoice.period_end - dt.timedelta(days=1)
    facts = [
        ("Tenant", tenant.name),
        ("Contract", f"#{contract.pk} ({contract.reference})"),
        ("Site", site.name),
        ("Period", f"{invoice.period_start:%Y-%m-%d} to {period_last:%Y-%m-%d}"),
        ("Issued", f"{invoice.issued_at:%Y-%m-%d}" if invoice.issued_at else "not yet issued"),
        ("Due", f"{invoice.due_on:%Y-%m-%d}" if invoice.due_on else "—"),
        ("Status", invoice.get_status_display()),
    ]
    if invoice.corrects_id:
        facts.append(("Corrects", str(invoice.corrects)))
    if invoice.reason:
        facts.append(("Reason", invoice.reason))
    for label, value in facts:
        pdf.set_font(family, "B", 10)
        pdf.cell(30, 6, text(label))
        pdf.set_font(family, "", 10)
        pdf.multi_cell(width - 30, 6, text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    cols = [("Description", 0.40, "L"), ("Quantity", 0.14, "R"), ("Unit", 0.10, "L"),
            ("Unit price", 0.16, "R"), ("Amount", 0.20, "R")]  # fmt: skip
    pdf.set_font(family, "", 9)
    with pdf.table(col_widths=[c[1] for c in cols], text_align=[c[2] for c in cols], line_height=5,
                   borders_layout="HORIZONTAL_LINES", headings_style=FontFace(emphasis="BOLD")) as table:  # fmt: skip
        heading = table.row()
        for title, _, _ in cols:
            heading.cell(text(title))
        for line in invoice.lines.all():
            row = table.row()
            for value in (line.description, f"{line.quantity.normalize():f}", line.unit,
                          f"{line.unit_price.normalize():f}", money(line.amount, invoice.currency)):  # fmt: skip
                row.cell(text(value))
    pdf.ln(3)

    pdf.set_font(family, "", 10)
    for label, amount in (("Hosting", invoice.hosting_amount), ("SLA credit", -invoice.credit_amount)):
        pdf.cell(width * 0.8, 6, text(label), align="R")
        pdf.cell(width * 0.2, 6, text(money(amount, invoice.currency)), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "B", 11)
    pdf.cell(width * 0.8, 8, text("Total"), align="R")
    pdf.cell(width * 0.2, 8, text(money(invoice.total_amount, invoice.currency)), align="R",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(4)

    pdf.set_font(family, "B", 10)
    pdf.cell(width, 6, text("Uptime summary"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    for sentence in summary_lines(invoice):
        pdf.multi_cell(width, 5, text(sentence), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(width, 5, text(MACHINE_CSV_NOTE), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def pdf_response(invoice: Invoice) -> HttpResponse:
    response = HttpResponse(pdf_bytes(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename(invoice, ".pdf")}"'
    return response


def line_rows(invoice: Invoice) -> Iterator[list[Any]]:
    for line in invoice.lines.all():
        yield [line.position, line.kind, line.description, line.quantity, line.unit, line.unit_price,
               line.amount, invoice.currency]  # fmt: skip


def machine_rows(invoice: Invoice) -> Iterator[list[Any]]:
    rows = InvoiceMachine.objects.filter(invoice=invoice).select_related("machine", "machine_model")
    for m in rows.order_by("machine__serial", "pk").iterator(chunk_size=2000):
        yield [
            m.machine.serial, str(m.machine_model), m.days_live, m.hours_live, m.kwh_metered, m.kwh_billed,
            m.windows, m.windows_counted, m.windows_up, m.windows_unknown, m.excluded_curtailed,
            m.excluded_maintenance, m.excluded_rma, m.curtailed_over_rights,
            "" if m.uptime_pct is None else m.uptime_pct, "yes" if m.setup_billed else "no", m.amount,
            invoice.currency,
        ]  # fmt: skip


def lines_csv(invoice: Invoice) -> StreamingHttpResponse:
    return csv_response(filename(invoice, "-lines.csv"), LINE_HEADER, line_rows(invoice))


def machines_csv(invoice: Invoice) -> StreamingHttpResponse:
    return csv_response(filename(invoice, "-machines.csv"), MACHINE_HEADER, machine_rows(invoice))
