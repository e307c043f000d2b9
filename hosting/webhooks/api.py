"""API v1 of webhooks, mounted by hosting/api/urls.py. Owners of a tenant (`accounts.may`,
Action.MANAGE_WEBHOOKS) manage its subscriptions; staff every one, and site-wide ones
(no tenant). Anyone else is refused (403); another tenant's subscription is not found (404).

- `GET/POST /api/v1/webhooks/`, `GET/DELETE /api/v1/webhooks/{id}/` (the secret only in the
  answer to the POST and to `rotate-secret`)
- `POST /api/v1/webhooks/{id}/enable/`, `POST /api/v1/webhooks/{id}/rotate-secret/`
- `GET /api/v1/webhooks/{id}/deliveries/` (the log, newest first)
- `POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/replay/`
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from hosting.accounts import Action, may, tenants_where
from hosting.api.filters import FilterSet
from hosting.models import Tenant
from hosting.webhooks import services
from hosting.webhooks.models import Attempt, Delivery, EventType, Subscription

REFUSED = {409: OpenApiResponse(description="Refused: the subscription is disabled (re-enable it first).")}


class MayManageWebhooks(permissions.BasePermission):
    message = "Only a tenant's owners (or Haven staff) manage its webhooks."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or tenants_where(user, Action.MANAGE_WEBHOOKS)))


def manageable(user):
    """The subscriptions the user may manage (and so see)."""
    if user.is_staff:
        return Subscription.objects.all()
    return Subscription.objects.filter(tenant_id__in=tenants_where(user, Action.MANAGE_WEBHOOKS))


class SubscriptionFilter(FilterSet):
    state = django_filters.ChoiceFilter(
        choices=[("enabled", "enabled"), ("disabled", "disabled")], method="filter_state", label="Enabled or disabled"
    )

    class Meta:
        model = Subscription
        fields = ["state"]

    def filter_state(self, queryset, name, value):
        return queryset.filter(enabled=value == "enabled")


class SubscriptionSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField[Any](
        slug_field="slug", queryset=Tenant.objects.all(), required=False, allow_null=True,
        help_text="Whose events: one of your tenants (needed if you own several); staff: empty for the whole site.",
    )  # fmt: skip
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), min_length=1)
    url = serializers.URLField(max_length=500, help_text="http(s); it must resolve to a public address.")

    class Meta:
        model = Subscription
        fields = [
            "id", "tenant", "url", "description", "events", "enabled", "disabled_at", "disabled_reason",
            "consecutive_failures", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "enabled", "disabled_at", "disabled_reason", "consecutive_failures", "created_at"]

    def validate_url(self, url: str) -> str:
        try:
            services.check_url(url)
        except services.WebhookRefusal as exc:
            raise ValidationError(str(exc)) from None
        return url

    def validate(self, attrs: dict) -> dict:
        user = self.context["request"].user
        tenant = attrs.get("tenant")
        if user.is_staff:
            return attrs
        if tenant is None:
            mine = tenants_where(user, Action.MANAGE_WEBHOOKS)
            if len(mine) > 1:
                raise ValidationError({"tenant": ["You own several tenants: say which one's events."]})
            attrs["tenant"] = Tenant.objects.get(pk=mine[0])
        elif not may(user, tenant, Action.MANAGE_WEBHOOKS):
            raise ValidationError({"tenant": ["Not a tenant whose webhooks you manage."]})
        return attrs


class SubscriptionWithSecretSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Shown only now: verify each delivery's signature with it."
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["number", "at", "response_status", "duration_ms", "error"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    replay_of = serializers.PrimaryKeyRelatedField[Any](read_only=True, allow_null=True)
    log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "event_id", "event_type", "status", "attempts", "next_attempt_at", "response_status",
            "duration_ms", "error", "delivered_at", "created_at", "replay_of", "log",
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Your webhook subscriptions (staff: all)"),
    retrieve=extend_schema(summary="One subscription"),
    create=extend_schema(
        summary="Subscribe a URL to events; the answer holds the signing secret, shown only once",
        responses={201: SubscriptionWithSecretSerializer},
    ),
    destroy=extend_schema(summary="Delete a subscription and its delivery log"),
)
class SubscriptionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Subscription.objects.select_related("tenant").order_by("-created_at", "-pk")
    serializer_class = SubscriptionSerializer
    permission_classes = [MayManageWebhooks]
    filterset_class = SubscriptionFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return super().get_queryset().filter(pk__in=manageable(self.request.user).values("pk"))

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = services.subscribe(
            tenant=data.get("tenant"), url=data["url"], events=data["events"],
            description=data.get("description", ""), by=request.user,
        )  # fmt: skip
        return Response(SubscriptionWithSecretSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Re-enable a subscription (what waited is tried again now)",
        request=None,
        responses={
            200: SubscriptionSerializer,
            409: OpenApiResponse(description="Its URL no longer resolves to a public address."),
        },
    )
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk=None) -> Response:
        subscription = services.enable(self.get_object())
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        summary="A new signing secret (the old one stops signing at once)",
        request=None,
        responses={200: SubscriptionWithSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk=None) -> Response:
        subscription = services.rotate_secret(self.get_object())
        return Response(SubscriptionWithSecretSerializer(subscription).data)

    @extend_schema(
        summary="The subscription's deliveries, newest first, each with its attempts",
        responses=DeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"], serializer_class=DeliverySerializer, filter_backends=[])
    def deliveries(self, request: Request, pk=None) -> Response:
        subscription = self.get_object()
        rows = (
            Delivery.objects.filter(subscription=subscription)
            .select_related("event")
            .prefetch_related("log")
            .order_by("-created_at", "-pk")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Send a delivery's event again (a new delivery: same event id, fresh signature)",
        request=None,
        responses={202: DeliverySerializer, **REFUSED},
        parameters=[OpenApiParameter("delivery_id", int, OpenApiParameter.PATH, description="A delivery's id.")],
    )
    @action(
        detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>\d+)/replay",
        serializer_class=DeliverySerializer, filter_backends=[],
    )  # fmt: skip
    def replay(self, request: Request, pk=None, delivery_id=None) -> Response:
        subscription = self.get_object()
        delivery = get_object_or_404(Delivery, pk=delivery_id, subscription=subscription)
        with transaction.atomic():
            again = services.replay(delivery)
        return Response(DeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)

    def perform_destroy(self, instance: Subscription) -> None:
        user = self.request.user
        if not user.is_staff and not (instance.tenant_id and may(user, instance.tenant_id, Action.MANAGE_WEBHOOKS)):
            raise PermissionDenied()
        instance.delete()
