"""The rows billing keeps: each contract's terms, the sites' currency and levies, announced
maintenance, the machine-days it bills from, and invoices with their lines and evidence.

Billing reads telemetry's windows (once, into MachineDay) and contract terms; it never asks
curtailment what happened: a window records the machine's state when it was polled.
Money is `Decimal` in the invoice's currency (the site's; USD by default).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from capacity.models import Site
from hosting.models import Contract, Machine, MachineModel, Tenant, TenantOwnedQuerySet

PCT = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))]


def default_sla_tiers() -> list[dict]:
    """Below 95 % → 5 % of the period's hosting fees; below 90 % → 10 %; below 80 % → 25 %."""
    return [
        {"below_pct": "95", "credit_pct": "5"},
        {"below_pct": "90", "credit_pct": "10"},
        {"below_pct": "80", "credit_pct": "25"},
    ]


class BillingMode(models.TextChoices):
    METERED = "metered", "Metered (energy of each window × rate)"
    NAMEPLATE = "nameplate", "Nameplate (operational machines × nameplate W × hours × rate)"
    FLAT = "flat", "Flat monthly fee per machine, prorated by days live"


class SlaPeriod(models.TextChoices):
    MONTH = "month", "Each month"
    YEAR = "year", "Each calendar year"


class SlaBasis(models.TextChoices):
    HASHING = "hashing", "Hashing"
    REACHABLE = "reachable", "Reachable"


class ContractTerms(models.Model):
    """What a contract bills and promises; set by staff, shown to the tenant. Created with
    defaults on first use (`hosting.billing.services.terms_for`)."""

    contract = models.OneToOneField(Contract, on_delete=models.CASCADE, related_name="terms")
    billing_mode = models.CharField(max_length=10, choices=BillingMode.choices, default=BillingMode.METERED)
    billing_day = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
        help_text="Day of the month the previous month is invoiced (1–28, the site's local date).",
    )
    payment_terms_days = models.PositiveSmallIntegerField(default=15, help_text="Days from issue to due date.")
    deposit_months = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(Decimal(0))],
        help_text="Months of estimated hosting fees held as deposit: invoiced first, credited at term end.",
    )  # fmt: skip
    setup_fee_per_machine = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal(0))],
        help_text="Billed once when a machine first goes live; empty = the site's list setup fee.",
    )  # fmt: skip
    sla_target_pct = models.DecimalField("SLA target %", max_digits=5, decimal_places=2, default=95, validators=PCT)
    sla_period = models.CharField("SLA period", max_length=5, choices=SlaPeriod.choices, default=SlaPeriod.MONTH)
    sla_basis = models.CharField("SLA counts", max_length=10, choices=SlaBasis.choices, default=SlaBasis.HASHING)
    sla_tiers = models.JSONField(
        "SLA credit tiers", default=default_sla_tiers,
        help_text='Below X % uptime, Y % of the hosting fees: [{"below_pct": "95", "credit_pct": "5"}, …]',
    )  # fmt: skip
    maintenance_notice_h = models.PositiveIntegerField(
        default=72, help_text="Announced maintenance is excluded from the SLA only with at least this notice."
    )
    # Curtailment rights: who may be curtailed, how much, with what notice (read by curtailment).
    curtailment_priority = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty = not curtailable; lower numbers are curtailed first."
    )
    max_curtailed_hours_month = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hours a machine may be curtailed a month within rights; empty = no limit."
    )
    curtailment_notice_min = models.PositiveIntegerField(default=0, help_text="Minimum notice before curtailing.")
    dr_share_pct = models.DecimalField(
        "demand-response share %", max_digits=5, decimal_places=2, default=0, validators=PCT
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "contract terms"

    def __str__(self) -> str:
        return f"Terms of {self.contract}"

    def clean(self) -> None:
        from hosting.billing import rules

        try:
            rules.parse_tiers(self.sla_tiers)
        except ValueError as exc:
            raise ValidationError({"sla_tiers": str(exc)}) from exc

    @property
    def curtailable(self) -> bool:
        return self.curtailment_priority is not None


class FlatFee(models.Model):
    """The flat monthly fee of one machine model under a contract (flat mode)."""

    terms = models.ForeignKey(ContractTerms, on_delete=models.CASCADE, related_name="flat_fees")
    machine_model = models.ForeignKey(MachineModel, on_delete=models.PROTECT, related_name="+")
    fee_per_month = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal(0))])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["terms", "machine_model"], name="billing_flatfee_unique")]

    def __str__(self) -> str:
        return f"{self.machine_model}: {self.fee_per_month}/month"


