"""The physical side of a hosting site: power over time, the power chain, racks and slots.

Nothing here knows about tenants or money; `hosting` books these resources for someone
through `capacity.ledger`, which is the only code that writes reservations and slot
occupancy.
"""

import datetime as dt
import zoneinfo
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_countries.fields import CountryField

from capacity.power import circuit_usable_w

# Bulk writes go in statements of at most this many rows. One bulk_update of 10,000 rows
# is a single UPDATE with a 10,000-branch CASE, which PostgreSQL's JIT (on by default)
# takes a minute and more to compile; in batches of 500 the same update takes seconds.
BULK_BATCH_SIZE = 500


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. America/Chicago)") from None


class Site(models.Model):
    """A hosting data center: one grid connection, one PUE, one private miner network."""

    class Cooling(models.TextChoices):
        AIR = "air", "Air"
        HYDRO = "hydro", "Hydro"
        IMMERSION = "immersion", "Immersion"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        OPERATING = "operating", "Operating"
        CLOSED = "closed", "Closed"

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100, unique=True)
    country = CountryField()
    region = models.CharField(max_length=100, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    cooling = models.CharField(max_length=10, choices=Cooling.choices, default=Cooling.AIR)
    pue = models.DecimalField(
        "PUE",
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.10"),
        validators=[MinValueValidator(Decimal("1.00"))],
        help_text="Facility power ÷ IT power. Reserved IT kW × PUE must stay within the energized budget.",
    )
    max_ambient_c = models.DecimalField("max ambient °C", max_digits=4, decimal_places=1, default=Decimal("40.0"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPERATING)
    # Where machines are shipped and how the site receives them (shown to its tenants).
    ship_to_address = models.TextField(
        "ship-to address", blank=True, help_text="The consignee block as carriers print it, one line per line."
    )
    receiving_hours = models.CharField(
        max_length=200, blank=True, help_text="When the dock takes deliveries, with the site's time zone."
    )
    receiving_dock = models.CharField(
        max_length=200, blank=True, help_text="Which gate or dock, booking, trucks and pallets it takes."
    )
    customs_notes = models.TextField(blank=True, help_text="Importer of record, HS code, documents the border asks.")
    receiving_contact = models.CharField(
        max_length=200, blank=True, help_text="Who to call about a delivery: name, phone, e-mail."
    )
    # Bumped by the ledger in the transaction of every change to what the site's power or
    # floor looks like, so in-process caches of both know when they are stale.
    ledger_version = models.PositiveBigIntegerField(default=0, editable=False)
    floor_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(pue__gte=Decimal("1.00")), name="site_pue_at_least_1"),
        ]

    def __str__(self) -> str:
        return self.name

    VERSIONS = ("ledger_version", "floor_version")

    def save(self, *args, **kwargs):
        # The versions move only by the ledger's UPDATE … + 1; saving a site loaded a while
        # ago must not write an old number back over a newer one.
        if self.pk is not None and not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.name not in self.VERSIONS
            ]
        super().save(*args, **kwargs)

    @property
    def ship_to_block(self) -> str:
        """The ship-to address to paste on a label: a line per line, blank lines and stray
        spaces dropped."""
        return "\n".join(line.strip() for line in self.ship_to_address.splitlines() if line.strip())

    @property
    def has_receiving(self) -> bool:
        return any((self.receiving_hours, self.receiving_dock, self.customs_notes, self.receiving_contact))

    def today(self, now: dt.datetime | None = None) -> dt.date:
        """The calendar date at the site: budgets and terms follow local days."""
        return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(self.timezone)).date()


class EnergizationPhase(models.Model):
    """A block of grid power that becomes usable at a site on a date (a build-out step)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="phases")
    name = models.CharField(max_length=100)
    energized_on = models.DateField()
    mw = models.DecimalField("MW", max_digits=9, decimal_places=3, validators=[MinValueValidator(Decimal("0.001"))])

    class Meta:
        ordering = ["site", "energized_on", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(mw__gt=0), name="phase_mw_positive"),
            models.UniqueConstraint(fields=["site", "name"], name="phase_name_unique_per_site"),
        ]

    def __str__(self) -> str:
        return f"{self.site} · {self.name} ({self.mw} MW on {self.energized_on})"


class PowerFeed(models.Model):
    """A transformer and switchgear line-up feeding a row of racks; rated in kVA."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="feeds")
    name = models.CharField(max_length=100)
    rating_kva = models.PositiveIntegerField("rating kVA", validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["site", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(rating_kva__gt=0), name="feed_rating_positive"),
            models.UniqueConstraint(fields=["site", "name"], name="feed_name_unique_per_site"),
        ]

    def __str__(self) -> str:
        return f"{self.site.slug}/{self.name}"

    @property
    def rating_va(self) -> int:
        return self.rating_kva * 1000


