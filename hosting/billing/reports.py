"""Read-only figures of billing for the staff pages: revenue and SLA credits by site and
month, what is not billed yet, overdue invoices, drafts, and the maintenance notice each
contract asks for. Each function reads in a fixed number of queries (at most one per site
for `unbilled`); the pages only render them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from capacity.models import Site
from hosting.billing import services
from hosting.billing.models import (
    HOSTING_KINDS,
    ContractTerms,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Maintenance,
)
from hosting.lifecycle import BOOKED
from hosting.models import Contract

REVENUE_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PAID, InvoiceStatus.OVERDUE)
DEFAULT_NOTICE_H = ContractTerms._meta.get_field("maintenance_notice_h").get_default()


@dataclass
class RevenueRow:
    """One site's month in one currency."""

    site: str
    month: dt.date
    currency: str
    hosting: Decimal = Decimal("0.00")
    levies: Decimal = Decimal("0.00")
    setup: Decimal = Decimal("0.00")
    sla_credits: Decimal = Decimal("0.00")
    other: Decimal = Decimal("0.00")

    @property
    def total(self) -> Decimal:
        return self.hosting + self.levies + self.setup + self.sla_credits + self.other


def revenue(months: int = 12, today: dt.date | None = None) -> list[RevenueRow]:
    """Issued, paid and overdue invoices' lines of the last `months` months (by period),
    summed by site, month, currency and kind; SLA credits are negative. One query."""
    today = today or timezone.now().date()
    since = today.replace(day=1) - relativedelta(months=months - 1)
    sums = (
        InvoiceLine.objects.filter(
            invoice__kind=InvoiceKind.INVOICE, invoice__status__in=REVENUE_STATUSES, invoice__period_start__gte=since
        )
        .values_list("invoice__site__name", "invoice__period_start", "invoice__currency", "kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    rows: dict[tuple, RevenueRow] = {}
    for site, month, currency, kind, total in sums:
        month = month.replace(day=1)
        row = rows.setdefault((site, month, currency), RevenueRow(site, month, currency))
        if kind in HOSTING_KINDS:
            row.hosting += total
        elif kind == LineKind.LEVY:
            row.levies += total
        elif kind == LineKind.SETUP:
            row.setup += total
        elif kind == LineKind.SLA_CREDIT:
            row.sla_credits += total
        else:
            row.other += total
    return sorted(rows.values(), key=lambda r: (-r.month.toordinal(), r.site, r.currency))


def revenue_totals(rows: list[RevenueRow]) -> list[RevenueRow]:
    """The rows summed per currency (never across currencies)."""
    totals: dict[str, RevenueRow] = {}
    for r in rows:
        t = totals.setdefault(r.currency, RevenueRow("all sites", r.month, r.currency))
        t.hosting += r.hosting
        t.levies += r.levies
        t.setup += r.setup
        t.sla_credits += r.sla_credits
        t.other += r.other
    return [totals[c] for c in sorted(totals)]


@dataclass
class Unbilled:
    site: Site
    period_start: dt.date
    contracts: list[Contract] = field(default_factory=list)


def unbilled(now: dt.datetime | None = None) -> list[Unbilled]:
    """Per site: last month (the site's local date) and its billable contracts with no
    final (issued, paid, overdue) invoice of it yet — drafts count as not billed."""
    now = now or timezone.now()
    out = []
    for site in Site.objects.order_by("name"):
        period_start, _ = services.month_of(services.local_today(site, now) - relativedelta(months=1))
        made = Invoice.objects.filter(site=site, kind=InvoiceKind.INVOICE, period_start=period_start).exclude(
            status__in=[InvoiceStatus.VOID, InvoiceStatus.DRAFT]
        )
        contracts = list(
            services.billable(site, period_start).exclude(pk__in=made.values("contract_id")).select_related("tenant")
        )
        out.append(Unbilled(site, period_start, contracts))
    return out


def overdue(today: dt.date | None = None) -> list[tuple[Invoice, int]]:
    """Overdue invoices, longest overdue first, with their days overdue. One query."""
    today = today or timezone.now().date()
    rows = (
        Invoice.objects.filter(status=InvoiceStatus.OVERDUE)
        .select_related("site", "tenant", "contract")
        .order_by("due_on", "pk")
    )
    return [(i, (today - i.due_on).days if i.due_on else 0) for i in rows]


def drafts() -> QuerySet[Invoice]:
    return (
        Invoice.objects.filter(status=InvoiceStatus.DRAFT)
        .select_related("site", "tenant", "contract")
        .order_by("site__name", "period_start", "pk")
    )


def invoice_page(pk: int) -> Invoice:
    """One invoice with what its staff page shows: lines, machines, notes. Raises DoesNotExist."""
    return (
        Invoice.objects.select_related("site", "tenant", "contract", "corrects", "run")
        .prefetch_related("lines", "machines__machine", "credit_notes")
        .get(pk=pk)
    )


@dataclass
class Notice:
    contract: Contract
    notice_h: int


def notices(site: Site) -> list[Notice]:
    """The site's booked contracts with the maintenance notice each asks for (defaults for
    contracts whose terms were never set). One query."""
    contracts = Contract.objects.filter(site=site).filter(Q(status__in=BOOKED)).select_related("tenant", "terms")
    out = []
    for c in contracts.order_by("pk"):
        try:
            hours = c.terms.maintenance_notice_h
        except ContractTerms.DoesNotExist:
            hours = DEFAULT_NOTICE_H
        out.append(Notice(c, hours))
    return out


def meets(notice_h: Decimal, contract_notices: list[Notice]) -> tuple[list[Notice], list[Notice]]:
    """The contracts whose notice `notice_h` hours meets, and those it does not."""
    met = [n for n in contract_notices if notice_h >= n.notice_h]
    return met, [n for n in contract_notices if notice_h < n.notice_h]


def maintenances(site: Site) -> QuerySet[Maintenance]:
    return Maintenance.objects.filter(site=site).select_related("announced_by").order_by("-starts_at")


def by_contract_notices(rows: list[Maintenance], contract_notices: list[Notice]) -> list[dict]:
    return [
        {"m": m, "met": met, "missed": missed} for m in rows for met, missed in [meets(m.notice_h, contract_notices)]
    ]
