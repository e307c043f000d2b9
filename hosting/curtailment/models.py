"""The rows curtailment keeps: each site's grid connection and settlement point, imported
real-time prices, the programs a site takes part in, events (a target to shed or reach by a
deadline), the machines chosen for an event with every command sent and answered, and the
achieved MW measured over time.

Who may be curtailed, for how many hours and with what notice are contract terms
(hosting.billing.models.ContractTerms); the SLA and the invoice read the windows, each of
which records the machine's state (`curtailed`) when it was polled.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from capacity.models import Site
from hosting.models import Contract, Machine


class SiteGrid(models.Model):
    """Where a site buys its power: the ISO and the settlement point whose price it pays."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="grid")
    iso = models.CharField("ISO", max_length=20, default="ERCOT")
    settlement_point = models.CharField(max_length=40, blank=True, help_text="e.g. LZ_WEST, HB_HOUSTON.")
    fetch_prices = models.BooleanField(
        default=False, help_text="Fetch real-time prices with gridstatus (needs network access from the site)."
    )

    def __str__(self) -> str:
        return f"{self.site} @ {self.iso} {self.settlement_point}"


class SettlementPrice(models.Model):
    """One 15-minute real-time settlement point price. `interval_start` is UTC, so the
    repeated hour of the autumn DST day does not collide (ERCOT's DSTFlag tells them apart)."""

    settlement_point = models.CharField(max_length=40)
    interval_start = models.DateTimeField()
    interval_minutes = models.PositiveSmallIntegerField(default=15)
    price_usd_per_mwh = models.DecimalField(max_digits=10, decimal_places=2)
    source = models.CharField(max_length=20, default="file", help_text="file, gridstatus or api.")
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["settlement_point", "interval_start"], name="curtailment_price_unique")
        ]
        ordering = ["settlement_point", "-interval_start"]

    def __str__(self) -> str:
        return f"{self.settlement_point} {self.interval_start:%Y-%m-%d %H:%M} {self.price_usd_per_mwh} $/MWh"


class ProgramKind(models.TextChoices):
    PRICE = "price", "Price (strike $/MWh)"
    FOUR_CP = "4cp", "4CP (coincident peaks)"
    ERS_10 = "ers10", "ERS-10 (10 minutes)"
    ERS_30 = "ers30", "ERS-30 (30 minutes)"
    RRS = "rrs", "Responsive Reserve"
    VOLUNTARY = "voluntary", "Voluntary curtailment"


class Program(models.Model):
    """A program a site takes part in, with its rules."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="curtailment_programs")
    kind = models.CharField(max_length=10, choices=ProgramKind.choices)
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    # Price programs.
    strike_usd_per_mwh = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    hold_minutes = models.PositiveIntegerField(default=15, help_text="Above the strike this long before curtailing.")
    resume_minutes = models.PositiveIntegerField(default=15, help_text="Below the strike this long before resuming.")
    ramp_mw_per_min = models.DecimalField(
        max_digits=8, decimal_places=3, default=Decimal("5"), validators=[MinValueValidator(Decimal("0.001"))],
        help_text="How fast load is shed or brought back.",
    )  # fmt: skip
    # 4CP: a daily watch window, June to September, in the site's local time.
    watch_from = models.TimeField(null=True, blank=True)
    watch_until = models.TimeField(null=True, blank=True)
    # Event programs: the time to respond.
    response_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="ERS-10: 10, ERS-30: 30.")

    class Meta:
        ordering = ["site", "kind", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}) at {self.site}"


class AvoidInterval(models.Model):
    """An interval staff mark to avoid (a likely 4CP peak)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="avoid_intervals")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]

    def __str__(self) -> str:
        return f"avoid {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"


class EventStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"
    CANCELLED = "cancelled", "Cancelled"


