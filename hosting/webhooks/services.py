"""Writes of webhooks: subscribing, recording events and their deliveries, one attempt of a
delivery (claimed, sent, its outcome stored), disabling after repeated failures, re-enabling,
replaying, and the sweeps beat runs. Each is safe to run twice."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from capacity.errors import Refusal
from capacity.models import Reservation
from changelog import record as changes
from hosting import queues
from hosting.models import Tenant
from hosting.webhooks import sender, signing
from hosting.webhooks.models import Attempt, Delivery, Event, EventType, Subscription, new_secret
from hosting.webhooks.rules import Backoff

log = logging.getLogger(__name__)
USER_AGENT = "Haven-Webhooks/1"


class WebhookRefusal(Refusal):
    code = "webhook_refused"


def backoff() -> Backoff:
    return Backoff(
        base_s=settings.WEBHOOKS_BACKOFF_BASE_S,
        cap_s=settings.WEBHOOKS_BACKOFF_CAP_S,
        attempts=settings.WEBHOOKS_ATTEMPTS,
    )


# --- subscriptions ------------------------------------------------------------------------------


def check_url(url: str) -> None:
    """Refuse a URL no delivery could go to (WebhookRefusal, with the reason)."""
    try:
        sender.resolve(url, allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES)
    except sender.AddressRefused as exc:
        raise WebhookRefusal(str(exc)) from None


def check_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in EventType.values]
    if unknown or not chosen:
        raise WebhookRefusal(f"Choose one or more of: {', '.join(EventType.values)}.")
    return chosen


def subscribe(
    *, tenant: Tenant | None, url: str, events: Iterable[str], description: str = "", by=None
) -> Subscription:
    """A new subscription (its secret is shown to the caller once). `tenant` None: staff's,
    for the whole site. The URL is checked now and again at every delivery."""
    chosen = check_events(events)
    check_url(url)
    return Subscription.objects.create(
        tenant=tenant, url=url, events=chosen, description=description[:200], created_by=by
    )


def rotate_secret(subscription: Subscription) -> Subscription:
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret"])
    return subscription


def enable(subscription: Subscription, *, now: dt.datetime | None = None) -> Subscription:
    """Re-enable (its owner, after fixing the receiver): failures forgotten, and what waited
    while it was disabled is tried again now."""
    now = now or timezone.now()
    check_url(subscription.url)
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        locked.enabled = True
        locked.disabled_at = None
        locked.disabled_reason = ""
        locked.consecutive_failures = 0
        locked.save(update_fields=["enabled", "disabled_at", "disabled_reason", "consecutive_failures"])
        waiting = list(
            Delivery.objects.filter(subscription=locked, status=Delivery.Status.PENDING).values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=waiting).update(next_attempt_at=now, locked_until=None)
        transaction.on_commit(lambda: publish(waiting))
    return locked


def disable(subscription: Subscription, reason: str, *, now: dt.datetime | None = None) -> Subscription:
    now = now or timezone.now()
    changes.update(
        Subscription.objects.filter(pk=subscription.pk),
        via="webhooks.disable",
        enabled=False,
        disabled_at=now,
        disabled_reason=reason[:300],
    )
    subscription.refresh_from_db()
    return subscription


# --- events -------------------------------------------------------------------------------------


@dataclass
class Entry:
    """An event to record: whose (tenant, and the tenants told of it), what, and — for events
    announced once — its key."""

    tenant_id: int | None
    data: dict
    audience: list[int] = field(default_factory=list)
    key: str | None = None


def record(type: str, entries: Sequence[Entry], *, now: dt.datetime | None = None) -> list[Event]:
    """Record events of one type and a delivery for each enabled subscription that wants one;
    the deliveries are sent once this commits. An event nobody subscribed to is not kept, and
    a keyed event already recorded is not recorded again."""
    now = now or timezone.now()
    subscriptions = [s for s in Subscription.objects.filter(enabled=True) if type in s.events]
    if not entries or not subscriptions:
        return []
    events: list[Event] = []
    with transaction.atomic():
        keys = [e.key for e in entries if e.key]
        seen = set(Event.objects.filter(key__in=keys).values_list("key", flat=True)) if keys else set()
        plain = []
        for entry in entries:
            audience = sorted(set(entry.audience) | ({entry.tenant_id} if entry.tenant_id else set()))
            event = Event(type=type, tenant_id=entry.tenant_id, audience=audience, key=entry.key, created_at=now)
            event.payload = {
                "id": str(event.id), "type": type, "created_at": now.isoformat(), "data": entry.data,
            }  # fmt: skip
            if entry.key is None:
                plain.append(event)
            elif entry.key not in seen:
                try:
                    with transaction.atomic():  # a savepoint: another process may announce it first
                        event.save(force_insert=True)
                except IntegrityError:
                    continue
                events.append(event)
        Event.objects.bulk_create(plain, batch_size=500)
        events += plain
        deliveries = [
            Delivery(subscription=s, event=e, next_attempt_at=now, created_at=now)
            for e in events
            for s in subscriptions
            if s.wants(e)
        ]
        Delivery.objects.bulk_create(deliveries, batch_size=1000)
        ids = [d.pk for d in deliveries]
        if ids:
            transaction.on_commit(lambda: publish(ids))
    return events


def publish(delivery_ids: Sequence[int]) -> int:
    """Send delivery tasks without waiting on a dead broker: what is not sent, the sweep sends."""
    if not delivery_ids:
        return 0
    from hosting.webhooks.tasks import deliver

    messages: list[tuple[tuple, dict]] = [((pk,), {}) for pk in delivery_ids]
    return queues.publish(
        deliver, messages, settings.WEBHOOKS_QUEUE, timeout_s=settings.WEBHOOKS_PUBLISH_TIMEOUT_MS / 1000
    )


# --- delivering ---------------------------------------------------------------------------------


def headers_for(delivery: Delivery, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Haven-Event-Id": str(delivery.event_id),
        "Haven-Event-Type": delivery.event.type,
        "Haven-Delivery-Id": str(delivery.pk),
        signing.HEADER: signing.header(delivery.subscription.secret, body, timestamp),
    }


def _claim(delivery_id: int, now: dt.datetime) -> bool:
    """Take the delivery for one attempt (a lease: a worker that dies leaves it to the sweep)."""
    lease = dt.timedelta(seconds=settings.WEBHOOKS_TIMEOUT_S * 3 + 30)
    claimed = (
        Delivery.objects.due(now).filter(pk=delivery_id, subscription__enabled=True).update(locked_until=now + lease)
    )
    return claimed == 1


def attempt(delivery_id: int, *, now: dt.datetime | None = None) -> Delivery | None:
    """One attempt of a delivery that is due (None if it is not: delivered, given up, not yet
    due, another attempt under way, or its subscription disabled)."""
    now = now or timezone.now()
    if not _claim(delivery_id, now):
        return None
    delivery = Delivery.objects.select_related("event", "subscription").get(pk=delivery_id)
    body = signing.body_of(delivery.event.payload)
    answer = sender.post(
        delivery.subscription.url,
        body,
        headers_for(delivery, body),
        allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES,
        timeout_s=settings.WEBHOOKS_TIMEOUT_S,
    )
    return _store(delivery, answer, now)


def _store(delivery: Delivery, answer: sender.Answer, now: dt.datetime) -> Delivery:
    retry_in: dt.timedelta | None = None
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
        locked.attempts += 1
        Attempt.objects.create(
            delivery=locked, number=locked.attempts, at=now, response_status=answer.status,
            duration_ms=answer.duration_ms, error=answer.error, response_excerpt=answer.excerpt[:200],
        )  # fmt: skip
        locked.response_status = answer.status
        locked.duration_ms = answer.duration_ms
        locked.error = answer.error
        locked.locked_until = None
        subscriptions = Subscription.objects.filter(pk=locked.subscription_id)
        policy = backoff()
        if answer.ok:
            locked.status = Delivery.Status.DELIVERED
            locked.delivered_at = now
            subscriptions.filter(consecutive_failures__gt=0).update(consecutive_failures=0)
        elif policy.gives_up(locked.attempts):
            locked.status = Delivery.Status.FAILED
            subscriptions.update(consecutive_failures=F("consecutive_failures") + 1)
            _disable_if_failing(locked.subscription_id, now)
        else:
            retry_in = policy.delay(locked.attempts)
            locked.next_attempt_at = now + retry_in
        locked.save()
        if retry_in is not None and retry_in.total_seconds() <= settings.WEBHOOKS_SWEEP_S * 5:
            # Soon: a task waiting in the broker. Later ones the sweep sends when they are due.
            countdown = retry_in.total_seconds()
            transaction.on_commit(lambda: _publish_later(locked.pk, countdown))
    return locked


def _publish_later(delivery_id: int, countdown: float) -> None:
    from hosting.webhooks.tasks import deliver

    messages = [((delivery_id,), {"countdown": countdown})]
    queues.publish(deliver, messages, settings.WEBHOOKS_QUEUE, timeout_s=settings.WEBHOOKS_PUBLISH_TIMEOUT_MS / 1000)


def _disable_if_failing(subscription_id: int, now: dt.datetime) -> None:
    limit = settings.WEBHOOKS_DISABLE_AFTER
    failing = Subscription.objects.filter(pk=subscription_id, enabled=True, consecutive_failures__gte=limit)
    if changes.update(
        failing,
        via="webhooks.disable_if_failing",
        enabled=False,
        disabled_at=now,
        disabled_reason=f"{limit} deliveries in a row failed after every retry",
    ):
        log.warning("webhook subscription %s disabled after %d failed deliveries", subscription_id, limit)


def replay(delivery: Delivery, *, now: dt.datetime | None = None) -> Delivery:
    """Send a delivery's event again, as a new delivery (same event id, fresh signature)."""
    now = now or timezone.now()
    if not Subscription.objects.filter(pk=delivery.subscription_id, enabled=True).exists():
        raise WebhookRefusal("The subscription is disabled: re-enable it first.")
    again = Delivery.objects.create(
        subscription_id=delivery.subscription_id, event_id=delivery.event_id, replay_of=delivery,
        next_attempt_at=now, created_at=now,
    )  # fmt: skip
    transaction.on_commit(lambda: publish([again.pk]))
    return again


