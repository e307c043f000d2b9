"""A real Celery worker (another process, on the configured broker — Redis in CI) delivers what
a real write announced: a machine moved, the event committed, the delivery task sent on the
webhooks queue, a 500 retried after its backoff, then delivered and verified by the receiver."""

import pytest
from django.conf import settings

from hosting import services as hosting_services
from hosting.lifecycle import MachineStatus
from hosting.webhooks import services
from hosting.webhooks.models import Attempt, Delivery, EventType
from tests.factories import racked
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_worker_delivers_a_machine_move_retrying_after_a_500(floor, receiver):
    subscription = services.subscribe(
        tenant=floor["contract"].tenant, url=receiver.url, events=[EventType.MACHINE_STATUS_CHANGED]
    )
    receiver.secret = subscription.secret
    (machine,) = racked(floor, 1)
    receiver.answer(500)
    env = {"WEBHOOKS_BACKOFF_BASE_S": "1"}  # the first retry a second later, not a minute
    with celery_worker(queues=(settings.WEBHOOKS_QUEUE,), purge_first=True, extra_env=env) as worker:
        Delivery.objects.all().delete()  # the racking's own delivery may have gone before the worker was up
        hosting_services.transition(machine, MachineStatus.RECEIVED, reason="to the other hall")
        delivery = wait_for(
            lambda: Delivery.objects.filter(subscription=subscription, status=Delivery.Status.DELIVERED).first(),
            timeout_s=60,
            what="the delivery\n" + worker.output(),
        )
    assert delivery.attempts == 2
    statuses = list(
        Attempt.objects.filter(delivery=delivery).order_by("number").values_list("response_status", flat=True)
    )
    assert statuses == [500, 200]
    mine = [r for r in receiver.received if r.json["id"] == str(delivery.event_id)]
    assert len(mine) == 2
    assert all(r.verified for r in mine)
    assert mine[0].json["data"]["machines"][0]["reason"] == "to the other hall"
