"""The commercial side: who the tenants are, what they run, what they signed, what arrived.

Models hold fields, constraints and calculations; status changes go through
`hosting.services` (which locks, checks `hosting.lifecycle` and books `capacity.ledger`).
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from capacity.models import Reservation, Site, Slot
from hosting.fields import MACAddressField
from hosting.lifecycle import BOOKED, IN_SLOT, OFF_FLOOR, ContractStatus, MachineStatus


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


class Membership(models.Model):
    """A user acting for a tenant; a user may act for several. Staff are never members."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
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


class MachineQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "MachineQuerySet":
        return self.filter(tenant=tenant)


class Machine(models.Model):
    """One physical miner a tenant sends us, from packing list to live (or back)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="machines")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="machines")
    model = models.ForeignKey(MachineModel, on_delete=models.PROTECT, related_name="machines")
    serial = models.CharField(max_length=64, unique=True)
    mac = MACAddressField("MAC")
    ip = models.GenericIPAddressField("IP", protocol="IPv4", null=True, blank=True)
    slot = models.OneToOneField(Slot, on_delete=models.PROTECT, null=True, blank=True, related_name="machine")
    status = models.CharField(max_length=12, choices=MachineStatus.choices, default=MachineStatus.ANNOUNCED)
    status_changed_at = models.DateTimeField(default=timezone.now)
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


class MachineEvent(models.Model):
    """One status change of a machine: who moved it, when and why."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=MachineStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=MachineStatus.choices)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["machine", "at", "pk"]
        indexes = [models.Index(fields=["machine", "at"], name="machineevent_machine_at")]

    def __str__(self) -> str:
        return f"{self.machine.serial}: {self.from_status or '∅'} → {self.to_status}"
