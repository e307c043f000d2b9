"""Stamping log entries with who acted; one context per Celery task."""

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


def task_started(task_id: str | None = None, task: Any = None, **kwargs) -> None:
    """A task's changes group under its id and are made by the task (its name)."""
    if task_id is None:
        return
    _tasks[task_id] = context.begin(context.Acting(cid=task_id, by=f"task {getattr(task, 'name', '?')}"))


def task_finished(task_id: str | None = None, **kwargs) -> None:
    token = _tasks.pop(task_id, None) if task_id is not None else None
    if token is not None:
        try:
            context.end(token)
        except ValueError:  # opened in another context (a thread pool): just clear it
            context.begin(None)
