"""The other apps' signals (all sent on commit) turned into events. Nothing below imports
this app: it listens. A failure is logged, never raised into the write that sent the signal."""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from capacity.models import BULK_BATCH_SIZE
from hosting.billing.models import Invoice
from hosting.billing.signals import invoices_issued
from hosting.commissioning.signals import batches_finished
from hosting.curtailment.models import Event as CurtailmentEvent
from hosting.curtailment.models import EventMachine
from hosting.curtailment.signals import event_ended, event_started
from hosting.lifecycle import IN_SERVICE
from hosting.models import CommissioningBatch, Machine
from hosting.services import machines_moved
from hosting.telemetry.models import Alert
from hosting.telemetry.signals import alerts_opened, alerts_resolved
from hosting.webhooks import services
from hosting.webhooks.models import EventType
from hosting.webhooks.services import Entry

log = logging.getLogger(__name__)
MACHINES_PER_EVENT = 500


def logged(handler: Callable) -> Callable:
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            handler(*args, **kwargs)
        except Exception:
            log.exception("webhooks: %s failed", getattr(handler, "__name__", handler))

    return wrapped


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


@receiver(machines_moved, dispatch_uid="webhooks.machines_moved")
@logged
def on_machines_moved(sender, moves, to_status: str, at, **kwargs) -> None:
    """One event per tenant and up to 500 machines of a move (a bulk move makes few events)."""
    ids = [pk for pk, _, _ in moves]
    rows = {
        m["pk"]: m
        for i in range(0, len(ids), BULK_BATCH_SIZE)
        for m in Machine.objects.filter(pk__in=ids[i : i + BULK_BATCH_SIZE]).values(
            "pk", "serial", "tenant_id", "contract_id", "contract__site__slug"
        )
    }
    by_tenant: dict[int, list[dict]] = defaultdict(list)
    for pk, from_status, reason in moves:
        row = rows.get(pk)
        if row is None:
            continue
        by_tenant[row["tenant_id"]].append(
            {
                "id": pk, "serial": row["serial"], "contract": row["contract_id"],
                "site": row["contract__site__slug"], "from_status": from_status, "reason": reason,
            }
        )  # fmt: skip
    entries = [
        Entry(
            tenant_id=tenant_id,
            data={"to_status": to_status, "at": _iso(at), "machines": machines[i : i + MACHINES_PER_EVENT]},
        )
        for tenant_id, machines in sorted(by_tenant.items())
        for i in range(0, len(machines), MACHINES_PER_EVENT)
    ]
    services.record(EventType.MACHINE_STATUS_CHANGED, entries)


@receiver(batches_finished, dispatch_uid="webhooks.batches_finished")
@logged
def on_batches_finished(sender, batch_ids, **kwargs) -> None:
    batches = CommissioningBatch.objects.filter(pk__in=batch_ids).with_progress().select_related("contract")
    entries = []
    for batch in batches:
        progress = batch.progress
        entries.append(
            Entry(
                tenant_id=batch.tenant_id,
                key=f"batch:{batch.pk}",
                data={
                    "id": str(batch.pk),
                    "label": str(batch),
                    "source": batch.source,
                    "contract": batch.contract_id,
                    "machines": progress["total"],
                    "passed": batch.n_passed,
                    "failed": batch.n_failed,
                },
            )
        )
    services.record(EventType.BATCH_FINISHED, entries)


def _alert_entries(alert_ids) -> list[Entry]:
    alerts = Alert.objects.filter(pk__in=alert_ids).select_related("site", "machine").order_by("pk")
    return [
        Entry(
            tenant_id=a.tenant_id,
            data={
                "id": a.pk,
                "kind": a.kind,
                "site": a.site.slug,
                "machine": a.machine_id,
                "serial": a.machine.serial if a.machine else None,
                "circuit": a.circuit_id,
                "message": a.message,
                "opened_at": _iso(a.opened_at),
                "resolved_at": _iso(a.resolved_at),
                "values": a.values,
            },
        )
        for a in alerts
    ]


@receiver(alerts_opened, dispatch_uid="webhooks.alerts_opened")
@logged
def on_alerts_opened(sender, alert_ids, **kwargs) -> None:
    services.record(EventType.ALERT_OPENED, _alert_entries(alert_ids))


@receiver(alerts_resolved, dispatch_uid="webhooks.alerts_resolved")
@logged
def on_alerts_resolved(sender, alert_ids, **kwargs) -> None:
    services.record(EventType.ALERT_RESOLVED, _alert_entries(alert_ids))


@receiver(invoices_issued, dispatch_uid="webhooks.invoices_issued")
@logged
def on_invoices_issued(sender, invoice_ids, **kwargs) -> None:
    invoices = Invoice.objects.filter(pk__in=invoice_ids).select_related("site").order_by("pk")
    entries = [
        Entry(
            tenant_id=i.tenant_id,
            data={
                "id": i.pk,
                "number": i.number,
                "kind": i.kind,
                "contract": i.contract_id,
                "site": i.site.slug,
                "period_start": _iso(i.period_start),
                "period_end": _iso(i.period_end),
                "currency": i.currency,
                "total_amount": str(i.total_amount),
                "issued_at": _iso(i.issued_at),
                "due_on": _iso(i.due_on),
            },
        )
        for i in invoices
    ]
    services.record(EventType.INVOICE_ISSUED, entries)


def _curtailment(type: str, event_id: int) -> None:
    """The site's event, told to staff and to each tenant with machines in service at the
    site or taking part in it."""
    event = CurtailmentEvent.objects.select_related("site").get(pk=event_id)
    in_service = Machine.objects.filter(contract__site_id=event.site_id, status__in=IN_SERVICE)
    tenants = set(in_service.values_list("tenant_id", flat=True).distinct())
    tenants |= set(EventMachine.objects.filter(event=event).values_list("contract__tenant_id", flat=True).distinct())
    data = {
        "id": event.pk, "site": event.site.slug, "source": event.source, "status": event.status,
        "target": event.target, "target_mw": str(event.target_mw), "starts_at": _iso(event.starts_at),
        "ends_at": _iso(event.ends_at), "deadline_at": _iso(event.deadline_at),
    }  # fmt: skip
    services.record(type, [Entry(tenant_id=None, audience=sorted(tenants), data=data, key=f"{type}:{event.pk}")])


@receiver(post_save, sender=CurtailmentEvent, dispatch_uid="webhooks.curtailment_notice")
@logged
def on_curtailment_event_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        transaction.on_commit(logged(functools.partial(_curtailment, EventType.CURTAILMENT_NOTICE, instance.pk)))


@receiver(event_started, dispatch_uid="webhooks.curtailment_started")
@logged
def on_curtailment_started(sender, event_id: int, **kwargs) -> None:
    _curtailment(EventType.CURTAILMENT_STARTED, event_id)


@receiver(event_ended, dispatch_uid="webhooks.curtailment_ended")
@logged
def on_curtailment_ended(sender, event_id: int, **kwargs) -> None:
    _curtailment(EventType.CURTAILMENT_ENDED, event_id)
