"""Reading the change log: which entries, and how each reads (who, what, before → after).

The faces (the staff page, the API, the admin, the portal) all read through here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q, QuerySet

ACTIONS = {LogEntry.Action.CREATE: "create", LogEntry.Action.UPDATE: "update", LogEntry.Action.DELETE: "delete"}
ACTION_OF = {name: value for value, name in ACTIONS.items()}


def model_key(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def model_choices() -> list[tuple[str, str]]:
    """The recorded models as ("capacity.site", "Site"), by label."""
    found = [(model_key(m), str(m._meta.verbose_name).capitalize()) for m in auditlog.get_models()]
    return sorted(found, key=lambda c: c[1])


def entries() -> QuerySet[LogEntry]:
    """Every recorded create, update and delete, newest first."""
    return (
        LogEntry.objects.filter(action__in=list(ACTIONS))
        .select_related("content_type", "actor")
        .order_by("-timestamp", "-pk")
    )


def of_objects(model: type[models.Model], ids: list[int] | QuerySet) -> QuerySet[LogEntry]:
    content_type = ContentType.objects.get_for_model(model)
    return entries().filter(content_type=content_type, object_id__in=ids)


def of_object(obj: models.Model) -> QuerySet[LogEntry]:
    return of_objects(type(obj), [obj.pk])


def filtered(
    rows: QuerySet[LogEntry],
    *,
    model: str = "",
    object_id: str = "",
    actor: str = "",
    request_id: str = "",
    action: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[LogEntry]:
    """The filters of the staff page and of the API. `actor` is a username, or how a
    change was made without one: a token's prefix, a task's name (`billing.run_invoices`)."""
    if model and "." in model:
        app_label, model_name = model.split(".", 1)
        rows = rows.filter(content_type__app_label=app_label, content_type__model=model_name)
    if object_id:
        rows = rows.filter(object_pk=object_id)
    if actor:
        rows = rows.filter(Q(actor__username=actor) | Q(additional_data__by__icontains=actor))
    if request_id:
        rows = rows.filter(cid=request_id)
    if action in ACTION_OF:
        rows = rows.filter(action=ACTION_OF[action])
    if since is not None:
        rows = rows.filter(timestamp__gte=since)
    if until is not None:
        rows = rows.filter(timestamp__lt=until)
    return rows


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    before: Any
    after: Any


def by(entry: LogEntry) -> str:
    """How the change was made besides a session: "token 1a2b3c4d", "task billing.run_invoices"."""
    return str((entry.additional_data or {}).get("by", ""))


def via(entry: LogEntry) -> str:
    """The bulk write that recorded it ("" for a save or delete auditlog saw)."""
    return str((entry.additional_data or {}).get("via", ""))


def actor_for_staff(entry: LogEntry) -> str:
    """Who, as staff read it: the username (and the token), the task, or "system"."""
    how = by(entry)
    if entry.actor is not None:
        return f"{entry.actor.get_username()} ({how})" if how else entry.actor.get_username()
    return how or "system"


def actor_for_tenant(entry: LogEntry) -> str:
    """Who, as a tenant reads it: their own people by name, the host's as "Haven staff",
    the host's automation as "Haven"."""
    if entry.actor is not None:
        if entry.actor.is_staff:
            return "Haven staff"  # as the portal names staff everywhere, never by username
        how = " (API token)" if by(entry).startswith("token") else ""
        return f"{entry.actor.get_username()}{how}"
    return "Haven (automatic)" if by(entry).startswith("task") else "Haven"


def field_changes(entry: LogEntry) -> list[FieldChange]:
    """Each changed field with its label, before and after (None where there was none)."""
    model = entry.content_type.model_class()
    found = []
    for name, pair in (entry.changes_dict or {}).items():
        before, after = [*pair, None, None][:2] if isinstance(pair, list | tuple) else (None, pair)
        label = name
        if model is not None:
            try:
                label = str(model._meta.get_field(name).verbose_name)
            except Exception:
                label = name
        found.append(FieldChange(name, label, before, after))
    return sorted(found, key=lambda c: c.field)


def action_name(entry: LogEntry) -> str:
    return ACTIONS.get(entry.action, "other")
