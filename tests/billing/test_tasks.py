"""Billing's beat tasks through a real Celery worker (another process, on the configured
broker): last month's windows are rolled into machine-days and invoiced on the billing
day; a second run finds nothing due."""

import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils import timezone

from hosting.billing import tasks
from hosting.billing.models import Invoice, InvoiceRun, MachineDay, RollupCursor
from tests.billing.world import billing_floor, hours, live
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_beat_tasks_roll_up_last_month_and_invoice_it(floor):
    assert {"billing.roll_up", "billing.run_invoices", "billing.mark_overdue"} <= {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    contract = billing_floor(floor)
    today = timezone.now().date()
    first = (today - relativedelta(months=1)).replace(day=1)
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(today.replace(day=1), dt.time(), dt.UTC)
    (m,) = live(floor, 1, since=start - dt.timedelta(days=1))
    hours(m, start, end)
    policy = floor["site"].telemetry_policy
    policy.filled_until = end
    policy.save(update_fields=["filled_until"])

    with celery_worker(queues=("celery",), purge_first=True):
        tasks.roll_up.delay()
        wait_for(lambda: RollupCursor.objects.filter(site=floor["site"], rolled_until=end.date()).exists(),
                 what="last month's machine-days")  # fmt: skip
        tasks.run_invoices.delay()
        # The run's row is saved when it finishes, after its invoices committed one by one.
        wait_for(lambda: InvoiceRun.objects.filter(finished_at__isnull=False).exists(), what="the run to finish")

    assert MachineDay.objects.filter(machine=m).count() == (end.date() - first).days
    (invoice,) = Invoice.objects.filter(contract=contract)
    hours_in_month = (end - start).total_seconds() / 3600
    assert invoice.machines.get().hours_live == hours_in_month
    (run,) = InvoiceRun.objects.all()
    assert run.log[0]["outcome"] == "created"
    assert tasks.run_invoices.apply().result is None  # nothing due any more: no second run kept
