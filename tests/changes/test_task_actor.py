"""A task's changes, through a real Celery worker: a task beat (or nobody) queued groups under
its own id and is made by the task (its name), here the curtailment task cancelling an event in
bulk; a task a request queued carries on that request — its id and its user — with the task
named as how, here a staff replay whose failed delivery disables the subscription."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hosting.curtailment import tasks
from hosting.curtailment.models import Event, EventStatus
from hosting.webhooks import models as webhooks
from tests.changes.conftest import last_of
from tests.factories import SiteFactory, StaffFactory
from tests.webhooks.receiver import running_receiver
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


def test_a_task_a_staff_request_queued_carries_the_requests_id_and_the_staff_user():
    staff = StaffFactory(username="ops")
    with running_receiver() as receiver:
        subscription = webhooks.Subscription.objects.create(
            url=receiver.url, events=[webhooks.EventType.INVOICE_ISSUED], created_by=staff
        )
        receiver.secret = subscription.secret
        event = webhooks.Event.objects.create(type=webhooks.EventType.INVOICE_ISSUED, payload={"n": 1})
        failed = webhooks.Delivery.objects.create(
            subscription=subscription, event=event, status=webhooks.Delivery.Status.FAILED, attempts=16
        )
        receiver.answer(500)  # the replay fails too: one try, and one failure disables (the worker's env)
        client = Client()
        client.force_login(staff)
        env = {"WEBHOOKS_ATTEMPTS": "1", "WEBHOOKS_DISABLE_AFTER": "1"}
        with celery_worker(queues=(settings.WEBHOOKS_QUEUE,), purge_first=True, extra_env=env) as worker:
            # The replay is queued after commit through hosting.queues.publish, inside the request.
            response = client.post(
                reverse("staff:webhook-replay", args=[subscription.pk, failed.pk]),
                headers={"X-Request-ID": "replay-after-outage-1"},
            )
            assert response.status_code == 302
            assert response["X-Request-ID"] == "replay-after-outage-1"
            wait_for(
                lambda: not webhooks.Subscription.objects.get(pk=subscription.pk).enabled,
                timeout_s=60,
                what="the subscription disabled by the worker\n" + worker.output(),
            )
    assert len(receiver.received) == 1
    assert receiver.received[0].verified
    entry = last_of(subscription)
    assert entry.changes["enabled"] == [True, False]
    assert entry.changes["disabled_reason"] == ["", "1 deliveries in a row failed after every retry"]
    assert (entry.cid, entry.actor) == ("replay-after-outage-1", staff)
    assert entry.additional_data == {"by": "task webhooks.deliver", "via": "webhooks.disable_if_failing"}
    # What the request's id finds is what the task it queued changed (the replay's delivery is not recorded).
    assert list(LogEntry.objects.filter(cid="replay-after-outage-1")) == [entry]
