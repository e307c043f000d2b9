"""The rows telemetry keeps: per-site policy, raw windows (day partitions on PostgreSQL),
rollups kept for years (billing reads them), poll runs and alerts.

A window with `reachable` NULL is **unknown**: no poll happened (worker or broker down).
It never counts as down; every uptime figure shows unknown beside hashing and reachable.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from capacity.models import Circuit, Site
from hosting.models import Contract, Machine, Tenant


class TelemetryPolicy(models.Model):
    """One site's polling and alert rules, with defaults; created on first use."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="telemetry_policy")
    poll_interval_s = models.PositiveIntegerField(
        default=300, help_text="Window length: every live machine is polled once per interval."
    )
    offline_windows = models.PositiveSmallIntegerField(
        default=3, help_text="Consecutive unreachable windows before an offline alert."
    )
    low_hashrate_pct = models.PositiveSmallIntegerField(
        default=80, help_text="Hashrate under this % of nominal counts as low."
    )
    low_hashrate_windows = models.PositiveSmallIntegerField(
        default=3, help_text="Consecutive low windows before an alert."
    )
    inlet_max_c = models.DecimalField(
        max_digits=4, decimal_places=1, default=40, help_text="Inlet air over this is an alert."
    )
    circuit_alert_pct = models.PositiveSmallIntegerField(
        default=80, help_text="Measured draw over this % of the breaker is an alert."
    )
    facility_alert_pct = models.PositiveSmallIntegerField(
        default=90, help_text="Measured facility MW × PUE over this % of the energized budget is flagged."
    )
    # Bookkeeping of the periodic tasks (each moves forward only).
    filled_until = models.DateTimeField(
        null=True, blank=True, help_text="Windows before this are written or marked unknown."
    )
    hours_rolled_until = models.DateTimeField(null=True, blank=True)
    days_rolled_until = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "telemetry policies"

    def __str__(self) -> str:
        return f"Telemetry policy of {self.site}"


class PowerSource(models.TextChoices):
    PDU = "pdu", "PDU outlet"
    MINER = "miner", "Miner-reported"
    NAMEPLATE = "nameplate", "Nameplate"


class Window(models.Model):
    """One machine in one poll interval. Partitioned by day on `start` on PostgreSQL."""

    pk = models.CompositePrimaryKey("start", "machine")
    start = models.DateTimeField()
    # Two indexes only, (start, machine) and (machine, start): each index is paid on every
    # one of 432 M rows a day. Reads by site or contract go through a time range or the rollups.
    machine = models.ForeignKey(
        Machine, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    contract = models.ForeignKey(
        Contract, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    machine_status = models.CharField(max_length=12, help_text="The machine's lifecycle status when polled.")
    reachable = models.BooleanField(null=True, help_text="NULL: unknown, no poll happened.")
    hashing = models.BooleanField(null=True)
    hashrate_ths = models.FloatField(null=True)
    hashrate_pct = models.FloatField(null=True, help_text="% of the model's nominal hashrate.")
    boards_seen = models.PositiveSmallIntegerField(null=True)
    chips_seen = models.PositiveIntegerField(null=True)
    chip_temp_max_c = models.FloatField(null=True)
    board_temp_max_c = models.FloatField(null=True)
    inlet_temp_c = models.FloatField(null=True)
    fans_ok = models.BooleanField(null=True)
    power_w = models.FloatField(null=True)
    power_source = models.CharField(max_length=10, choices=PowerSource.choices, blank=True)
    uptime_s = models.PositiveIntegerField(null=True)
    errors = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["machine", "start"], name="telemetry_window_machine")]

    def __str__(self) -> str:
        return f"{self.machine_id} @ {self.start:%Y-%m-%d %H:%M}"


class CircuitWindow(models.Model):
    """One circuit in one poll interval: the sum of its metered outlets."""

    pk = models.CompositePrimaryKey("start", "circuit")
    start = models.DateTimeField()
    circuit = models.ForeignKey(Circuit, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    measured_w = models.FloatField(null=True, help_text="NULL: the PDU did not answer or nothing is metered.")
    outlets_read = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["circuit", "start"], name="telemetry_cwindow_circuit")]

    def __str__(self) -> str:
        return f"circuit {self.circuit_id} @ {self.start:%Y-%m-%d %H:%M}"