class Pdu(models.Model):
    """A metered power distribution unit on a site's private network, read over SNMP."""

    class Profile(models.TextChoices):
        APC_RPDU2 = "apc-rpdu2", "APC rPDU2 (PowerNet-MIB)"
        RARITAN_PX2 = "raritan-px2", "Raritan PX2 (PDU2-MIB)"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="pdus")
    name = models.CharField(max_length=100)
    host = models.GenericIPAddressField(protocol="IPv4")
    port = models.PositiveIntegerField(default=161, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    community = models.CharField(max_length=64, default="public")
    profile = models.CharField(max_length=20, choices=Profile.choices, default=Profile.APC_RPDU2)

    class Meta:
        ordering = ["site", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="pdu_name_unique_per_site"),
            models.UniqueConstraint(fields=["host", "port"], name="pdu_address_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.site.slug}/{self.name}"


def load_w() -> Coalesce:
    """The watts allocated to a circuit's slots, as an aggregate over its slots."""
    return Coalesce(Sum("slots__allocated_w"), 0)


class CircuitQuerySet(models.QuerySet):
    def with_load(self) -> "CircuitQuerySet":
        """Annotate `load_w`: the watts allocated to the circuit's slots."""
        return self.annotate(load_w=load_w())


class Circuit(models.Model):
    """A breaker-protected branch of a feed that powers some slots (PDU inlet)."""

    class Phases(models.IntegerChoices):
        SINGLE = 1, "single-phase"
        THREE = 3, "three-phase"

    feed = models.ForeignKey(PowerFeed, on_delete=models.CASCADE, related_name="circuits")
    name = models.CharField(max_length=100)
    voltage_v = models.PositiveIntegerField(
        "voltage V", help_text="Line-to-line for three-phase circuits.", validators=[MinValueValidator(1)]
    )
    phases = models.PositiveSmallIntegerField(choices=Phases.choices, default=Phases.THREE)
    breaker_amps = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    power_factor = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.95"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("1.00"))],
    )
    pdu = models.ForeignKey(
        Pdu,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="circuits",
        help_text="The metered PDU this circuit feeds; empty when its outlets are not metered.",
    )

    objects = CircuitQuerySet.as_manager()

    class Meta:
        ordering = ["feed", "name"]
        constraints = [
            models.UniqueConstraint(fields=["feed", "name"], name="circuit_name_unique_per_feed"),
            models.CheckConstraint(condition=Q(voltage_v__gt=0, breaker_amps__gt=0), name="circuit_rating_positive"),
            models.CheckConstraint(
                condition=Q(power_factor__gt=0, power_factor__lte=1), name="circuit_power_factor_0_1"
            ),
            models.CheckConstraint(condition=Q(phases__in=[1, 3]), name="circuit_phases_1_or_3"),
        ]

    def __str__(self) -> str:
        return f"{self.feed}/{self.name}"

    @property
    def usable_w(self) -> int:
        return circuit_usable_w(self.voltage_v, self.breaker_amps, self.phases, self.power_factor)


class RackQuerySet(models.QuerySet):
    def with_occupancy(self) -> "RackQuerySet":
        """Annotate `slots_total` and `slots_used`."""
        return self.annotate(
            slots_total=Count("slots"), slots_used=Count("slots", filter=Q(slots__occupant__isnull=False))
        )


class Rack(models.Model):
    """A rack or shelf of miners in a row, powered from one feed."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="racks")
    feed = models.ForeignKey(PowerFeed, on_delete=models.PROTECT, related_name="racks")
    row = models.CharField(max_length=50, blank=True)
    name = models.CharField(max_length=100)

    objects = RackQuerySet.as_manager()

    class Meta:
        ordering = ["site", "row", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="rack_name_unique_per_site"),
        ]

    def __str__(self) -> str:
        return f"{self.site.slug}/{self.name}"

    def clean(self) -> None:
        if self.feed_id and self.site_id and self.feed.site_id != self.site_id:
            raise ValidationError({"feed": "The feed belongs to another site."})


class Slot(models.Model):
    """A position in a rack, wired to one circuit, holding at most one machine.

    `allocated_w` is the nameplate draw of whatever occupies the slot and `occupant` an
    opaque reference to it (e.g. ``machine:42``); both are written only by the ledger.
    """

    rack = models.ForeignKey(Rack, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveSmallIntegerField()
    circuit = models.ForeignKey(Circuit, on_delete=models.PROTECT, related_name="slots")
    allocated_w = models.PositiveIntegerField("allocated W", default=0)
    occupant = models.CharField(max_length=100, null=True, blank=True, unique=True)
    outlet = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Outlet number on the circuit's PDU; empty when unmetered."
    )

    class Meta:
        ordering = ["rack", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rack", "position"], name="slot_position_unique_per_rack"),
            models.CheckConstraint(
                condition=Q(occupant__isnull=True, allocated_w=0) | Q(occupant__isnull=False, allocated_w__gt=0),
                name="slot_occupied_iff_allocated",
            ),
        ]
        indexes = [models.Index(fields=["circuit", "occupant"], name="slot_circuit_occupant")]

    def __str__(self) -> str:
        return f"{self.rack}#{self.position}"

    def clean(self) -> None:
        if self.rack_id and self.circuit_id and self.circuit.feed.site_id != self.rack.site_id:
            raise ValidationError({"circuit": "The circuit belongs to another site."})


class ReservationQuerySet(models.QuerySet):
    def active(self, now: dt.datetime | None = None) -> "ReservationQuerySet":
        """Reservations that count: not released, and firm or a hold not yet expired."""
        now = now or timezone.now()
        return self.filter(released_at__isnull=True).filter(Q(kind=Reservation.Kind.FIRM) | Q(expires_at__gt=now))

    def holds_expiring(self, now: dt.datetime, within: dt.timedelta) -> "ReservationQuerySet":
        """Holds that still count and stop counting within `within` of `now`, soonest first."""
        return (
            self.active(now)
            .filter(kind=Reservation.Kind.HOLD, expires_at__lte=now + within)
            .order_by("expires_at", "pk")
        )


class Reservation(models.Model):
    """IT kW booked at a site for [starts_on, ends_on): a quote's hold or a contract."""

    class Kind(models.TextChoices):
        HOLD = "hold", "Hold"
        FIRM = "firm", "Firm"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="reservations")
    it_kw = models.DecimalField("IT kW", max_digits=12, decimal_places=3)
    starts_on = models.DateField()
    ends_on = models.DateField(
        null=True, blank=True, help_text="First day the power is free again; empty = open-ended."
    )
    kind = models.CharField(max_length=4, choices=Kind.choices)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="A hold stops counting at this instant.")
    released_at = models.DateTimeField(null=True, blank=True)
    reference = models.CharField(
        max_length=100, db_index=True, help_text="Opaque reference to whoever booked it, e.g. contract:42."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ReservationQuerySet.as_manager()

    class Meta:
        ordering = ["site", "starts_on", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(it_kw__gt=0), name="reservation_kw_positive"),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gt=F("starts_on")), name="reservation_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(kind="hold", expires_at__isnull=False) | Q(kind="firm", expires_at__isnull=True),
                name="reservation_hold_expires",
            ),
            # One live booking per reference (a quote's hold, a contract): idempotency per
            # reference, held by the database too. Released ones are history.
            models.UniqueConstraint(
                fields=["reference"], condition=Q(released_at__isnull=True), name="reservation_reference_unreleased"
            ),
        ]
        indexes = [models.Index(fields=["site", "released_at", "starts_on"], name="reservation_site_active")]

    def __str__(self) -> str:
        until = self.ends_on or "open-ended"
        return f"{self.kind} {self.it_kw} kW at {self.site.slug} {self.starts_on}→{until} ({self.reference})"
