"""Billing's writes: machine-days rolled from the windows, invoices made, issued, paid,
voided and corrected — each under a row lock and safe to run twice.

The period of an invoice is a calendar month in the site's time zone; a machine-day is a
local date, so a month with a DST change has its 743 or 745 hours.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from capacity.errors import Refusal
from capacity.models import Site
from changelog import record as changes
from hosting.billing import month, rules, signals
from hosting.billing.models import (
    HOSTING_KINDS,
    ContractTerms,
    Invoice,
    InvoiceCounter,
    InvoiceKind,
    InvoiceLine,
    InvoiceMachine,
    InvoiceRun,
    InvoiceStatus,
    Levy,
    LineKind,
    Maintenance,
    RollupCursor,
    SetupCharge,
    SiteBilling,
)
from hosting.lifecycle import BOOKED, ContractStatus
from hosting.models import Contract
from hosting.telemetry.models import TelemetryPolicy, Window

log = logging.getLogger(__name__)
UTC = dt.UTC


class BillingRefusal(Refusal):
    code = "billing_refused"

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


# --- Terms ----------------------------------------------------------------------------------


def terms_for(contract: Contract) -> ContractTerms:
    terms, _ = ContractTerms.objects.get_or_create(contract=contract)
    return terms


def currency_of(site: Site) -> str:
    billing, _ = SiteBilling.objects.get_or_create(site=site)
    return billing.currency


def levies_for(site: Site, period_start: dt.date) -> list[rules.Levy]:
    """The site's levies in force on the period's first day, their tier picked."""
    return month.levies_in_force(list(Levy.objects.filter(site=site).order_by("effective_from", "pk")), period_start)


# --- Periods --------------------------------------------------------------------------------


def local_today(site: Site, now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(site.timezone)).date()


def day_bounds(site: Site, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A local date of the site as a UTC range (23, 24 or 25 hours)."""
    tz = zoneinfo.ZoneInfo(site.timezone)
    start = dt.datetime.combine(day, dt.time(), tz).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(UTC)
    return start, end


month_of = month.month_of


# --- Machine-days ---------------------------------------------------------------------------


def _dt(at: dt.datetime):
    return connection.ops.adapt_datetimefield_value(at)


DAY_COLUMNS = [
    "contract_id", "site_id", "window_s", "windows", "windows_curtailed", "windows_rma", "windows_maintenance",
    "windows_unknown", "windows_reachable", "windows_hashing",
    "energy_wh_pdu", "energy_wh_miner", "energy_wh_nameplate",
]  # fmt: skip


DEFAULT_NOTICE_H = ContractTerms._meta.get_field("maintenance_notice_h").default


