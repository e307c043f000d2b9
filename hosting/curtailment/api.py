"""API v1 of curtailment, mounted by hosting/api/urls.py:

- `POST /api/v1/curtailment/events/`: the host's QSE posts an event (ERS-10/30, RRS,
  voluntary) with a staff user's token that holds the permission `curtailment.add_event`;
  the same `external_id` again answers the same event (200, not 201).
- `POST /api/v1/curtailment/events/{id}/end/` (permission `curtailment.change_event`).
- `GET /api/v1/curtailment/events/`: staff every event; a tenant the events that curtailed
  its machines, counting only its machines and showing none of the site-wide figures.
- `GET /api/v1/curtailment/events/{id}/machines/`: the event's machines (a tenant: its own),
  paginated — an event may hold ten thousand.
- `GET /api/v1/curtailment/prices/?site=…` (staff): the site's latest prices against its strike.

Pagination, throttles and the error shape are the API's globals (REST_FRAMEWORK).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from capacity.models import Site
from hosting.api.filters import FilterSet
from hosting.curtailment import programs, triggers
from hosting.curtailment.models import (
    CurtailmentStatus,
    Event,
    EventMachine,
    EventStatus,
    Program,
    ProgramKind,
    SettlementPrice,
)
from hosting.models import Machine

EVENT_KINDS = [(kind.value, kind.label) for kind in ProgramKind if kind.value in triggers.EVENT_KINDS]


class HasStaffPermission(permissions.BasePermission):
    """Staff holding one Django permission (a QSE's service account is such a user)."""

    perm = ""
    message = "Only Haven staff with the permission for curtailment events may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.has_perm(self.perm))


class CanPostEvents(HasStaffPermission):
    perm = "curtailment.add_event"


class CanEndEvents(HasStaffPermission):
    perm = "curtailment.change_event"


class IsStaff(permissions.BasePermission):
    message = "Only Haven staff may see prices."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class CurtailedMachineSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventMachine
        fields = [
            "machine",
            "contract",
            "status",
            "action",
            "expected_shed_w",
            "power_before_w",
            "power_after_w",
            "sent_at",
            "verified_at",
            "resumed_at",
        ]
        read_only_fields = fields


class CurtailmentEventSerializer(serializers.ModelSerializer):
    """An event; to a tenant, only its own machines and no site-wide figures (null)."""

    site = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)
    program = serializers.CharField(source="program.kind", read_only=True, allow_null=True)
    # A plain string: an enum here would collide in the schema with the other `source` fields.
    # A declared field leaves the class body (DRF's metaclass); Field.source stays.
    source = serializers.CharField(read_only=True, help_text="staff, qse, price or 4cp.")  # type: ignore[assignment]
    external_id = serializers.CharField(read_only=True, allow_null=True, help_text="Staff only.")
    planned_mw = serializers.DecimalField(
        max_digits=10, decimal_places=3, read_only=True, allow_null=True, help_text="Staff only."
    )
    shortfall_mw = serializers.DecimalField(
        max_digits=10, decimal_places=3, read_only=True, allow_null=True, help_text="Staff only."
    )
    machine_count = serializers.IntegerField(
        read_only=True, help_text="Machines the event curtailed (a tenant: its own); listed at machines/."
    )

    class Meta:
        model = Event
        fields = [
            "id",
            "site",
            "program",
            "source",
            "external_id",
            "status",
            "target",
            "target_mw",
            "starts_at",
            "ends_at",
            "deadline_at",
            "planned_mw",
            "shortfall_mw",
            "created_at",
            "machine_count",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Event) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not request.user.is_staff:
            data.update(external_id=None, planned_mw=None, shortfall_mw=None)
        return data


class EventPostSerializer(serializers.Serializer):
    """An event a QSE posts. Without `deadline_at`, the deadline is `starts_at` plus the
    program's response time (ERS-10: 10 minutes, ERS-30: 30)."""

    site = serializers.SlugField(max_length=50, help_text="The site's slug.")
    program = serializers.ChoiceField(choices=EVENT_KINDS, help_text="The kind of the site's program.")
    target = serializers.ChoiceField(choices=Event.Target.choices, default=Event.Target.SHED)
    target_mw = serializers.DecimalField(max_digits=10, decimal_places=3, min_value=Decimal(0))
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Empty: open until ended.")
    deadline_at = serializers.DateTimeField(required=False, allow_null=True)
    external_id = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="The QSE's id: posting it again is safe.",
    )

    def validate_site(self, slug: str) -> Site:
        site = Site.objects.filter(slug=slug).first()
        if site is None:
            raise serializers.ValidationError(f"No site {slug!r}.")
        return site


class EventEndSerializer(serializers.Serializer):
    pass


class EventFilter(FilterSet):
    site = django_filters.CharFilter(field_name="site__slug", label="The site's slug")
    status = django_filters.MultipleChoiceFilter(choices=EventStatus.choices)
    source = django_filters.MultipleChoiceFilter(choices=Event.Source.choices)
    external_id = django_filters.CharFilter(label="The QSE's id")
    open = django_filters.ChoiceFilter(
        choices=[("true", "open"), ("false", "ended")], method="filter_open", label="Not ended (true) or ended"
    )

    class Meta:
        model = Event
        fields = ["site", "status", "source", "external_id", "open"]

    def filter_open(self, queryset, name, value):
        is_open = programs.is_open(timezone.now())
        return queryset.filter(is_open) if value == "true" else queryset.exclude(is_open)


