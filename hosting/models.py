"""The commercial side: who the tenants are, what they run, what they signed, what arrived.

Models hold fields, constraints and calculations; status changes go through
`hosting.services` (which locks, checks `hosting.lifecycle` and books `capacity.ledger`).
"""

import hashlib
import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from capacity.models import Reservation, Site, Slot
from hosting.carriers import Carrier, tracking_url
from hosting.fields import MACAddressField
from hosting.lifecycle import (
    BOOKED,
    GONE,
    IN_SERVICE,
    IN_SLOT,
    MACHINE_TRANSITIONS,
    OFF_FLOOR,
    WATCHED,
    ContractStatus,
    MachineStatus,
)


class TenantOwnedQuerySet(models.QuerySet):
    """Rows that belong to a tenant; the one place that decides who may see them: staff
    everything, the anonymous nothing, others what `_owned_by` lets through."""

    tenant_path = "tenant"  # from a row to the tenant it belongs to

    def visible_to(self, user) -> "TenantOwnedQuerySet":
        if user.is_staff:
            return self
        if not user.is_authenticated:
            return self.none()
        return self._owned_by(user)

    def _owned_by(self, user) -> "TenantOwnedQuerySet":
        return self.filter(**{f"{self.tenant_path}__memberships__user": user})


class Tenant(models.Model):
    """A customer who hosts machines with us: a miner, a fund, a pool operator."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    contact_email = models.EmailField()
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="tenants")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """What a member may do for its tenant (`hosting.accounts` holds the one table of who may
    do what): owners run the account, operators run the fleet, viewers read."""

    OWNER = "owner", "owner"
    OPERATOR = "operator", "operator"
    VIEWER = "viewer", "viewer"


class Membership(models.Model):
    """A user acting for a tenant, in a role; a user may act for several. Staff are never members."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.OWNER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant}"

    def clean(self) -> None:
        if self.user_id and (self.user.is_staff or self.user.is_superuser):
            raise ValidationError({"user": "Staff users cannot belong to a tenant; use a separate login."})


