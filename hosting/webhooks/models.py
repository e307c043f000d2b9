"""Webhooks as rows: who subscribed which URL to which events, every event that happened,
and one delivery per subscription and event with the log of its attempts."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from hosting.models import Tenant
from hosting.webhooks.sealing import SealedCharField


class EventType(models.TextChoices):
    MACHINE_STATUS_CHANGED = "machine.status_changed", "Machine status changed"
    BATCH_FINISHED = "commissioning.batch_finished", "Commissioning batch finished"
    ALERT_OPENED = "alert.opened", "Alert opened"
    ALERT_RESOLVED = "alert.resolved", "Alert resolved"
    INVOICE_ISSUED = "invoice.issued", "Invoice issued"
    CURTAILMENT_NOTICE = "curtailment.notice", "Curtailment notice"
    CURTAILMENT_STARTED = "curtailment.started", "Curtailment started"
    CURTAILMENT_ENDED = "curtailment.ended", "Curtailment ended"
    HOLD_EXPIRING = "hold.expiring", "Capacity hold about to expire"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class SubscriptionQuerySet(models.QuerySet):
    def visible_to(self, user) -> SubscriptionQuerySet:
        """Staff: every subscription; a member: its tenants' (what it may manage is `accounts.may`'s)."""
        if user.is_staff:
            return self
        if not user.is_authenticated:
            return self.none()
        return self.filter(tenant__memberships__user=user)


class Subscription(models.Model):
    """A URL that receives, signed, the events it chose: a tenant's (its own objects only) or
    staff's (the whole site's, `tenant` empty)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="webhooks")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types it receives (EventType values).")
    secret = SealedCharField(
        max_length=300, default=new_secret, help_text="Signs each delivery (HMAC-SHA256); sealed at rest."
    )
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0, help_text="Deliveries given up on in a row.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(enabled=True) | Q(disabled_at__isnull=False), name="webhooks_subscription_disabled_at"
            )
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.tenant or 'staff'})"

    @property
    def secret_hint(self) -> str:
        return self.secret[:10] + "…"

    def wants(self, event: Event) -> bool:
        """Its type, and — for a tenant's — an event of that tenant."""
        if event.type not in self.events:
            return False
        return self.tenant_id is None or self.tenant_id in event.audience


class Event(models.Model):
    """Something that happened that subscribers may be told of; the delivered JSON's `id`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=40, choices=EventType.choices)
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Whose object; empty: the site's.",
    )
    audience = models.JSONField(
        default=list, blank=True, help_text="Ids of the tenants whose subscriptions receive it."
    )
    key = models.CharField(
        max_length=120,
        null=True,
        blank=True,
        unique=True,
        help_text="Announced once: one event per key (holds, batches).",
    )
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="webhooks_event_created")]

    def __str__(self) -> str:
        return f"{self.type} {str(self.id)[:8]}"


class DeliveryQuerySet(models.QuerySet):
    def visible_to(self, user) -> DeliveryQuerySet:
        return self.filter(subscription__in=Subscription.objects.visible_to(user))

    def due(self, now) -> DeliveryQuerySet:
        return self.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).filter(
            Q(locked_until__isnull=True) | Q(locked_until__lt=now)
        )


class Delivery(models.Model):
    """One event sent to one subscription: tried until it is answered 2xx or given up on."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (given up)"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    replay_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True, help_text="An attempt is under way until then.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Of the latest attempt.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Of the latest attempt.")
    error = models.CharField(max_length=300, blank=True, help_text="Of the latest attempt.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhooks_delivery_due"),
            models.Index(fields=["subscription", "-created_at"], name="webhooks_delivery_log"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False), name="webhooks_delivery_pending_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription_id} ({self.status})"


class Attempt(models.Model):
    """One POST of a delivery: when, what the receiver answered, how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=300, blank=True)
    response_excerpt = models.CharField(max_length=200, blank=True, help_text="The answer's first characters only.")

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_attempt_once")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.response_status or self.error}"
