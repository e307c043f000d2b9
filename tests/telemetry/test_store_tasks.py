"""The storage tasks through a real Celery worker (another process, on the configured
broker): accounting writes unknowns, the rollup closes the hour, maintenance makes partitions;
each run twice changes nothing more."""

import datetime as dt

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from hosting.telemetry import tasks_store
from hosting.telemetry.models import MachineHour, TelemetryPolicy, Window
from hosting.telemetry.partitions import WINDOW
from hosting.telemetry.rollups import hour_start
from hosting.telemetry.services_store import partitions_of
from tests.telemetry.store_world import accounting_from, live_machines
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_beat_tasks_account_roll_up_and_keep_partitions(floor):
    assert {"telemetry.account", "telemetry.roll_up", "telemetry.maintain_partitions"} <= {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    machines = live_machines(floor, 2, since=timezone.now() - dt.timedelta(days=1))
    site = floor["site"]
    last_hour = hour_start(timezone.now()) - dt.timedelta(hours=1)
    accounting_from(site, last_hour)  # nobody polled during the last hour

    with celery_worker(queues=("celery",), purge_first=True, extra_env={"TELEMETRY_UNKNOWN_GRACE_S": "0"}):
        tasks_store.account.delay(site.pk)
        wait_for(lambda: TelemetryPolicy.objects.get(site=site).filled_until >= last_hour + dt.timedelta(hours=1),
                 what="accounting to close the last hour")  # fmt: skip
        tasks_store.roll_up.delay()
        wait_for(lambda: MachineHour.objects.filter(hour=last_hour).count() == 2, what="the hour's rollup")
        tasks_store.maintain_partitions.delay()
        tasks_store.account.delay()  # twice: nothing more to do for the intervals already closed
        if connection.vendor == "postgresql":
            tomorrow = WINDOW.name(WINDOW.bounds(timezone.now() + dt.timedelta(days=1))[0])
            wait_for(lambda: tomorrow in partitions_of(WINDOW), what="tomorrow's partition")

    rolled = MachineHour.objects.filter(hour=last_hour).order_by("machine_id")
    assert [(h.machine_id, h.windows, h.windows_unknown, h.energy_wh) for h in rolled] == [
        (m.pk, 12, 12, 0.0) for m in machines
    ]
    in_hour = Window.objects.filter(start__gte=last_hour, start__lt=last_hour + dt.timedelta(hours=1))
    assert in_hour.count() == 24 == in_hour.filter(reachable__isnull=True).count()