# --- beat ---------------------------------------------------------------------------------------


def sweep(*, now: dt.datetime | None = None, limit: int = 5000) -> int:
    """Send the deliveries that are due and that no task carries (a retry due later, a broker
    that was down, a worker that died mid-attempt: its lease has run out)."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.due(now)
        .filter(subscription__enabled=True)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return publish(ids)


def announce_expiring_holds(*, now: dt.datetime | None = None) -> list[Event]:
    """Each quote's hold expiring within WEBHOOKS_HOLD_NOTICE_HOURS, announced once (again only
    if the hold is extended and comes near its new end)."""
    now = now or timezone.now()
    within = dt.timedelta(hours=settings.WEBHOOKS_HOLD_NOTICE_HOURS)
    holds = Reservation.objects.holds_expiring(now, within).select_related("site", "quote")
    entries = []
    for hold in holds:
        quote = getattr(hold, "quote", None)
        assert hold.expires_at is not None
        entries.append(
            Entry(
                tenant_id=quote.tenant_id if quote else None,
                key=f"hold:{hold.pk}:{hold.expires_at.isoformat()}",
                data={
                    "reservation": hold.pk,
                    "quote": str(quote.pk) if quote else None,
                    "site": hold.site.slug,
                    "it_kw": str(hold.it_kw),
                    "starts_on": hold.starts_on.isoformat(),
                    "expires_at": hold.expires_at.isoformat(),
                },
            )
        )
    return record(EventType.HOLD_EXPIRING, entries, now=now)


def prune(*, now: dt.datetime | None = None) -> int:
    """Forget events older than WEBHOOKS_KEEP_DAYS with their deliveries and attempts (none of
    them still being tried). Returns the number of events deleted."""
    now = now or timezone.now()
    before = now - dt.timedelta(days=settings.WEBHOOKS_KEEP_DAYS)
    old = Event.objects.filter(created_at__lt=before).exclude(deliveries__status=Delivery.Status.PENDING)
    ids = list(old.values_list("pk", flat=True)[:10_000])
    Event.objects.filter(pk__in=ids).delete()
    return len(ids)
