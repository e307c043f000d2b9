"""Staff admin for telemetry: each site's polling and alert rules, and the alerts (written by
the rules, never by hand; acknowledged with an action)."""

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from capacity.adminutils import PageFiguresAdmin
from hosting.telemetry import alerting
from hosting.telemetry.models import Alert, TelemetryPolicy


@admin.register(TelemetryPolicy)
class TelemetryPolicyAdmin(PageFiguresAdmin):
    list_display = (
        "site",
        "poll_interval_s",
        "offline_windows",
        "low_hashrate_pct",
        "low_hashrate_windows",
        "inlet_max_c",
        "circuit_alert_pct",
        "facility_alert_pct",
        "filled_until",
    )
    list_select_related = ("site",)
    search_fields = ("site__name", "site__slug")
    autocomplete_fields = ("site",)
    readonly_fields = ("filled_until", "hours_rolled_until", "days_rolled_until")  # the periodic tasks' own


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("unacknowledged", "Open, not acknowledged"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.open()
        if self.value() == "unacknowledged":
            return queryset.open().filter(acknowledged_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(PageFiguresAdmin):
    """Opened and resolved by the rules after each poll; staff acknowledge them (action)."""

    list_display = (
        "kind",
        "subject",
        "site",
        "tenant",
        "message",
        "opened_at",
        "last_seen_at",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
        "notified_at",
    )
    list_filter = (OpenFilter, "kind", "site", "tenant")
    list_select_related = ("site", "machine__model", "circuit__feed__site", "tenant", "acknowledged_by")  # __str__ too
    search_fields = ("=machine__serial", "tenant__name", "circuit__name", "message")
    date_hierarchy = "opened_at"
    readonly_fields = [f.name for f in Alert._meta.concrete_fields]
    actions = ["acknowledge"]

    def has_add_permission(self, request):
        return False  # the rules open alerts

    def has_delete_permission(self, request, obj=None):
        return False  # history: resolved, never deleted

    @admin.display(description="machine or circuit")
    def subject(self, alert: Alert):
        if alert.machine is not None:
            url = reverse("admin:hosting_machine_change", args=[alert.machine_id])
            return format_html('<a href="{}">{}</a>', url, alert.machine.serial)
        if alert.circuit is not None:
            return f"circuit {alert.circuit.name}"
        return "—"

    @admin.action(description="Acknowledge", permissions=["change"])
    def acknowledge(self, request, queryset):
        now = timezone.now()
        alerts = list(queryset.filter(acknowledged_at__isnull=True))
        for alert in alerts:
            alerting.acknowledge(alert, request.user, now=now)
        self.message_user(request, f"Acknowledged: {len(alerts)}.")
