"""The request id and user a task carries from whoever queued it, through a real publish
(hosting.queues.publish on the configured broker) and the message read back as a worker reads
it: kept by the task's context, the task named as how; a task queued outside any context
(beat) keeps its own id, and headers that are not ours are ignored."""

import uuid
from types import SimpleNamespace

import pytest
from celery import shared_task

from changelog import context, receivers
from hosting import queues
from hosting.celery import app
from tests.factories import UserFactory


@shared_task(name="tests.changelog.noop")
def noop(n: int) -> None:  # never run: the test reads its message back
    pass


def published_headers(queue: str) -> dict:
    """The headers of the one message on `queue`, as the worker's request sees them."""
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue(queue)
        message = simple.get(timeout=10)
        message.ack()
        simple.close()
        return dict(message.headers)


def started(headers: dict) -> context.Acting:
    """task_prerun of a task whose request is these headers; its context, then closed."""
    task = SimpleNamespace(name="billing.run_invoices", request=SimpleNamespace(**headers))
    receivers.task_started(task_id="task-1", task=task)
    try:
        acting = context.current()
        assert acting is not None
        return acting
    finally:
        receivers.task_finished(task_id="task-1")


def test_a_task_published_in_a_request_carries_its_id_and_user_to_the_task(db):
    user = UserFactory()
    queue = f"test-changelog-{uuid.uuid4().hex[:8]}"
    with context.acting(cid="req-42", user=user):
        assert queues.publish(noop, [((1,), {})], queue, timeout_s=5) == 1
    headers = published_headers(queue)
    assert (headers[receivers.CID_HEADER], headers[receivers.USER_HEADER]) == ("req-42", user.pk)
    acting = started(headers)
    assert (acting.cid, acting.user_id, acting.by) == ("req-42", user.pk, "task billing.run_invoices")
    assert context.current() is None
    # The user deleted before the task ran (a retry hours later): the request id, no actor.
    user.delete()
    assert (started(headers).cid, started(headers).user_id) == ("req-42", None)


def test_a_task_published_outside_any_context_keeps_its_own_id():
    queue = f"test-changelog-{uuid.uuid4().hex[:8]}"
    assert queues.publish(noop, [((1,), {})], queue, timeout_s=5) == 1
    headers = published_headers(queue)
    assert receivers.CID_HEADER not in headers
    assert receivers.USER_HEADER not in headers
    acting = started(headers)
    assert (acting.cid, acting.user_id, acting.by) == ("task-1", None, "task billing.run_invoices")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({receivers.CID_HEADER: "bad id; with spaces", receivers.USER_HEADER: 1}, ("task-1", None)),
        ({receivers.CID_HEADER: "req-42", receivers.USER_HEADER: "7"}, ("req-42", None)),
        ({receivers.CID_HEADER: "req-42", receivers.USER_HEADER: True}, ("req-42", None)),
        ({receivers.USER_HEADER: 7}, ("task-1", None)),  # a user without a request id is not taken
    ],
)
def test_headers_that_are_not_ours_are_not_trusted(db, headers, expected):
    acting = started(headers)
    assert (acting.cid, acting.user_id) == expected