class MachineModel(models.Model):
    """A make and model of miner in the catalog, with the figures commissioning checks against."""

    class Vendor(models.TextChoices):
        BITMAIN = "bitmain", "Bitmain (Antminer)"
        MICROBT = "microbt", "MicroBT (Whatsminer)"
        CANAAN = "canaan", "Canaan (Avalon)"

    vendor = models.CharField(max_length=20, choices=Vendor.choices)
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    nominal_hashrate_ths = models.DecimalField("nominal TH/s", max_digits=7, decimal_places=2)
    nameplate_power_w = models.PositiveIntegerField("nameplate W")
    power_tolerance_pct = models.DecimalField(
        "power tolerance %",
        max_digits=4,
        decimal_places=1,
        default=Decimal("10.0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
    )
    max_chip_temp_c = models.DecimalField("max chip °C", max_digits=4, decimal_places=1)
    max_board_temp_c = models.DecimalField("max board (PCB) °C", max_digits=4, decimal_places=1, default=Decimal("85"))
    hashrate_tolerance_pct = models.DecimalField(
        "hashrate tolerance %",
        max_digits=4,
        decimal_places=1,
        default=Decimal("5.0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
        help_text="Burn-in passes at (100 − this) % of nominal hashrate or more.",
    )
    burn_in_s = models.PositiveIntegerField(
        "burn-in s", null=True, blank=True, help_text="Overrides the site's burn-in window for this model."
    )
    pyasic_model = models.CharField(
        max_length=50, blank=True, help_text="What pyasic reports as the model of such a miner (identity check)."
    )
    hashboards = models.PositiveSmallIntegerField()
    chips_per_board = models.PositiveSmallIntegerField()
    fans = models.PositiveSmallIntegerField()
    source = models.TextField(help_text="Where each figure comes from (spec sheet, firmware, library).")

    class Meta:
        ordering = ["vendor", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(nominal_hashrate_ths__gt=0, nameplate_power_w__gt=0, hashboards__gt=0),
                name="machinemodel_figures_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def efficiency_j_per_th(self) -> Decimal:
        return (Decimal(self.nameplate_power_w) / self.nominal_hashrate_ths).quantize(Decimal("0.1"))


class ContractQuerySet(TenantOwnedQuerySet):
    def with_machine_figures(self) -> "ContractQuerySet":
        """Each contract with `machines_n` (registered against it and still with us: not
        returned, not cancelled) and `live_w` (nameplate W of its live machines)."""
        return self.annotate(
            machines_n=models.Count("machines", distinct=True, filter=~Q(machines__status__in=sorted(GONE))),
            live_w=models.Sum("machines__model__nameplate_power_w", filter=Q(machines__status__in=IN_SERVICE)),
        )


class Contract(models.Model):
    """A tenant's hosting agreement: IT kW at a site for a term, at a rate."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="contracts")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="contracts")
    it_kw = models.DecimalField("IT kW", max_digits=12, decimal_places=3)
    machine_count = models.PositiveIntegerField()
    rate_usd_per_kwh = models.DecimalField("rate USD/kWh", max_digits=8, decimal_places=5)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="First day after the term; empty = open-ended.")
    status = models.CharField(max_length=10, choices=ContractStatus.choices, default=ContractStatus.DRAFT)
    reservation = models.OneToOneField(
        Reservation, on_delete=models.PROTECT, null=True, blank=True, related_name="contract"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ContractQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(it_kw__gt=0), name="contract_kw_positive"),
            models.CheckConstraint(condition=Q(machine_count__gt=0), name="contract_machines_positive"),
            models.CheckConstraint(condition=Q(rate_usd_per_kwh__gte=0), name="contract_rate_not_negative"),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gt=F("starts_on")), name="contract_ends_after_start"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=sorted(BOOKED)) | Q(reservation__isnull=False),
                name="contract_booked_has_reservation",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.tenant} · {self.it_kw} kW at {self.site.slug}"

    @property
    def reference(self) -> str:
        """How the capacity ledger knows this contract."""
        return f"contract:{self.pk}"

    def clean(self) -> None:
        if self.ends_on is not None and self.starts_on is not None and self.ends_on <= self.starts_on:
            raise ValidationError({"ends_on": "The term must end after it starts."})


class Shipment(models.Model):
    """A tenant's packing list for a contract: the machines on their way to the site."""

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="shipments")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="shipments")
    reference = models.CharField(max_length=100, blank=True, help_text="The tenant's own shipment reference.")
    tracking_number = models.CharField(max_length=100, blank=True, help_text="Carrier tracking; set = in transit.")
    carrier = models.CharField(max_length=10, choices=Carrier.choices, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.reference or self.tracking_number or f"shipment #{self.pk}"

    @property
    def tracking_url(self) -> str | None:
        """The carrier's tracking page for this shipment, None if there is none to link."""
        return tracking_url(self.carrier, self.tracking_number)


class MachineQuerySet(TenantOwnedQuerySet):
    def on_hand(self) -> "MachineQuerySet":
        """Machines still with us: every one but those handed back or cancelled before they
        arrived. Their serials and MACs are unique; a returned machine shipped again is
        registered anew."""
        return self.exclude(status__in=sorted(GONE))

    def watched(self) -> "MachineQuerySet":
        """Machines telemetry polls: after go-live, in a slot, with an address."""
        return self.filter(status__in=WATCHED, slot__isnull=False, ip__isnull=False)

    def count_by_status(self) -> dict[str, int]:
        """status → how many machines (one query; statuses with none are absent)."""
        rows = self.order_by().values("status").annotate(n=models.Count("pk")).values_list("status", "n")
        return dict(rows)

    def live_w_by_site(self) -> dict[int, int]:
        """site id → nameplate watts of its machines in service (live or curtailed), from their
        slots' allocation (one query)."""
        rows = (
            self.filter(status__in=IN_SERVICE, slot__isnull=False)
            .order_by()
            .values("slot__rack__site_id")
            .annotate(w=models.Sum("slot__allocated_w"))
            .values_list("slot__rack__site_id", "w")
        )
        return {site_id: w or 0 for site_id, w in rows}

    def intake(self) -> "MachineQuerySet":
        """Received at a site and not yet racked, longest waiting first: the intake queue."""
        return (
            self.filter(status=MachineStatus.RECEIVED, slot__isnull=True)
            .select_related("tenant", "contract__site", "model")
            .order_by("status_changed_at", "pk")
        )


class Machine(models.Model):
    """One physical miner a tenant sends us, from packing list to live (or back)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="machines")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="machines")
    model = models.ForeignKey(MachineModel, on_delete=models.PROTECT, related_name="machines")
    serial = models.CharField(max_length=64, db_index=True)
    mac = MACAddressField("MAC")
    ip = models.GenericIPAddressField("IP", protocol="IPv4", null=True, blank=True)
    slot = models.OneToOneField(Slot, on_delete=models.PROTECT, null=True, blank=True, related_name="machine")
    status = models.CharField(max_length=12, choices=MachineStatus.choices, default=MachineStatus.ANNOUNCED)
    status_changed_at = models.DateTimeField(default=timezone.now)
    shipment = models.ForeignKey(Shipment, on_delete=models.SET_NULL, null=True, blank=True, related_name="machines")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MachineQuerySet.as_manager()

    class Meta:
        ordering = ["serial"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status__in=sorted(IN_SLOT)) | Q(slot__isnull=False), name="machine_in_slot_has_slot"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=sorted(OFF_FLOOR)) | Q(slot__isnull=True), name="machine_off_floor_no_slot"
            ),
            # A serial and a MAC name one machine among those still with us (MachineQuerySet.on_hand).
            models.UniqueConstraint(
                fields=["serial"],
                condition=~Q(status__in=sorted(GONE)),
                name="machine_serial_unique_on_hand",
                violation_error_message="A machine with this serial is already registered (and on hand).",
            ),
            models.UniqueConstraint(
                fields=["mac"],
                condition=~Q(status__in=sorted(GONE)),
                name="machine_mac_unique_on_hand",
                violation_error_message="A machine with this MAC is already registered (and on hand).",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="machine_tenant_status")]

    def __str__(self) -> str:
        return f"{self.model} {self.serial}"

    @property
    def occupant_ref(self) -> str:
        """How the capacity ledger knows this machine in a slot."""
        return f"machine:{self.pk}"

    def clean(self) -> None:
        if self.contract_id and self.tenant_id and self.contract.tenant_id != self.tenant_id:
            raise ValidationError({"contract": "The contract belongs to another tenant."})


class MachineEventQuerySet(models.QuerySet):
    def recent_for(self, machines: models.QuerySet, n: int = 10) -> "MachineEventQuerySet":
        """The latest `n` status changes of these machines, newest first."""
        return self.filter(machine__in=machines).select_related("machine__model").order_by("-at", "-pk")[:n]


class MachineEvent(models.Model):
    """One status change of a machine: who moved it, when and why."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=MachineStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=MachineStatus.choices)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    reason = models.TextField(blank=True)

    objects = MachineEventQuerySet.as_manager()

    class Meta:
        ordering = ["machine", "at", "pk"]
        indexes = [models.Index(fields=["machine", "at"], name="machineevent_machine_at")]

    def __str__(self) -> str:
        return f"{self.machine.serial}: {self.from_status or '∅'} → {self.to_status}"


class ApiTokenQuerySet(models.QuerySet):
    def live(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A user's secret for the API (`Authorization: Token …`). Only its SHA-256 is stored."""

    PREFIX_LENGTH = 8

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'fleet automation'.")
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False, help_text="First characters, to tell it apart.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}, {self.user})"

    @staticmethod
    def digest_of(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        """Create a token; the key is returned once and never stored."""
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[: cls.PREFIX_LENGTH], digest=cls.digest_of(key))
        return token, key


class SitePricing(models.Model):
    """What a site charges: the list rate per kWh and a setup fee per machine."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="pricing")
    list_rate_usd_per_kwh = models.DecimalField("list rate USD/kWh", max_digits=8, decimal_places=5)
    setup_usd_per_machine = models.DecimalField("setup USD/machine", max_digits=10, decimal_places=2, default=0)

    class Meta:
        verbose_name_plural = "site pricing"
        constraints = [
            models.CheckConstraint(
                condition=Q(list_rate_usd_per_kwh__gt=0, setup_usd_per_machine__gte=0), name="sitepricing_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.site.slug}: {self.list_rate_usd_per_kwh} USD/kWh"


class TermDiscount(models.Model):
    """A discount on the list rate for committing to at least so many months."""

    min_term_months = models.PositiveSmallIntegerField(unique=True)
    discount_pct = models.DecimalField(
        "discount %", max_digits=4, decimal_places=1, validators=[MinValueValidator(0), MaxValueValidator(90)]
    )

    class Meta:
        ordering = ["min_term_months"]
        constraints = [
            models.CheckConstraint(condition=Q(discount_pct__gte=0, discount_pct__lte=90), name="termdiscount_0_90")
        ]

    def __str__(self) -> str:
        return f"≥ {self.min_term_months} months: −{self.discount_pct} %"


class QuoteQuerySet(TenantOwnedQuerySet):
    def _owned_by(self, user) -> "QuoteQuerySet":
        """The quotes a client requested or its tenants accepted."""
        return self.filter(Q(requester=user) | Q(tenant__memberships__user=user)).distinct()

    def waitlist(self) -> "QuoteQuerySet":
        """The queue, first come first served."""
        return self.filter(status=Quote.Status.WAITLISTED).order_by("waitlisted_at", "created_at", "pk")

    def waitlist_demand(self) -> list[tuple]:
        """What each waitlisted quote asks for and where it may go, in queue order:
        (it_kw, start_on, term_months, region, country, site_id) — one query."""
        return list(self.waitlist().values_list("it_kw", "start_on", "term_months", "region", "country", "site_id"))

    def waitlisted_kw(self) -> Decimal:
        """The IT kW the whole waitlist asks for."""
        return self.waitlist().aggregate(kw=models.Sum("it_kw"))["kw"] or Decimal(0)


class Quote(models.Model):
    """An enquiry for hosting and our answer: priced options per site, or a place on the waitlist."""

    class Status(models.TextChoices):
        PRICED = "priced", "Priced"
        WAITLISTED = "waitlisted", "Waitlisted"
        ACCEPTED = "accepted", "Accepted (capacity held)"
        CONTRACTED = "contracted", "Contracted"
        DECLINED = "declined", "Declined by Haven"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="quotes"
    )
    contact_email = models.EmailField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    machine_model = models.ForeignKey(MachineModel, on_delete=models.PROTECT, null=True, blank=True)
    quantity = models.PositiveIntegerField(null=True, blank=True)
    it_kw = models.DecimalField("IT kW", max_digits=12, decimal_places=3)
    start_on = models.DateField()
    term_months = models.PositiveSmallIntegerField()
    region = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    valid_until = models.DateTimeField(null=True, blank=True)
    waitlisted_at = models.DateTimeField(null=True, blank=True)
    options = models.JSONField(
        default=list, blank=True, help_text="What was offered, best first: one entry per site (a snapshot)."
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="quotes")
    accepted_site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    hold = models.OneToOneField(Reservation, on_delete=models.PROTECT, null=True, blank=True, related_name="quote")
    contract = models.OneToOneField(Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="quote")
    declined_at = models.DateTimeField(null=True, blank=True)
    declined_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decline_reason = models.TextField(blank=True, help_text="Why staff took it off the waitlist (told the requester).")
    created_at = models.DateTimeField(default=timezone.now)

    objects = QuoteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(it_kw__gt=0, term_months__gt=0), name="quote_positive"),
            models.CheckConstraint(
                condition=Q(machine_model__isnull=True, quantity__isnull=True)
                | Q(machine_model__isnull=False, quantity__gt=0),
                name="quote_model_with_quantity",
            ),
            models.CheckConstraint(
                condition=~Q(status="waitlisted") | Q(waitlisted_at__isnull=False), name="quote_waitlisted_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="declined") | (Q(declined_at__isnull=False) & ~Q(decline_reason="")),
                name="quote_declined_with_reason",
            ),
        ]
        indexes = [models.Index(fields=["status", "waitlisted_at"], name="quote_waitlist")]

    def __str__(self) -> str:
        return f"quote {str(self.id)[:8]} · {self.it_kw} kW from {self.start_on}"

    @property
    def reference(self) -> str:
        """How the capacity ledger knows this quote's hold."""
        return f"quote:{self.id}"

    @property
    def machines(self) -> int:
        """Machines the quote is for: as asked, or kW ÷ the reference machine's nameplate."""
        if self.quantity:
            return self.quantity
        return -(-int(self.it_kw * 1000) // settings.REFERENCE_MACHINE_W)

    @property
    def machine_w(self) -> int:
        model = self.machine_model
        return model.nameplate_power_w if model is not None else settings.REFERENCE_MACHINE_W

    def option_at(self, site_slug: str) -> dict | None:
        return next((o for o in self.options if o["site"] == site_slug), None)

    def is_expired(self, now=None) -> bool:
        return self.valid_until is not None and (now or timezone.now()) >= self.valid_until


# --------------------------------------------------------------------------------------
# Commissioning: the gate a machine passes before it goes live
# --------------------------------------------------------------------------------------


class CommissioningPolicy(models.Model):
    """How a site commissions machines: burn-in length, limits, what to do when unmetered."""

    class Unmetered(models.TextChoices):
        ACCEPT_NAMEPLATE = "accept", "accept on nameplate"
        FAIL = "fail", "fail the power check"

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="commissioning_policy")
    burn_in_s = models.PositiveIntegerField(
        "burn-in s", default=900, help_text="Hashing self-test window; 0 takes a single sample."
    )
    sample_interval_s = models.DecimalField(
        "sample every s", max_digits=7, decimal_places=2, default=Decimal("60"), validators=[MinValueValidator(0)]
    )
    probe_timeout_s = models.DecimalField(
        "probe timeout s", max_digits=5, decimal_places=2, default=Decimal("10"), validators=[MinValueValidator(0.1)]
    )
    power_tolerance_pct = models.DecimalField(
        "power tolerance %",
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Overrides each model's tolerance of nameplate watts at this site.",
    )
    min_fan_rpm = models.PositiveIntegerField("min fan RPM", default=1000)
    unmetered = models.CharField(
        "when the outlet is not metered",
        max_length=6,
        choices=Unmetered.choices,
        default=Unmetered.ACCEPT_NAMEPLATE,
        help_text="…and the miner reports no watts of its own.",
    )
    max_concurrent_tests = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1)])
    max_tests_per_circuit = models.PositiveIntegerField(
        default=8, validators=[MinValueValidator(1)], help_text="Staggered power-on: at most this many per circuit."
    )
    commission_when_racked = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "commissioning policies"

    def __str__(self) -> str:
        return f"commissioning at {self.site}"

    @classmethod
    def for_site(cls, site: Site) -> "CommissioningPolicy":
        """The site's policy, or the defaults (unsaved) where it has none."""
        try:
            return site.commissioning_policy
        except cls.DoesNotExist:
            return cls(site=site)


