"""Recording the bulk writes auditlog's signals never see: bulk_create, bulk_update and
QuerySet.update of the registered models. Each call costs one read of the rows' fields
before (per batch) and one bulk insert of log entries after — never a query per row.

    changes.bulk_update(machines, ["status", "slot"], via="services.move_machines")
    changes.update(Reservation.objects.filter(pk=pk), via="ledger.reserve", released_at=now)
    changes.created(Machine.objects.bulk_create(rows), via="packing.register")

Each entry is stamped like auditlog's own: the current actor, request/task id and address
(`changelog.context`), plus `additional_data["via"]`, the write that made it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from auditlog.context import auditlog_disabled
from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from changelog import context

M = TypeVar("M", bound=models.Model)
BATCH = 2000


def recorded(model: type[models.Model]) -> bool:
    """Whether the change log records this model (and is not switched off right now)."""
    return auditlog.contains(model) and not auditlog_disabled.get()


def _describe(obj: models.Model) -> str:
    # Never str(obj): a model's __str__ may follow foreign keys, a query per row.
    return f"{obj._meta.verbose_name} #{obj.pk}"


def _entries(
    action: int,
    pairs: Sequence[tuple[models.Model, dict | None]],
    via: str,
    describe: Callable[[Any], str] | None,
) -> list[LogEntry]:
    if not pairs:
        return []
    acting = context.current()
    content_type = ContentType.objects.get_for_model(type(pairs[0][0]))
    extra = {**((acting.extra() or {}) if acting else {}), "via": via}
    now = timezone.now()
    describe = describe or _describe
    return [
        LogEntry(
            content_type=content_type,
            object_pk=str(obj.pk),
            object_id=obj.pk if isinstance(obj.pk, int) else None,
            object_repr=describe(obj)[:2000],
            action=action,
            changes=changes,
            actor_id=acting.user_id if acting else None,
            cid=acting.cid if acting else None,
            remote_addr=acting.remote_addr if acting else None,
            additional_data=extra,
            timestamp=now,
        )
        for obj, changes in pairs
        if changes
    ]


def _write(entries: list[LogEntry]) -> None:
    if entries:
        LogEntry.objects.bulk_create(entries, batch_size=BATCH)


def created(objs: Sequence[M], *, via: str, describe: Callable[[M], str] | None = None) -> Sequence[M]:
    """Record rows just made by bulk_create (with their primary keys). Returns `objs`."""
    if objs and recorded(type(objs[0])):
        pairs = [(o, model_instance_diff(None, o, use_json_for_changes=True)) for o in objs if o.pk is not None]
        _write(_entries(LogEntry.Action.CREATE, pairs, via, describe))
    return objs


def _before(model: type[M], pks: Sequence[Any], fields: Sequence[str]) -> dict[Any, M]:
    found: dict[Any, M] = {}
    for i in range(0, len(pks), BATCH):
        chunk = pks[i : i + BATCH]
        found.update((o.pk, o) for o in model._base_manager.filter(pk__in=chunk).only(*fields))
    return found


def _diffs(objs: Sequence[M], before: Mapping[Any, M], fields: Sequence[str]) -> list[tuple[M, dict | None]]:
    return [
        (o, model_instance_diff(before[o.pk], o, fields_to_check=fields, use_json_for_changes=True))
        for o in objs
        if o.pk in before
    ]


def bulk_update(
    objs: Sequence[M],
    fields: Sequence[str],
    *,
    via: str,
    batch_size: int | None = None,
    describe: Callable[[M], str] | None = None,
) -> int:
    """`Model.objects.bulk_update(objs, fields)`, recording each object whose fields changed
    from what the database held (read in one query per batch, before the write)."""
    if not objs:
        return 0
    model = type(objs[0])
    if not recorded(model):
        return _bulk_update(model, objs, fields, batch_size)
    with transaction.atomic():
        before = _before(model, [o.pk for o in objs], fields)
        n = _bulk_update(model, objs, fields, batch_size)
        _write(_entries(LogEntry.Action.UPDATE, _diffs(objs, before, fields), via, describe))
    return n


def _bulk_update(model: type[M], objs: Sequence[M], fields: Sequence[str], batch_size: int | None) -> int:
    """Django's bulk_update; when every object has the same values (thousands of machines moved
    to one status at one moment), one plain UPDATE per batch instead — bulk_update's CASE of a
    WHEN per row costs seconds to build and run at that size."""
    named = [model._meta.get_field(name) for name in fields]
    values = {
        f.attname: getattr(objs[0], f.attname)
        for f in named
        if isinstance(f, models.Field) and f.concrete and not f.primary_key
    }
    alike = len(values) == len(fields) and all(getattr(o, a) == v for o in objs for a, v in values.items())
    if not alike:  # (and any field bulk_update refuses: let it say so)
        return model._default_manager.bulk_update(objs, fields, batch_size=batch_size)
    pks = [o.pk for o in objs]
    size = batch_size or BATCH
    manager = model._default_manager
    return sum(manager.filter(pk__in=pks[i : i + size]).update(**values) for i in range(0, len(pks), size))


def update(queryset: models.QuerySet[M], *, via: str, describe: Callable[[M], str] | None = None, **values: Any) -> int:
    """`queryset.update(**values)`, recording each row it changes: the rows are read (and
    locked) first, so what is recorded is what was changed."""
    model = queryset.model
    if not recorded(model):
        return queryset.update(**values)
    fields = list(values)
    with transaction.atomic():
        rows = list(queryset.select_for_update().only(*fields))
        if not rows:
            return 0
        pks = [r.pk for r in rows]
        n = model._base_manager.filter(pk__in=pks).update(**values)
        after = _before(model, pks, fields)
        pairs = [
            (after[r.pk], model_instance_diff(r, after[r.pk], fields_to_check=fields, use_json_for_changes=True))
            for r in rows
            if r.pk in after
        ]
        _write(_entries(LogEntry.Action.UPDATE, pairs, via, describe))
    return n