class SiteBilling(models.Model):
    """A site's invoicing: its currency. Created with defaults on first use."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="billing")
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code of every invoice of the site.")

    def __str__(self) -> str:
        return f"Billing of {self.site}"


class Levy(models.Model):
    """A per-kWh fee of the site's jurisdiction on the energy measured (e.g. Kazakhstan's
    tax on mining power: 1 tenge/kWh from 2022, then 1–25 tenge by the price of power paid)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="levies")
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, help_text="The levy's own currency (e.g. KZT).")
    per_kwh = models.DecimalField(
        max_digits=12, decimal_places=5, validators=[MinValueValidator(Decimal(0))],
        help_text="Per kWh in the levy's currency (when no tier applies).",
    )  # fmt: skip
    power_price_per_kwh = models.DecimalField(
        max_digits=12, decimal_places=5, null=True, blank=True,
        help_text="The price the site pays for power, in the levy's currency: picks the tier.",
    )  # fmt: skip
    tiers = models.JSONField(
        default=list, blank=True,
        help_text='[{"price_up_to": "10", "per_kwh": "1"}, …]: the first tier at or above the power price.',
    )  # fmt: skip
    to_billing_currency = models.DecimalField(
        max_digits=16, decimal_places=8, default=Decimal(1), validators=[MinValueValidator(Decimal(0))],
        help_text="Units of the site's billing currency per unit of the levy's currency.",
    )  # fmt: skip
    effective_from = models.DateField()
    effective_until = models.DateField(null=True, blank=True, help_text="First day it no longer applies.")

    class Meta:
        verbose_name_plural = "levies"
        ordering = ["site", "effective_from"]

    def __str__(self) -> str:
        return f"{self.name} ({self.site})"

    def clean(self) -> None:
        from hosting.billing import rules

        try:
            rules.parse_levy_tiers(self.tiers)
        except ValueError as exc:
            raise ValidationError({"tiers": str(exc)}) from exc

    def applies_on(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day < self.effective_until)


class Maintenance(models.Model):
    """Maintenance staff announce at a site. Its windows are excluded from a contract's SLA
    only if it was announced at least the contract's notice before it started."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="maintenances")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    announced_at = models.DateTimeField(default=timezone.now)
    notice_h = models.DecimalField(
        max_digits=8, decimal_places=2, editable=False, help_text="Hours between announcement and start."
    )
    reason = models.CharField(max_length=300)
    announced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="billing_maintenance_span")
        ]

    def __str__(self) -> str:
        return f"Maintenance at {self.site} from {self.starts_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        self.notice_h = Decimal((self.starts_at - self.announced_at).total_seconds() / 3600).quantize(Decimal("0.01"))
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "Maintenance must end after it starts."})


class MachineDay(models.Model):
    """A machine's day (the site's local date) as billing counts it, rolled up once from the
    raw windows; invoices read these, never the windows. Windows are split by state:
    curtailed, RMA, in announced maintenance (valid for the contract), and the rest — the
    windows the SLA counts, of which unknown ones count as up."""

    day = models.DateField()
    machine = models.ForeignKey(Machine, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    contract = models.ForeignKey(Contract, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    window_s = models.PositiveIntegerField(help_text="The site's poll interval when rolled.")
    windows = models.PositiveIntegerField(default=0, help_text="Every window of the day.")
    windows_curtailed = models.PositiveIntegerField(default=0)
    windows_rma = models.PositiveIntegerField(default=0)
    windows_maintenance = models.PositiveIntegerField(default=0, help_text="In maintenance announced with notice.")
    windows_unknown = models.PositiveIntegerField(default=0, help_text="Counted windows with no poll (up).")
    windows_reachable = models.PositiveIntegerField(default=0, help_text="Counted windows that answered.")
    windows_hashing = models.PositiveIntegerField(default=0, help_text="Counted windows that hashed.")
    energy_wh_pdu = models.FloatField(default=0)
    energy_wh_miner = models.FloatField(default=0)
    energy_wh_nameplate = models.FloatField(default=0, help_text="Answering windows with no power reading.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["machine", "day"], name="billing_machineday_unique")]
        indexes = [models.Index(fields=["contract", "day"], name="billing_machineday_contract")]

    def __str__(self) -> str:
        return f"{self.machine_id} on {self.day}"


class RollupCursor(models.Model):
    """How far a site's machine-days are rolled (local dates before `rolled_until`)."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="billing_rollup")
    rolled_until = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.site} rolled until {self.rolled_until}"


class InvoiceQuerySet(TenantOwnedQuerySet):
    def _owned_by(self, user) -> InvoiceQuerySet:
        """A tenant sees its invoices once issued; drafts are staff's."""
        return super()._owned_by(user).exclude(status=InvoiceStatus.DRAFT)  # type: ignore[return-value]

    def open(self) -> InvoiceQuerySet:
        return self.filter(status__in=[InvoiceStatus.ISSUED, InvoiceStatus.OVERDUE])


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    OVERDUE = "overdue", "Overdue"
    VOID = "void", "Void"


