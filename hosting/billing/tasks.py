"""Celery entry points of billing (beat runs them; see CELERY_BEAT_SCHEDULE). Central, on the
default queue; each is safe to run twice and at once (services lock the rows they change)."""

from __future__ import annotations

from celery import shared_task

from capacity.models import Site
from hosting.billing import services
from hosting.telemetry.models import TelemetryPolicy


@shared_task(name="billing.roll_up", acks_late=True, ignore_result=True)
def roll_up(site_id: int | None = None) -> int:
    """Machine-days of every local day telemetry has closed."""
    ids = TelemetryPolicy.objects.filter(filled_until__isnull=False).values_list("site_id", flat=True)
    if site_id is not None:
        ids = ids.filter(site_id=site_id)
    return sum(services.roll_up_machine_days(site) for site in Site.objects.filter(pk__in=ids).order_by("pk"))


@shared_task(name="billing.run_invoices", acks_late=True, ignore_result=True)
def run_invoices() -> int | None:
    """Invoices of last month for every contract whose billing day has come."""
    return services.run_invoices().pk


@shared_task(name="billing.mark_overdue", acks_late=True, ignore_result=True)
def mark_overdue() -> int:
    return len(services.mark_overdue())