class CommissioningBatchQuerySet(TenantOwnedQuerySet):
    def with_progress(self) -> "CommissioningBatchQuerySet":
        """Annotate each batch with its runs counted by stage (see SelfTestRun.STAGES)."""
        return self.annotate(**{f"n_{stage}": count for stage, count in SelfTestRun.stage_counts("runs").items()})


class CommissioningBatch(models.Model):
    """Machines commissioned together (a packing list, a contract, a staff selection)."""

    class Source(models.TextChoices):
        PACKING_LIST = "packing_list", "packing list"
        CONTRACT = "contract", "contract"
        SELECTION = "selection", "staff selection"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(max_length=12, choices=Source.choices)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="batches")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="batches")
    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="batches")
    label = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = CommissioningBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "commissioning batches"

    def __str__(self) -> str:
        return self.label or f"batch {str(self.id)[:8]}"

    # Set by CommissioningBatchQuerySet.with_progress(): runs counted by stage.
    n_queued: int
    n_testing: int
    n_passed: int
    n_failed: int

    @property
    def progress(self) -> dict:
        """For a progress bar: total, queued, testing, passed, failed (needs with_progress())."""
        return SelfTestRun.progress({stage: getattr(self, f"n_{stage}") for stage in SelfTestRun.STAGES})

    @property
    def done(self) -> bool:
        return self.n_queued == 0 and self.n_testing == 0