class InvoiceRun(models.Model):
    """One monthly run: which period, what it did, every contract's outcome in its log."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    on_date = models.DateField(help_text="The billing day it ran for.")
    contracts = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    log = models.JSONField(default=list, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Invoice run of {self.on_date}"


class Invoice(models.Model):
    """An invoice (or a credit note correcting one) of one contract for one period. Issued,
    it never changes: corrections are credit notes that reference it."""

    kind = models.CharField(max_length=12, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    number = models.CharField(max_length=32, unique=True, null=True, blank=True, help_text="Given at issue.")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="invoices")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="invoices")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes",
        help_text="The issued invoice a credit note corrects.",
    )  # fmt: skip
    period_start = models.DateField()
    period_end = models.DateField(help_text="First day after the period.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    hosting_amount = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal(0))
    credit_amount = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal(0))
    total_amount = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal(0))
    summary = models.JSONField(default=dict, blank=True, help_text="Uptime, SLA and kWh figures behind the lines.")
    reason = models.TextField(blank=True, help_text="Why a credit note was issued or an invoice voided.")
    run = models.ForeignKey(InvoiceRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices")
    created_at = models.DateTimeField(default=timezone.now)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-period_start", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "period_start"],
                condition=Q(kind="invoice") & ~Q(status="void"),
                name="billing_invoice_one_per_period",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", corrects__isnull=True) | Q(kind="credit_note", corrects__isnull=False),
                name="billing_credit_note_corrects",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-period_start"], name="billing_invoice_tenant")]

    def __str__(self) -> str:
        return self.number or f"draft {self.get_kind_display().lower()} #{self.pk}"

    @property
    def is_final(self) -> bool:
        """Issued (or later): never changes again."""
        return self.status != InvoiceStatus.DRAFT


class LineKind(models.TextChoices):
    ENERGY = "energy", "Energy"
    FLAT = "flat", "Flat fee"
    SETUP = "setup", "Setup"
    LEVY = "levy", "Levy"
    SLA_CREDIT = "sla_credit", "SLA credit"
    DEPOSIT = "deposit", "Deposit"
    DEPOSIT_REFUND = "deposit_refund", "Deposit refund"
    CORRECTION = "correction", "Correction"


HOSTING_KINDS = frozenset({LineKind.ENERGY, LineKind.FLAT})


class InvoiceLine(models.Model):
    """One line: quantity × unit price = amount, rounded half-up to cents once, here."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    machine_model = models.ForeignKey(MachineModel, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    quantity = models.DecimalField(max_digits=20, decimal_places=4)
    unit = models.CharField(max_length=20)
    unit_price = models.DecimalField(max_digits=16, decimal_places=6)
    amount = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="billing_line_position")]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class InvoiceMachine(models.Model):
    """The evidence of one machine on an invoice: what it was billed for and its uptime."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="machines")
    machine = models.ForeignKey(Machine, on_delete=models.PROTECT, related_name="+")
    machine_model = models.ForeignKey(MachineModel, on_delete=models.PROTECT, related_name="+")
    days_live = models.PositiveSmallIntegerField()
    hours_live = models.DecimalField(max_digits=8, decimal_places=2)
    windows = models.PositiveIntegerField()
    windows_counted = models.PositiveIntegerField(help_text="Windows the SLA counts.")
    windows_up = models.PositiveIntegerField(help_text="Counted windows up (by the SLA's basis, unknown as up).")
    windows_unknown = models.PositiveIntegerField()
    excluded_curtailed = models.PositiveIntegerField(help_text="Curtailed within the contract's rights.")
    curtailed_over_rights = models.PositiveIntegerField(help_text="Curtailed beyond the rights: counted down.")
    excluded_maintenance = models.PositiveIntegerField()
    excluded_rma = models.PositiveIntegerField()
    uptime_pct = models.DecimalField(max_digits=6, decimal_places=2, null=True)
    kwh_metered = models.DecimalField(max_digits=14, decimal_places=3)
    kwh_billed = models.DecimalField(max_digits=14, decimal_places=3)
    setup_billed = models.BooleanField(default=False)
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="Its share of the hosting lines.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invoice", "machine"], name="billing_invoicemachine_unique")]

    def __str__(self) -> str:
        return f"{self.machine_id} on {self.invoice_id}"


class SetupCharge(models.Model):
    """A machine's setup fee, billed once: on the first invoice after it first went live."""

    machine = models.OneToOneField(Machine, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="setup_charges")

    def __str__(self) -> str:
        return f"setup of {self.machine_id} on {self.invoice_id}"


class InvoiceCounter(models.Model):
    """The last number given per prefix (site and year): numbers have no gaps."""

    prefix = models.CharField(max_length=24, unique=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.prefix}{self.last:06d}"