def visible_events(user: Any) -> QuerySet[Event]:
    """Staff: every event. A tenant: the events that curtailed its machines, counting only those."""
    events = Event.objects.select_related("site", "program").order_by("-starts_at", "-pk")
    if user.is_staff:
        return events.annotate(machine_count=Count("machines"))
    mine = Machine.objects.visible_to(user).values("pk")
    return events.filter(pk__in=EventMachine.objects.filter(machine__in=mine).values("event_id")).annotate(
        machine_count=Count("machines", filter=Q(machines__machine__in=mine))
    )


def visible_machines(user: Any, event: Event) -> QuerySet[EventMachine]:
    rows = EventMachine.objects.filter(event=event).order_by("rank", "pk")
    return rows if user.is_staff else rows.filter(machine__in=Machine.objects.visible_to(user).values("pk"))


@extend_schema_view(
    list=extend_schema(summary="Curtailment events (tenants: those that curtailed your machines), newest first"),
    retrieve=extend_schema(summary="One curtailment event"),
)
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Event.objects.all()
    serializer_class = CurtailmentEventSerializer
    filterset_class = EventFilter
    ordering_fields = ["starts_at", "created_at"]

    def get_permissions(self):
        if self.action == "create":
            return [CanPostEvents()]
        if self.action == "end":
            return [CanEndEvents()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self):
        return visible_events(self.request.user)

    @extend_schema(
        summary="QSE: post a curtailment event (staff token with curtailment.add_event)",
        description="Idempotent by `external_id` per site: the same id again answers the event already "
        "recorded with 200 instead of 201. Refused (400) for an unknown site, a site without an active program of "
        "that kind, a negative target, an end before the start, or a deadline already past.",
        request=EventPostSerializer,
        responses={
            201: CurtailmentEventSerializer,
            200: OpenApiResponse(CurtailmentEventSerializer, description="Already posted with this external_id."),
        },
    )
    def create(self, request: Request) -> Response:
        form = EventPostSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            event, created = programs.post_event(
                site=data["site"],
                kind=data["program"],
                target=data["target"],
                target_mw=data["target_mw"],
                starts_at=data["starts_at"],
                ends_at=data.get("ends_at"),
                deadline_at=data.get("deadline_at"),
                external_id=data["external_id"],
                created_by=request.user,
            )
        except programs.EventRefused as exc:
            raise ValidationError(exc.errors) from None
        body = self.get_serializer(self.get_queryset().get(pk=event.pk)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="The machines a curtailment event chose (tenants: their own), in shedding order",
        parameters=[OpenApiParameter("status", str, enum=list(CurtailmentStatus.values), description="Only these.")],
        responses=CurtailedMachineSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=CurtailedMachineSerializer)
    def machines(self, request: Request, pk: str | None = None) -> Response:
        rows = visible_machines(request.user, self.get_object())
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in CurtailmentStatus.values:
                raise ValidationError({"status": [f"Not one of {', '.join(CurtailmentStatus.values)}."]})
            rows = rows.filter(status=wanted)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(CurtailedMachineSerializer(page, many=True).data)

    @extend_schema(
        summary="QSE: end a curtailment event now (staff token with curtailment.change_event)",
        description="Idempotent: ending an event already ended answers it unchanged.",
        request=None,
        responses={200: CurtailmentEventSerializer},
    )
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str | None = None) -> Response:
        event, _ = programs.end_event_now(self.get_object(), note=f"ended through the API by {request.user}")
        return Response(self.get_serializer(self.get_queryset().get(pk=event.pk)).data)


class PricesQuerySerializer(serializers.Serializer):
    site = serializers.SlugField(max_length=50, help_text="The site's slug.")

    def validate_site(self, slug: str) -> Site:
        site = Site.objects.select_related("grid").filter(slug=slug).first()
        if site is None:
            raise serializers.ValidationError(f"No site {slug!r}.")
        return site


class SitePriceSerializer(serializers.ModelSerializer):
    """A 15-minute real-time price beside the strike of the site's active price program."""

    strike_usd_per_mwh = serializers.SerializerMethodField()
    above_strike = serializers.SerializerMethodField()

    class Meta:
        model = SettlementPrice
        fields = [
            "settlement_point",
            "interval_start",
            "interval_minutes",
            "price_usd_per_mwh",
            "strike_usd_per_mwh",
            "above_strike",
            "source",
        ]
        read_only_fields = fields

    def get_strike_usd_per_mwh(self, price: SettlementPrice) -> str | None:
        strike = self.context.get("strike")
        return None if strike is None else str(strike)  # a decimal string, as the price

    def get_above_strike(self, price: SettlementPrice) -> bool | None:
        strike = self.context.get("strike")
        return None if strike is None else price.price_usd_per_mwh > strike


@extend_schema_view(
    get=extend_schema(
        summary="Staff: a site's latest real-time prices against its strike, newest first",
        parameters=[PricesQuerySerializer],
    )
)
class SitePricesView(generics.ListAPIView):
    serializer_class = SitePriceSerializer
    permission_classes = [IsStaff]
    queryset = SettlementPrice.objects.none()

    def _site(self) -> Site:
        if not hasattr(self, "_site_cache"):
            query = PricesQuerySerializer(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            self._site_cache: Site = query.validated_data["site"]
        return self._site_cache

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SettlementPrice.objects.none()
        grid = getattr(self._site(), "grid", None)
        if grid is None or not grid.settlement_point:
            return SettlementPrice.objects.none()
        return SettlementPrice.objects.filter(settlement_point=grid.settlement_point).order_by("-interval_start")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and self.request is not None:
            program = (
                Program.objects.filter(site=self._site(), kind=ProgramKind.PRICE, active=True)
                .exclude(strike_usd_per_mwh=None)
                .order_by("pk")
                .first()
            )
            context["strike"] = program.strike_usd_per_mwh if program is not None else None
        return context