def _roll_day(site: Site, day: dt.date, interval_s: int) -> int:
    """One local day of the site's windows into MachineDay (one INSERT … SELECT)."""
    start, end = day_bounds(site, day)
    maintenance = Maintenance.objects.filter(
        site=site, cancelled_at__isnull=True, starts_at__lt=end, ends_at__gt=start
    ).exists()
    in_maintenance = "0 = 1"
    if maintenance:  # the per-window test only on days with announced maintenance
        in_maintenance = f"""EXISTS (
            SELECT 1 FROM billing_maintenance m LEFT JOIN billing_contractterms t ON t.contract_id = w.contract_id
            WHERE m.site_id = w.site_id AND m.cancelled_at IS NULL AND w.start >= m.starts_at AND w.start < m.ends_at
              AND m.notice_h >= COALESCE(t.maintenance_notice_h, {DEFAULT_NOTICE_H})
        )"""  # noqa: S608
    # Curtailed in fact: told to stop and not hashing. A machine that ignored its stop kept
    # mining — its windows are live windows (counted for the SLA, billed as such).
    curtailed = "(w.machine_status = 'curtailed' AND w.hashing IS NOT TRUE)"
    plain = f"w.machine_status <> 'rma' AND NOT {curtailed}"
    counted = f"{plain} AND NOT ({in_maintenance})"
    energy = "COALESCE(SUM(CASE WHEN w.power_source = '{0}' THEN w.power_w END), 0.0) * %s / 3600.0"
    sql = f"""
        INSERT INTO billing_machineday (day, machine_id, {", ".join(DAY_COLUMNS)})
        SELECT * FROM (
            SELECT %s AS day, w.machine_id, MAX(w.contract_id), %s, %s, COUNT(*),
                   SUM(CASE WHEN {curtailed} THEN 1 ELSE 0 END),
                   SUM(CASE WHEN w.machine_status = 'rma' THEN 1 ELSE 0 END),
                   SUM(CASE WHEN {plain} AND {in_maintenance} THEN 1 ELSE 0 END),
                   SUM(CASE WHEN {counted} AND w.reachable IS NULL THEN 1 ELSE 0 END),
                   SUM(CASE WHEN {counted} AND w.reachable THEN 1 ELSE 0 END),
                   SUM(CASE WHEN {counted} AND w.hashing THEN 1 ELSE 0 END),
                   {energy.format("pdu")}, {energy.format("miner")}, {energy.format("nameplate")}
            FROM telemetry_window w
            WHERE w.site_id = %s AND w.start >= %s AND w.start < %s
            GROUP BY w.machine_id
        ) AS rolled WHERE 1 = 1
        ON CONFLICT (machine_id, day) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in DAY_COLUMNS)}
    """  # noqa: S608 - our own names
    params = [day, site.pk, interval_s, interval_s, interval_s, interval_s, site.pk, _dt(start), _dt(end)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def roll_up_machine_days(site: Site, now: dt.datetime | None = None) -> int:
    """Roll every local day of the site that telemetry has closed (each interval written
    or marked unknown: `filled_until` past the day's end) into MachineDay, once, in order.
    Returns the machine-days written."""
    now = now or timezone.now()
    policy = TelemetryPolicy.objects.filter(site=site).first()
    if policy is None or policy.filled_until is None:
        return 0
    RollupCursor.objects.get_or_create(site=site)
    written = 0
    while True:
        with transaction.atomic():
            cursor = RollupCursor.objects.select_for_update().get(site=site)
            if cursor.rolled_until is None:
                first = Window.objects.filter(site_id=site.pk).order_by("start").values_list("start", flat=True).first()
                # No window yet: nothing before the accounted time exists to roll.
                first = first or min(policy.filled_until, now)
                cursor.rolled_until = first.astimezone(zoneinfo.ZoneInfo(site.timezone)).date()
            day = cursor.rolled_until
            _, end = day_bounds(site, day)
            if end > min(policy.filled_until, now):
                cursor.save(update_fields=["rolled_until"])
                return written
            written += _roll_day(site, day, policy.poll_interval_s)
            cursor.rolled_until = day + dt.timedelta(days=1)
            cursor.save(update_fields=["rolled_until"])


def rolled_through(site: Site, period_end: dt.date) -> bool:
    cursor = RollupCursor.objects.filter(site=site).first()
    return cursor is not None and cursor.rolled_until is not None and cursor.rolled_until >= period_end


# --- A contract's month ---------------------------------------------------------------------


def compute(contract: Contract, period_start: dt.date) -> tuple[rules.Bill, list[rules.MachineMonth]]:
    """The bill of a contract's month, from its machine-days and terms (reads only)."""
    return month.MonthBook.load(contract.site, period_start, [contract]).bill(contract)


@dataclass
class Outcome:
    invoice: Invoice
    created: bool  # False: an invoice of the period existed (a draft is recomputed, a final one left)


def invoice_month(contract: Contract, period_start: dt.date, *, run: InvoiceRun | None = None) -> Outcome:
    """The contract's invoice for the month starting `period_start`: made (as a draft) if
    there is none, recomputed if it is still a draft, left alone once issued. Safe to call
    twice at once: the contract row is locked, the period's invoice read after the lock."""
    period_start = period_start.replace(day=1)
    _, period_end = month_of(period_start)
    with transaction.atomic():
        contract = Contract.objects.select_for_update(of=("self",)).select_related("site").get(pk=contract.pk)
        # Locked too: an issue() of this draft running now must finish before it is rewritten.
        existing = (
            Invoice.objects.select_for_update(of=("self",))
            .filter(contract_id=contract.pk, kind=InvoiceKind.INVOICE, period_start=period_start)
            .exclude(status=InvoiceStatus.VOID)
            .first()
        )
        if existing is not None and existing.is_final:
            return Outcome(existing, created=False)
        bill, months = compute(contract, period_start)
        invoice = existing or Invoice(
            contract=contract, tenant_id=contract.tenant_id, site_id=contract.site_id,
            period_start=period_start, period_end=period_end, currency=currency_of(contract.site),
        )  # fmt: skip
        invoice.run = run or invoice.run
        _write(invoice, bill, months)
        return Outcome(invoice, created=existing is None)


def _fill(invoice: Invoice, bill: rules.Bill) -> None:
    """The invoice's amounts and summary from its bill."""
    invoice.hosting_amount = bill.hosting
    invoice.credit_amount = -sum((ln.amount for ln in bill.lines if ln.kind == LineKind.SLA_CREDIT), Decimal(0))
    invoice.total_amount = bill.total
    invoice.summary = {
        "machines": len(bill.machines),
        "kwh_metered": str(bill.kwh_metered),
        "uptime_pct": None if bill.uptime.pct is None else str(bill.uptime.pct),
        "windows_counted": bill.uptime.counted,
        "windows_up": bill.uptime.up,
        "windows_unknown": bill.uptime.unknown,
        "excluded": {
            "curtailed": bill.uptime.excluded_curtailed,
            "maintenance": bill.uptime.excluded_maintenance,
            "rma": bill.uptime.excluded_rma,
        },
        "curtailed_over_rights": bill.uptime.curtailed_over_rights,
        "sla_credit_pct": str(bill.credit_pct),
    }


FILLED = ["hosting_amount", "credit_amount", "total_amount", "summary", "run"]
Written = tuple[Invoice, rules.Bill, list[rules.MachineMonth]]


def _write(invoice: Invoice, bill: rules.Bill, months: list[rules.MachineMonth]) -> None:
    _fill(invoice, bill)
    fresh = invoice.pk is None
    invoice.save()
    if not fresh:  # a draft recomputed: its lines, machines and setup charges are made again
        _clear([invoice.pk])
    _insert_children([(invoice, bill, months)])


def _clear(invoice_ids: list[int]) -> None:
    if invoice_ids:
        InvoiceLine.objects.filter(invoice_id__in=invoice_ids).delete()
        InvoiceMachine.objects.filter(invoice_id__in=invoice_ids).delete()
        SetupCharge.objects.filter(invoice_id__in=invoice_ids).delete()


def _insert_children(written: list[Written]) -> None:
    """Lines, machine evidence and setup charges of saved invoices, in bulk."""
    InvoiceLine.objects.bulk_create(
        (
            InvoiceLine(
                invoice=invoice, position=i, kind=ln.kind, description=ln.description[:300],
                machine_model_id=ln.model_id, quantity=ln.quantity, unit=ln.unit, unit_price=ln.unit_price,
                amount=ln.amount,
            )
            for invoice, bill, _ in written
            for i, ln in enumerate(bill.lines, 1)
        ),
        batch_size=2000,
    )  # fmt: skip
    _insert_machines([(invoice.pk, bill.machines) for invoice, bill, _ in written])
    SetupCharge.objects.bulk_create(
        (
            SetupCharge(machine_id=m.machine_id, invoice=invoice)
            for invoice, bill, months in written
            if any(ln.kind == LineKind.SETUP for ln in bill.lines)
            for m in months
            if m.first_live_in_period
        ),
        batch_size=2000,
    )


MACHINE_FIELDS = [
    "invoice_id", "machine_id", "machine_model_id", "days_live", "hours_live", "windows", "windows_counted",
    "windows_up", "windows_unknown", "excluded_curtailed", "curtailed_over_rights", "excluded_maintenance",
    "excluded_rma", "uptime_pct", "kwh_metered", "kwh_billed", "setup_billed", "amount",
]  # fmt: skip


def _insert_machines(per_invoice: list[tuple[int, list[rules.MachineBill]]]) -> None:
    """The invoice's evidence, a row per machine: COPY on PostgreSQL (a contract's hundreds
    of rows cost less than building as many model instances), bulk_create elsewhere."""
    rows = [
        (
            invoice_id, b.machine.machine_id, b.machine.model_id, b.machine.days_live,
            Decimal(b.machine.seconds) / 3600, b.machine.windows, b.uptime.counted, b.uptime.up, b.uptime.unknown,
            b.uptime.excluded_curtailed, b.uptime.curtailed_over_rights, b.uptime.excluded_maintenance,
            b.uptime.excluded_rma, b.uptime.pct, b.machine.kwh_metered.quantize(rules.KWH), b.kwh_billed,
            b.machine.first_live_in_period, b.amount,
        )
        for invoice_id, bills in per_invoice
        for b in bills
    ]  # fmt: skip
    if connection.vendor != "postgresql":
        InvoiceMachine.objects.bulk_create(
            (InvoiceMachine(**dict(zip(MACHINE_FIELDS, row, strict=True))) for row in rows), batch_size=2000
        )
        return
    columns = ", ".join(MACHINE_FIELDS)  # the attnames are the columns
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {InvoiceMachine._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


# --- States ---------------------------------------------------------------------------------


def _locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update(of=("self",)).get(pk=invoice.pk)


def _next_number(prefix: str) -> str:
    return _take_numbers(prefix, 1)[0]


def _take_numbers(prefix: str, n: int) -> list[str]:
    """The next n numbers of a prefix (its site's and year's), under the counter's lock: no
    number twice, none skipped."""
    counter = InvoiceCounter.objects.select_for_update().filter(prefix=prefix).first()
    if counter is None:  # the prefix's first number (its site's and year's)
        try:
            with transaction.atomic():
                InvoiceCounter.objects.get_or_create(prefix=prefix)
        except IntegrityError:  # made at the same moment by another issue: it exists now
            pass
        counter = InvoiceCounter.objects.select_for_update().get(prefix=prefix)
    first = counter.last + 1
    counter.last += n
    counter.save(update_fields=["last"])
    return [f"{prefix}{k:05d}" for k in range(first, counter.last + 1)]


def issue(invoice: Invoice, *, now: dt.datetime | None = None) -> Invoice:
    """Draft → issued: numbered (no gaps per site and year), due after the payment terms,
    mailed to the tenant. Issuing an issued invoice changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        # Its tenant and contract read with it, for the mail.
        invoice = (
            Invoice.objects.select_for_update(of=("self",)).select_related("tenant", "contract").get(pk=invoice.pk)
        )
        if invoice.status != InvoiceStatus.DRAFT:
            return invoice
        site = Site.objects.get(pk=invoice.site_id)
        terms, _ = ContractTerms.objects.get_or_create(contract_id=invoice.contract_id)  # as terms_for
        today = local_today(site, now)
        letter = "C" if invoice.kind == InvoiceKind.CREDIT_NOTE else "I"
        invoice.number = _next_number(f"{site.slug.upper()[:12]}-{today.year}-{letter}")
        invoice.status = InvoiceStatus.ISSUED
        invoice.issued_at = now
        invoice.due_on = today + dt.timedelta(days=terms.payment_terms_days)
        invoice.save(update_fields=["number", "status", "issued_at", "due_on"])
        transaction.on_commit(lambda: _mail(invoice, "issued"))
        transaction.on_commit(lambda: signals.invoices_issued.send(sender=Invoice, invoice_ids=[invoice.pk]))
        return invoice


def mark_paid(invoice: Invoice, *, now: dt.datetime | None = None) -> Invoice:
    with transaction.atomic():
        invoice = _locked(invoice)
        if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.OVERDUE):
            raise BillingRefusal(
                "not_payable", f"Only an issued or overdue invoice can be paid; this one is {invoice.status}."
            )
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = now or timezone.now()
        invoice.save(update_fields=["status", "paid_at"])
        return invoice


def void(invoice: Invoice, *, reason: str, now: dt.datetime | None = None) -> Invoice:
    """A draft or an unpaid issued invoice is voided (kept, with its reason); the period
    can then be invoiced again."""
    if not reason.strip():
        raise BillingRefusal("reason_required", "Say why the invoice is voided.")
    with transaction.atomic():
        invoice = _locked(invoice)
        if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
            raise BillingRefusal("not_voidable", f"A {invoice.status} invoice cannot be voided; issue a credit note.")
        if invoice.credit_notes.exclude(status=InvoiceStatus.VOID).exists():
            raise BillingRefusal("not_voidable", "An invoice with credit notes cannot be voided.")
        invoice.status = InvoiceStatus.VOID
        invoice.voided_at = now or timezone.now()
        invoice.reason = reason.strip()
        invoice.save(update_fields=["status", "voided_at", "reason"])
        SetupCharge.objects.filter(invoice=invoice).delete()  # billed again on the next invoice
        return invoice


def credit_note(invoice: Invoice, *, amount: Decimal, reason: str, now: dt.datetime | None = None) -> Invoice:
    """An issued credit note of `amount` against an issued invoice (never more than what is
    left of it after earlier notes). The invoice itself is not changed."""
    amount = rules.cents(Decimal(amount))
    if amount <= 0:
        raise BillingRefusal("bad_amount", "A credit note's amount must be positive.")
    if not reason.strip():
        raise BillingRefusal("reason_required", "Say why the credit note is issued.")
    with transaction.atomic():
        original = _locked(invoice)
        if original.kind != InvoiceKind.INVOICE or not original.is_final or original.status == InvoiceStatus.VOID:
            raise BillingRefusal("not_creditable", "Credit notes correct issued invoices only.")
        credited = -(
            original.credit_notes.exclude(status=InvoiceStatus.VOID).aggregate(t=Sum("total_amount"))["t"] or Decimal(0)
        )
        if amount > original.total_amount - credited:
            left = original.total_amount - credited
            raise BillingRefusal(
                "too_much", f"At most {left} {original.currency} of {original.number} is left to credit."
            )
        note = Invoice.objects.create(
            kind=InvoiceKind.CREDIT_NOTE, contract_id=original.contract_id, tenant_id=original.tenant_id,
            site_id=original.site_id, corrects=original, period_start=original.period_start,
            period_end=original.period_end, currency=original.currency, total_amount=-amount, reason=reason.strip(),
        )  # fmt: skip
        InvoiceLine.objects.create(
            invoice=note, position=1, kind=LineKind.CORRECTION, description=f"Correction of {original.number}: {reason.strip()}"[:300],  # noqa: E501
            quantity=Decimal(1), unit="credit", unit_price=-amount, amount=-amount,
        )  # fmt: skip
    return issue(note, now=now)


def mark_overdue(now: dt.datetime | None = None) -> list[Invoice]:
    """Issued invoices past their due date become overdue (mailed once); an overdue one is
    reminded every BILLING_REMINDER_DAYS, at most BILLING_REMINDERS times."""
    now = now or timezone.now()
    changed = []
    every = dt.timedelta(days=settings.BILLING_REMINDER_DAYS)
    candidates = Invoice.objects.filter(
        status__in=[InvoiceStatus.ISSUED, InvoiceStatus.OVERDUE], kind=InvoiceKind.INVOICE
    )
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            invoice = _locked(Invoice(pk=pk))
            site = Site.objects.get(pk=invoice.site_id)
            if invoice.due_on is None or invoice.due_on >= local_today(site, now):
                continue
            if invoice.status == InvoiceStatus.OVERDUE and (
                invoice.reminders_sent >= settings.BILLING_REMINDERS
                or (invoice.reminded_at and now - invoice.reminded_at < every)
            ):
                continue
            invoice.status = InvoiceStatus.OVERDUE
            invoice.reminded_at = now
            invoice.reminders_sent += 1
            invoice.save(update_fields=["status", "reminded_at", "reminders_sent"])
            transaction.on_commit(partial(_mail, invoice, "overdue"))
            changed.append(invoice)
    return changed


def _mail(invoice: Invoice, what: str) -> None:
    tenant = invoice.tenant
    kind = invoice.get_kind_display().lower()
    subject = {
        "issued": f"Haven {kind} {invoice.number}: {invoice.total_amount} {invoice.currency}",
        "overdue": f"Reminder: invoice {invoice.number} was due on {invoice.due_on}",
    }[what]
    body = (
        f"{kind.capitalize()} {invoice.number} for {invoice.period_start:%B %Y}, "
        f"contract {invoice.contract.reference}.\n"
        f"Total: {invoice.total_amount} {invoice.currency}, due on {invoice.due_on}.\n"
        "Its lines and the machines behind them are on the invoice page of the portal.\n"
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [tenant.contact_email], fail_silently=True)


# --- The monthly run ------------------------------------------------------------------------


def billable(site: Site, period_start: dt.date) -> QuerySet[Contract]:
    """Contracts of the site booked or ended within the period: each gets an invoice."""
    _, period_end = month_of(period_start)
    return (
        Contract.objects.filter(site=site, starts_on__lt=period_end)
        .filter(Q(status__in=BOOKED) | Q(status=ContractStatus.ENDED, ends_on__gt=period_start))
        .select_related("site")
        .order_by("pk")
    )


def due_contracts(site: Site, today: dt.date) -> tuple[dt.date, list[Contract]]:
    """Last month's period and the site's contracts whose billing day has come and that
    have no invoice of it yet (a missed day is caught up, a made one not repeated)."""
    period_start, _ = month_of(today - relativedelta(months=1))
    made = Invoice.objects.filter(site=site, kind=InvoiceKind.INVOICE, period_start=period_start).exclude(
        status__in=[InvoiceStatus.VOID, InvoiceStatus.DRAFT]
    )
    candidates = list(billable(site, period_start).exclude(pk__in=made.values("contract_id")))
    billing_day = dict(ContractTerms.objects.filter(contract__site=site).values_list("contract_id", "billing_day"))
    contracts = [
        c for c in candidates
        if (billing_day[c.pk] if c.pk in billing_day else terms_for(c).billing_day) <= today.day
    ]  # fmt: skip
    return period_start, contracts


Result = Outcome | Exception | None  # an invoice; a contract's fault; None: nothing to bill


def invoice_site(
    site: Site,
    period_start: dt.date,
    contracts: list[Contract],
    *,
    run: InvoiceRun | None = None,
    auto_issue: bool = False,
    now: dt.datetime | None = None,
) -> dict[int, Result]:
    """The month's invoices of many contracts of one site in one transaction, as
    `invoice_month` (+ `issue`) would make them one by one — with the same locks (every
    contract row, then the period's invoices, read after the locks) and the same rules
    (`month.MonthBook`), but a fixed number of queries. A contract whose terms cannot be
    billed (a flat fee missing) is that contract's fault; any other error rolls the batch back."""
    now = now or timezone.now()
    period_start = period_start.replace(day=1)
    _, period_end = month_of(period_start)
    results: dict[int, Result] = {}
    with transaction.atomic():
        locked = list(
            Contract.objects.select_for_update(of=("self",)).select_related("tenant")
            .filter(pk__in=[c.pk for c in contracts]).order_by("pk")
        )  # fmt: skip
        existing = {
            i.contract_id: i
            for i in Invoice.objects.select_for_update(of=("self",))
            .filter(contract_id__in=[c.pk for c in locked], kind=InvoiceKind.INVOICE, period_start=period_start)
            .exclude(status=InvoiceStatus.VOID)
        }
        book = month.MonthBook.load(site, period_start, [c for c in locked if not _final(existing.get(c.pk))])
        written: list[Written] = []
        for contract in locked:
            draft = existing.get(contract.pk)
            if _final(draft):
                results[contract.pk] = Outcome(draft, created=False)  # type: ignore[arg-type]
                continue
            try:
                bill, months = book.bill(contract)
            except ValueError as exc:
                results[contract.pk] = exc
                continue
            if draft is None and not bill.lines:
                results[contract.pk] = None
                continue
            invoice = draft or Invoice(
                contract=contract, tenant=contract.tenant, site=site, period_start=period_start,
                period_end=period_end, currency=book.currency,
            )  # fmt: skip
            invoice.contract, invoice.tenant = contract, contract.tenant  # for the mail, without a query
            invoice.run = run or invoice.run
            _fill(invoice, bill)
            written.append((invoice, bill, months))
            results[contract.pk] = Outcome(invoice, created=draft is None)
        redone = [inv for inv, _, _ in written if inv.pk is not None]
        _clear([inv.pk for inv in redone])
        Invoice.objects.bulk_update(redone, FILLED, batch_size=500)  # figures only: the log records states
        made = Invoice.objects.bulk_create([inv for inv, _, _ in written if inv.pk is None], batch_size=500)
        changes.created(made, via="billing.invoice_site", describe=str)
        _insert_children(written)
        if auto_issue and written:
            _issue_all(site, [inv for inv, _, _ in written], book, now)
    return results


def _final(invoice: Invoice | None) -> bool:
    return invoice is not None and invoice.is_final


def _issue_all(site: Site, invoices: list[Invoice], book: month.MonthBook, now: dt.datetime) -> None:
    """Issue drafts of one site in the caller's transaction, as `issue` does one by one."""
    today = local_today(site, now)
    numbers = _take_numbers(f"{site.slug.upper()[:12]}-{today.year}-I", len(invoices))
    for invoice, number in zip(invoices, numbers, strict=True):
        invoice.number = number
        invoice.status = InvoiceStatus.ISSUED
        invoice.issued_at = now
        invoice.due_on = today + dt.timedelta(days=book.terms_rows[invoice.contract_id].payment_terms_days)
    changes.bulk_update(
        invoices, ["number", "status", "issued_at", "due_on"], via="billing.issue", batch_size=500, describe=str
    )
    transaction.on_commit(partial(_mail_all, invoices, "issued"))
    if ids := [invoice.pk for invoice in invoices]:
        transaction.on_commit(lambda: signals.invoices_issued.send(sender=Invoice, invoice_ids=ids))


def _mail_all(invoices: list[Invoice], what: str) -> None:
    for invoice in invoices:
        _mail(invoice, what)


def run_invoices(*, now: dt.datetime | None = None, by=None, auto_issue: bool | None = None) -> InvoiceRun:
    """The monthly run: at every site, each contract due today is invoiced for last month
    (and issued, unless BILLING_AUTO_ISSUE is off) — a site's contracts in one batch
    (`invoice_site`), or one by one if the batch fails, so one contract's fault never stops
    the others. Sites whose machine-days are not rolled through the period wait for the next
    run. Every outcome is logged on the run."""
    now = now or timezone.now()
    auto_issue = settings.BILLING_AUTO_ISSUE if auto_issue is None else auto_issue
    run = InvoiceRun(on_date=now.date(), triggered_by=by)
    for site in Site.objects.order_by("pk"):
        today = local_today(site, now)
        period_start, contracts = due_contracts(site, today)
        if not contracts:
            continue
        if run.pk is None:
            run.save()  # a run is kept only when some contract was due
        _, period_end = month_of(period_start)
        roll_up_machine_days(site, now)
        if not rolled_through(site, period_end) and TelemetryPolicy.objects.filter(site=site).exists():
            run.log.append({"site": site.slug, "period": f"{period_start:%Y-%m}", "outcome": "waiting",
                            "detail": "machine-days not rolled through the period yet"})  # fmt: skip
            continue
        try:
            results = invoice_site(site, period_start, contracts, run=run, auto_issue=auto_issue, now=now)
        except Exception:
            log.exception("invoicing %s in one batch failed; one contract at a time", site.slug)
            results = {c.pk: _one_by_one(c, period_start, run, auto_issue, now) for c in contracts}
        for contract in contracts:
            entry = {"site": site.slug, "contract": contract.reference, "period": f"{period_start:%Y-%m}"}
            _log(run, entry, results.get(contract.pk))
    run.finished_at = timezone.now()
    if run.pk is not None:
        run.save()
    return run


def _one_by_one(contract: Contract, period_start: dt.date, run: InvoiceRun, auto_issue: bool, now) -> Result:
    try:
        outcome = invoice_month(contract, period_start, run=run)
        if _nothing_billed(outcome):
            return None
        if auto_issue:
            outcome.invoice = issue(outcome.invoice, now=now)
        return outcome
    except Exception as exc:  # one contract's fault is logged; the others are invoiced
        log.exception("invoicing %s failed", contract.reference)
        return exc


def _log(run: InvoiceRun, entry: dict, result: Result) -> None:
    run.contracts += 1
    if result is None:
        run.log.append(entry | {"outcome": "nothing", "detail": "no machine-days, fees or deposit"})
    elif isinstance(result, Exception):
        run.failed += 1
        run.log.append(entry | {"outcome": "failed", "detail": str(result)[:300]})
    else:
        invoice = result.invoice
        run.created += result.created
        run.unchanged += not result.created
        outcome = "created" if result.created else "unchanged"
        run.log.append(entry | {"outcome": outcome, "invoice": invoice.number or invoice.pk,
                                "total": str(invoice.total_amount)})  # fmt: skip


def _nothing_billed(outcome: Outcome) -> bool:
    """A new draft without a line (a contract with nothing on the floor, no deposit) is not
    kept: the run does not issue empty invoices."""
    invoice = outcome.invoice
    if invoice.status != InvoiceStatus.DRAFT or invoice.lines.exists():
        return False
    invoice.delete()
    return True


def hosting_amount(lines: Iterable[InvoiceLine]) -> Decimal:
    return sum((ln.amount for ln in lines if ln.kind in HOSTING_KINDS), Decimal(0))