class Event(models.Model):
    """A curtailment: shed `target_mw` (or bring load down to it) by `deadline_at`, from
    `starts_at` until `ends_at` (open when empty)."""

    class Target(models.TextChoices):
        SHED = "shed", "Shed this many MW"
        REACH = "reach", "Bring site load down to this many MW"

    class Source(models.TextChoices):
        STAFF = "staff", "Staff"
        QSE = "qse", "QSE"
        PRICE = "price", "Price trigger"
        FOUR_CP = "4cp", "4CP watch"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="curtailment_events")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, null=True, blank=True, related_name="events")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.STAFF)
    external_id = models.CharField(max_length=100, blank=True, help_text="The QSE's id: one event per id.")
    target = models.CharField(max_length=5, choices=Target.choices, default=Target.SHED)
    target_mw = models.DecimalField(max_digits=10, decimal_places=3, validators=[MinValueValidator(Decimal(0))])
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(help_text="When the target must be met.")
    status = models.CharField(max_length=10, choices=EventStatus.choices, default=EventStatus.SCHEDULED)
    planned_mw = models.DecimalField(max_digits=10, decimal_places=3, default=Decimal(0))
    shortfall_mw = models.DecimalField(
        max_digits=10, decimal_places=3, default=Decimal(0), help_text="What the contracts' rights could not reach."
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "external_id"], condition=~Q(external_id=""), name="curtailment_event_external_id"
            ),
            # A price or 4CP program has one open event at a time (hosting.curtailment.programs
            # locks the program's row; this is the backstop).
            models.UniqueConstraint(
                fields=["program"],
                condition=Q(source__in=["price", "4cp"], status__in=["scheduled", "active"], ends_at__isnull=True),
                name="curtailment_event_one_open_per_program",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} event at {self.site} from {self.starts_at:%Y-%m-%d %H:%M}"


class CurtailmentStatus(models.TextChoices):
    CHOSEN = "chosen", "Chosen"
    SENT = "sent", "Command sent"
    CURTAILED = "curtailed", "Curtailed (answered)"
    VERIFIED = "verified", "Verified off by measured power"
    STILL_DRAWING = "still_drawing", "Still drawing after the deadline"
    FAILED = "failed", "Did not answer"
    RESUMED = "resumed", "Resumed"


class EventMachine(models.Model):
    """A machine an event curtails: why it was chosen, what it was told, what it did."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="machines")
    machine = models.ForeignKey(Machine, on_delete=models.PROTECT, related_name="curtailments")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="+")
    rank = models.PositiveIntegerField(help_text="Order chosen: least efficient first.")
    j_per_th = models.FloatField(null=True, help_text="Efficiency it was ranked by.")
    expected_shed_w = models.PositiveIntegerField()
    action = models.CharField(max_length=20, default="stop_mining", help_text="stop_mining or set_power_limit.")
    power_limit_w = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=14, choices=CurtailmentStatus.choices, default=CurtailmentStatus.CHOSEN)
    attempts = models.PositiveSmallIntegerField(default=0)
    power_before_w = models.FloatField(null=True, blank=True)
    power_after_w = models.FloatField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["event", "rank"]
        constraints = [models.UniqueConstraint(fields=["event", "machine"], name="curtailment_eventmachine_unique")]
        indexes = [models.Index(fields=["machine", "status"], name="curtailment_em_machine")]

    def __str__(self) -> str:
        return f"{self.machine_id} in event {self.event_id}: {self.status}"


class Command(models.Model):
    """One command sent to a miner and its answer."""

    event_machine = models.ForeignKey(EventMachine, on_delete=models.CASCADE, related_name="commands")
    command = models.CharField(max_length=20)
    sent_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    answer = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["sent_at"]

    def __str__(self) -> str:
        return f"{self.command} → {self.event_machine.machine_id}: {self.ok}"


class EventSample(models.Model):
    """Achieved MW at one moment, from the PDU readings, beside the target."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    target_mw = models.DecimalField(max_digits=10, decimal_places=3)
    achieved_mw = models.DecimalField(max_digits=10, decimal_places=3)
    site_load_mw = models.DecimalField(max_digits=10, decimal_places=3, null=True)
    machines_off = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["event", "at"]
        constraints = [models.UniqueConstraint(fields=["event", "at"], name="curtailment_sample_unique")]

    def __str__(self) -> str:
        return f"event {self.event_id} @ {self.at:%H:%M:%S}: {self.achieved_mw} MW"
