"""A task's changes, through a real Celery worker: grouped under the task's id and made by
the task (its name), here the beat's curtailment task (check_events) cancelling an event in bulk."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from hosting.curtailment import tasks
from hosting.curtailment.models import Event, EventStatus
from tests.changes.conftest import last_of
from tests.factories import SiteFactory
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_tasks_changes_carry_its_id_and_name():
    now = timezone.now()
    event = Event.objects.create(
        site=SiteFactory(), target_mw=Decimal(1), starts_at=now - dt.timedelta(hours=2),
        ends_at=now - dt.timedelta(hours=1), deadline_at=now - dt.timedelta(hours=2),
    )  # fmt: skip
    with celery_worker(queues=("celery",), purge_first=True):
        sent = tasks.check_events.delay()
        wait_for(lambda: Event.objects.get(pk=event.pk).status == EventStatus.CANCELLED, what="the event cancelled")
    entry = last_of(event)
    assert entry.changes == {"status": ["scheduled", "cancelled"]}
    assert entry.cid == sent.id
    assert entry.actor is None
    assert entry.additional_data == {"by": "task curtailment.check_events", "via": "curtailment.act_on_due_events"}