class SelfTestRunQuerySet(TenantOwnedQuerySet):
    tenant_path = "machine__tenant"

    def open(self) -> "SelfTestRunQuerySet":
        return self.filter(status__in=SelfTestRun.OPEN)


class SelfTestRun(models.Model):
    """One commissioning of one machine: its checks, their measurements, one verdict."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending (waiting for its turn)"
        DISPATCHED = "dispatched", "dispatched to the site's worker"
        RUNNING = "running", "running"
        PASSED = "passed", "passed"
        FAILED = "failed", "failed"

    OPEN = (Status.PENDING, Status.DISPATCHED, Status.RUNNING)
    # How a progress bar groups them.
    STAGES = {
        "queued": (Status.PENDING, Status.DISPATCHED),
        "testing": (Status.RUNNING,),
        "passed": (Status.PASSED,),
        "failed": (Status.FAILED,),
    }

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="self_tests")
    batch = models.ForeignKey(CommissioningBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveSmallIntegerField(default=0, help_text="How many times a worker started it.")
    token = models.CharField(
        max_length=32, blank=True, editable=False, help_text="Which worker's attempt owns the run now."
    )
    reasons = models.JSONField(default=list, blank=True, help_text="Why it failed, every reason.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = SelfTestRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # A machine is under one test at a time: a second request joins the open one.
            models.UniqueConstraint(
                fields=["machine"],
                condition=Q(status__in=["pending", "dispatched", "running"]),
                name="selftestrun_one_open_per_machine",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["passed", "failed"], finished_at__isnull=False)
                | Q(status__in=["pending", "dispatched", "running"], finished_at__isnull=True),
                name="selftestrun_finished_iff_verdict",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="selftestrun_status")]

    def __str__(self) -> str:
        return f"self-test #{self.pk} of {self.machine.serial}: {self.status}"

    @classmethod
    def stage_counts(cls, path: str = "") -> dict[str, models.Count]:
        """Runs counted by stage (STAGES), as aggregates; `path` leads to them ("runs" from a batch)."""
        prefix = f"{path}__" if path else ""
        return {
            stage: models.Count(path or "pk", filter=Q(**{f"{prefix}status__in": statuses}))
            for stage, statuses in cls.STAGES.items()
        }

    @staticmethod
    def progress(counts: dict[str, int]) -> dict[str, int]:
        """For a progress bar: the total and the count of each stage."""
        return {"total": sum(counts.values()), **counts}


class CheckResult(models.Model):
    """One check of a run (identity, power, hashing, thermal): pass or fail, why, and what was measured."""

    class Name(models.TextChoices):
        IDENTITY = "identity", "identity and reachability"
        POWER = "power", "power"
        HASHING = "hashing", "hashing self-test"
        THERMAL = "thermal", "thermal"

    run = models.ForeignKey(SelfTestRun, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=10, choices=Name.choices)
    passed = models.BooleanField()
    reasons = models.JSONField(default=list, blank=True)
    measurements = models.JSONField(default=dict, blank=True, help_text="Values with their units in the keys.")

    class Meta:
        ordering = ["run", "pk"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="checkresult_one_per_check")]

    def __str__(self) -> str:
        return f"{self.name}: {'pass' if self.passed else 'fail'}"


class SampleQuerySet(models.QuerySet):
    def latest_per_machine(self) -> "SampleQuerySet":
        """Of these samples, each machine's last one from its latest self-test run that has
        samples at all (a run still waiting for its first sample does not hide the last
        measured one) — one query, however many machines."""
        measured = SelfTestRun.objects.filter(machine=models.OuterRef("run__machine")).filter(
            models.Exists(Sample.objects.filter(run=models.OuterRef("pk")))
        )
        latest_run = measured.order_by("-created_at", "-pk").values("pk")[:1]
        last_seq = Sample.objects.filter(run=models.OuterRef("run")).order_by("-seq").values("seq")[:1]
        return self.filter(run=models.Subquery(latest_run), seq=models.Subquery(last_seq))


class Sample(models.Model):
    """One reading of a miner during burn-in, as it came in."""

    run = models.ForeignKey(SelfTestRun, on_delete=models.CASCADE, related_name="samples")
    seq = models.PositiveIntegerField()
    taken_at = models.DateTimeField()
    reachable = models.BooleanField(default=True)
    hashrate_ths = models.DecimalField("TH/s", max_digits=9, decimal_places=3, null=True, blank=True)
    power_w = models.PositiveIntegerField("miner-reported W", null=True, blank=True)
    boards = models.JSONField(
        default=list, blank=True, help_text="Per board: hashrate_ths, chips, chip_temp_c, board_temp_c."
    )
    fans_rpm = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    outlet_w = models.PositiveIntegerField("PDU outlet W", null=True, blank=True)
    circuit_w = models.PositiveIntegerField("PDU total W", null=True, blank=True)
    inlet_temp_c = models.DecimalField("inlet °C", max_digits=5, decimal_places=1, null=True, blank=True)

    objects = SampleQuerySet.as_manager()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="sample_seq_unique")]

    def __str__(self) -> str:
        return f"sample {self.seq} of run {self.run_id}"


# --------------------------------------------------------------------------------------
# What a tenant asks staff to do with one of its machines
# --------------------------------------------------------------------------------------


class MachineRequestQuerySet(TenantOwnedQuerySet):
    tenant_path = "machine__tenant"

    def open(self) -> "MachineRequestQuerySet":
        return self.filter(state=MachineRequest.State.OPEN)

    def queue(self) -> "MachineRequestQuerySet":
        """Open requests, oldest first, with what staff need to act on them."""
        return (
            self.open()
            .select_related("machine__tenant", "machine__model", "machine__contract__site", "requested_by")
            .order_by("created_at", "pk")
        )


class MachineRequest(models.Model):
    """A tenant asking staff to test one of its machines again or send it for repair (RMA),
    and what staff made of it."""

    class Kind(models.TextChoices):
        RETEST = "retest", "re-test"
        RMA = "rma", "RMA (send for repair)"

    class State(models.TextChoices):
        OPEN = "open", "open"
        DONE = "done", "done"
        DECLINED = "declined", "declined"

    # The machine status each kind leads to: whether a machine may be asked for is the
    # lifecycle's answer for that move (hosting.lifecycle), not a list kept here.
    LEADS_TO = {Kind.RETEST: MachineStatus.TESTING, Kind.RMA: MachineStatus.RMA}

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="requests")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    note = models.TextField(blank=True, max_length=2000, help_text="What the tenant says about it.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    response = models.TextField(blank=True, help_text="What staff did, or why they declined.")

    objects = MachineRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One thing at a time: a second ask while one is open would race the first.
            models.UniqueConstraint(fields=["machine"], condition=Q(state="open"), name="machinerequest_one_open"),
            models.CheckConstraint(
                condition=Q(state="open", resolved_at__isnull=True) | (~Q(state="open") & Q(resolved_at__isnull=False)),
                name="machinerequest_resolved_iff_closed",
            ),
            models.CheckConstraint(
                condition=~Q(state="declined") | ~Q(response=""), name="machinerequest_declined_with_reason"
            ),
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="machinerequest_queue")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.machine.serial}: {self.state}"

    @classmethod
    def kinds_for(cls, status: str) -> list[str]:
        """What a machine in `status` may be asked for: the kinds whose move the lifecycle allows."""
        return [kind for kind, to_status in cls.LEADS_TO.items() if to_status in MACHINE_TRANSITIONS[status]]
