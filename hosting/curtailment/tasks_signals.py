"""Celery entry points of curtailment's signals (beat runs them; see CELERY_BEAT_SCHEDULE):
central, on the default queue, safe to run twice and at once."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from hosting.curtailment import prices, programs

log = logging.getLogger(__name__)


@shared_task(name="curtailment.evaluate_programs", acks_late=True, ignore_result=True)
def evaluate_programs(site_id: int | None = None) -> int:
    """Every site's price and 4CP programs at this moment; the number of events opened or
    ended. (Events with a later start or a given end are started and ended by the one beat
    that does it, `curtailment.check_events`.)"""
    now = timezone.now()
    sites = programs.sites_with_triggered_programs().order_by("pk")
    if site_id is not None:
        sites = sites.filter(pk=site_id)
    changed = 0
    for site in sites:
        try:
            changes = programs.evaluate_programs(site, now)
        except Exception:  # one site's trouble must not stop the others' curtailment
            log.exception("evaluating the programs of site %s failed", site.pk)
            continue
        changed += sum(change.decision != "hold" for change in changes)
    return changed


@shared_task(name="curtailment.fetch_prices", acks_late=True, ignore_result=True)
def fetch_prices() -> int:
    """Real-time prices with gridstatus for every site that fetches them (skipped, logged,
    when gridstatus is not installed or ERCOT cannot be reached)."""
    results = prices.fetch_all()
    return sum(result.rows for result in results.values() if result is not None)
