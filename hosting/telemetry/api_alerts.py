"""API v1 alerts: `GET /api/v1/alerts/` (tenants their machines', staff all), one alert, and
`POST /api/v1/alerts/{id}/acknowledge/` (staff). Mounted by hosting/api/urls.py."""

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from hosting.api.filters import FilterSet
from hosting.telemetry import alerting
from hosting.telemetry.models import Alert, AlertKind


class AlertSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)
    state = serializers.SerializerMethodField()
    acknowledged_by = serializers.SlugRelatedField[Any](slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "state",
            "site",
            "machine",
            "circuit",
            "opened_at",
            "last_seen_at",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
            "message",
            "values",
        ]
        read_only_fields = fields

    def get_state(self, alert: Alert) -> str:
        return "open" if alert.resolved_at is None else "resolved"


class AlertFilter(FilterSet):
    open = django_filters.ChoiceFilter(
        choices=[("true", "open"), ("false", "resolved")], method="filter_open", label="Open (true) or resolved"
    )
    kind = django_filters.MultipleChoiceFilter(choices=AlertKind.choices)
    site = django_filters.CharFilter(field_name="site__slug")
    machine = django_filters.NumberFilter(field_name="machine_id")

    class Meta:
        model = Alert
        fields = ["open", "kind", "site", "machine"]

    def filter_open(self, queryset, name, value):
        return queryset.open() if value == "true" else queryset.filter(resolved_at__isnull=False)


@extend_schema_view(
    list=extend_schema(summary="Alerts on your machines (staff: every alert, circuits' too), newest first"),
    retrieve=extend_schema(summary="One alert"),
)
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Alert.objects.select_related("site", "acknowledged_by").order_by("-opened_at", "-pk")
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["opened_at", "last_seen_at"]

    def get_queryset(self):
        return super().get_queryset().visible_to_user(self.request.user)

    @extend_schema(summary="Staff: acknowledge an alert (the first acknowledgement stands)", request=None)
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def acknowledge(self, request, pk=None):
        alert = self.get_object()  # another tenant's alert is not found (404), as everywhere
        if not request.user.is_staff:
            raise PermissionDenied("Only Haven staff acknowledge alerts.")
        alerting.acknowledge(alert, request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)
