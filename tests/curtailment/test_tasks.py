"""Curtailment's signal tasks through a real Celery worker (another process, on the configured
broker): both are on beat's schedule, and a price above the strike long enough becomes one
event when beat's task runs, however often it runs."""

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings

from hosting.curtailment import tasks_signals
from hosting.curtailment.models import Event, Program, ProgramKind, SettlementPrice, SiteGrid
from tests.factories import SiteFactory
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_beat_evaluates_the_programs_through_a_worker():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["curtailment.evaluate_programs"] == 60
    assert schedule["curtailment.fetch_prices"] == 300
    site = SiteFactory(slug="beat-west")
    SiteGrid.objects.create(site=site, settlement_point="LZ_WEST", fetch_prices=True)
    Program.objects.create(site=site, kind=ProgramKind.PRICE, name="p", strike_usd_per_mwh=Decimal(100))
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    for i in range(3):
        SettlementPrice.objects.create(
            settlement_point="LZ_WEST", interval_start=now - dt.timedelta(minutes=15 * i), price_usd_per_mwh=900
        )
    with celery_worker(queues=("celery",), purge_first=True) as worker:
        for _ in range(3):
            tasks_signals.evaluate_programs.delay()
        tasks_signals.fetch_prices.delay()
        wait_for(lambda: Event.objects.filter(site=site).exists(), what="the price event")
        wait_for(lambda: fetched(worker.output()), what="the fetch to finish")
        assert Event.objects.filter(site=site, source="price", ends_at=None).count() == 1
        # No gridstatus here (or, where it is installed, no network): logged and skipped.
        log = worker.output()
        assert "prices for LZ_WEST not fetched" in log or "could not fetch prices for LZ_WEST" in log
    assert Event.objects.filter(site=site, source="price", ends_at=None).count() == 1


def fetched(log: str) -> bool:
    return any("curtailment.fetch_prices[" in line and "succeeded" in line for line in log.splitlines())
