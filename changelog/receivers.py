"""Stamping log entries with who acted; one context per Celery task, carrying on the request
(or task) that queued it."""

from contextvars import Token
from typing import Any

from changelog import context

_tasks: dict[str, Token] = {}  # task id → the token its context was opened with


def stamp(sender, instance, **kwargs) -> None:
    """pre_save of every LogEntry auditlog writes: the current actor, address and how."""
    acting = context.current()
    if acting is None:
        return
    if instance.actor_id is None and acting.user_id is not None:
        instance.actor_id = acting.user_id
    if instance.remote_addr is None:
        instance.remote_addr = acting.remote_addr
    if not instance.cid:
        instance.cid = acting.cid
    extra = acting.extra()
    if extra:
        instance.additional_data = {**(instance.additional_data or {}), **extra}


# Message headers a task published inside a context carries: the request id and the user.
CID_HEADER = "changelog_cid"
USER_HEADER = "changelog_user_id"


def task_published(headers: dict[str, Any] | None = None, **kwargs) -> None:
    """before_task_publish: a task queued inside a context (a request, another task) carries
    its id and user, whichever way it is sent (delay, apply_async, send_task, queues.publish)."""
    acting = context.current()
    if acting is None or headers is None:
        return
    headers[CID_HEADER] = acting.cid
    if acting.user_id is not None:
        headers[USER_HEADER] = acting.user_id


def queued_by(request: Any) -> tuple[str | None, int | None]:
    """The request id and user a task's message carries (None, None: beat, a shell). The broker
    is trusted as far as it is for the task itself; a malformed id or user is dropped."""
    cid = context.sane_cid(getattr(request, CID_HEADER, None))
    if cid is None:
        return None, None
    user_id = getattr(request, USER_HEADER, None)
    return cid, user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def _user_exists(user_id: int) -> bool:
    from django.contrib.auth import get_user_model

    return get_user_model()._default_manager.filter(pk=user_id).exists()


def task_started(task_id: str | None = None, task: Any = None, **kwargs) -> None:
    """A task's changes are made by the task (its name): for whoever queued it (their user, and
    their request id, so one action's changes group together), else under the task's own id."""
    if task_id is None:
        return
    cid, user_id = queued_by(getattr(task, "request", None))
    if user_id is not None and not _user_exists(user_id):
        user_id = None  # deleted since it queued this (a retry hours later): an entry must not name it
    by = f"task {getattr(task, 'name', '?')}"
    _tasks[task_id] = context.begin(context.Acting(cid=cid or task_id, user_id=user_id, by=by))


def task_finished(task_id: str | None = None, **kwargs) -> None:
    token = _tasks.pop(task_id, None) if task_id is not None else None
    if token is not None:
        try:
            context.end(token)
        except ValueError:  # opened in another context (a thread pool): just clear it
            context.begin(None)