class MachineHour(models.Model):
    """A machine's hour, rolled up from its windows (kept for years; month partitions on PostgreSQL)."""

    pk = models.CompositePrimaryKey("hour", "machine")
    hour = models.DateTimeField()
    machine = models.ForeignKey(  # (machine, hour) below serves lookups by machine
        Machine, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    contract = models.ForeignKey(Contract, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    windows = models.PositiveSmallIntegerField(help_text="Windows in the hour (known and unknown).")
    windows_unknown = models.PositiveSmallIntegerField(default=0)
    windows_reachable = models.PositiveSmallIntegerField(default=0)
    windows_hashing = models.PositiveSmallIntegerField(default=0)
    hashrate_ths_avg = models.FloatField(null=True, help_text="Over known windows, unreachable at 0.")
    power_w_avg = models.FloatField(null=True, help_text="Over known windows, unreachable at 0 W.")
    energy_wh = models.FloatField(default=0, help_text="power_w_avg × the known share of the hour.")
    chip_temp_max_c = models.FloatField(null=True)

    class Meta:
        indexes = [models.Index(fields=["machine", "hour"], name="telemetry_mhour_machine")]

    def __str__(self) -> str:
        return f"{self.machine_id} @ {self.hour:%Y-%m-%d %H}h"


class ContractDay(models.Model):
    """A contract's day (in UTC), rolled up from its machines' hours."""

    day = models.DateField()
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="telemetry_days")
    machines = models.PositiveIntegerField(default=0, help_text="Machines with windows that day.")
    windows = models.PositiveIntegerField(default=0)
    windows_unknown = models.PositiveIntegerField(default=0)
    windows_reachable = models.PositiveIntegerField(default=0)
    windows_hashing = models.PositiveIntegerField(default=0)
    hashrate_ths_avg = models.FloatField(
        null=True, help_text="The fleet's hashrate (sum over its machines), averaged over the hours known."
    )
    energy_wh = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contract", "day"], name="telemetry_contractday_unique")]

    def __str__(self) -> str:
        return f"contract {self.contract_id} on {self.day}"


class CircuitDay(models.Model):
    """A circuit's day: measured peak and average beside what was booked."""

    day = models.DateField()
    circuit = models.ForeignKey(Circuit, on_delete=models.CASCADE, related_name="telemetry_days")
    measured_w_peak = models.FloatField(null=True)
    measured_w_avg = models.FloatField(null=True)
    energy_wh = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["circuit", "day"], name="telemetry_circuitday_unique")]

    def __str__(self) -> str:
        return f"circuit {self.circuit_id} on {self.day}"


class PollRun(models.Model):
    """One site's poll of one interval: dispatched, then finished by the on-site worker."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="poll_runs")
    window_start = models.DateTimeField()
    dispatched_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    machines = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    windows_written = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "window_start"], name="telemetry_pollrun_unique")]
        indexes = [models.Index(fields=["site", "-window_start"], name="telemetry_pollrun_latest")]

    def __str__(self) -> str:
        return f"poll of {self.site_id} @ {self.window_start:%Y-%m-%d %H:%M}"


class AlertKind(models.TextChoices):
    OFFLINE = "offline", "Offline"
    LOW_HASHRATE = "low_hashrate", "Hashrate low"
    BOARD_LOST = "board_lost", "Board or chips lost"
    CHIP_HOT = "chip_hot", "Chip temperature over limit"
    FANS_STOPPED = "fans_stopped", "Fans stopped"
    INLET_HOT = "inlet_hot", "Inlet air over site maximum"
    OVER_DRAW = "over_draw", "Draw over nameplate"
    CIRCUIT_HOT = "circuit_hot", "Circuit over breaker threshold"


class AlertQuerySet(models.QuerySet["Alert"]):
    def open(self) -> AlertQuerySet:
        return self.filter(resolved_at__isnull=True)

    def visible_to(self, tenant: Tenant) -> AlertQuerySet:
        return self.filter(tenant=tenant)

    def visible_to_user(self, user) -> AlertQuerySet:
        """What a user may see, as TenantOwnedQuerySet.visible_to decides it: staff every
        alert (circuits' too), the anonymous nothing, a tenant's members its machines' alerts."""
        if user.is_staff:
            return self
        if not user.is_authenticated:
            return self.none()
        return self.filter(tenant__memberships__user=user)


class Alert(models.Model):
    """An alert opens once, stays open while its rule holds, and resolves."""

    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="alerts")
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts")
    circuit = models.ForeignKey(Circuit, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts")
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    values = models.JSONField(default=dict, blank=True, help_text="What the rule saw: measured, limit, windows.")
    message = models.CharField(max_length=300)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When a digest mail carried it.")

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "kind"], condition=Q(resolved_at__isnull=True, machine__isnull=False),
                name="telemetry_alert_open_machine",
            ),
            models.UniqueConstraint(
                fields=["circuit", "kind"], condition=Q(resolved_at__isnull=True, circuit__isnull=False),
                name="telemetry_alert_open_circuit",
            ),
        ]  # fmt: skip
        indexes = [models.Index(fields=["site", "resolved_at"], name="telemetry_alert_site_open")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.machine or self.circuit}"
