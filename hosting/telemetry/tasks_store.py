"""Celery entry points of telemetry storage (beat runs them; see CELERY_BEAT_SCHEDULE).

Central tasks, on the default queue: they touch only the database. Each is safe to run
twice and concurrently (services_store locks the site's policy row and does only what is
still missing), so a retried or doubled beat tick changes nothing.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from capacity.models import Site
from hosting.models import Machine
from hosting.telemetry import services_store
from hosting.telemetry.models import TelemetryPolicy


def _sites(site_id: int | None, *, watched: bool) -> list[Site]:
    if site_id is not None:
        return list(Site.objects.filter(pk=site_id))
    if watched:  # sites with a machine to account for, and those already accounting
        ids = set(Machine.objects.watched().values_list("slot__rack__site_id", flat=True).distinct())
        ids |= set(TelemetryPolicy.objects.filter(filled_until__isnull=False).values_list("site_id", flat=True))
    else:
        ids = set(TelemetryPolicy.objects.filter(filled_until__isnull=False).values_list("site_id", flat=True))
    return list(Site.objects.filter(pk__in=ids).order_by("pk"))


@shared_task(name="telemetry.account", acks_late=True, ignore_result=True)
def account(site_id: int | None = None) -> int:
    """Unknown windows for every interval no poll answered (per site, or for one)."""
    now = timezone.now()
    return sum(services_store.fill_unknown(site, now) for site in _sites(site_id, watched=True))


@shared_task(name="telemetry.roll_up", acks_late=True, ignore_result=True)
def roll_up(site_id: int | None = None) -> int:
    """Machine-hours, then contract- and circuit-days, as far as accounting has closed."""
    now = timezone.now()
    written = 0
    for site in _sites(site_id, watched=False):
        written += services_store.roll_up_hours(site, now)
        written += services_store.roll_up_days(site, now)
    return written


@shared_task(name="telemetry.maintain_partitions", acks_late=True, ignore_result=True)
def maintain_partitions() -> dict[str, list[str]]:
    """Partitions ahead (TELEMETRY_PARTITIONS_AHEAD_DAYS), expired raw ones dropped
    (TELEMETRY_RAW_DAYS); on SQLite, old raw rows deleted."""
    return services_store.maintain_partitions()
