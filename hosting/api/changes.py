"""API v1 change log: `GET /api/v1/changes/` (staff only): every recorded create, update and
delete with before/after, who and the request or task id (changelog.present). Mounted by
hosting/api/urls.py."""

from typing import Any

import django_filters
from auditlog.models import LogEntry
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import permissions, serializers, viewsets

from changelog import present
from hosting.api.filters import FilterSet


class FieldChangeSerializer(serializers.Serializer):
    before = serializers.JSONField(allow_null=True, help_text="The value before (null: none, e.g. on create).")
    after = serializers.JSONField(allow_null=True, help_text="The value after (null: none, e.g. on delete).")


class ChangeSerializer(serializers.ModelSerializer):
    at = serializers.DateTimeField(source="timestamp", read_only=True)
    action = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField(help_text="`app.model`, e.g. `capacity.site`, `hosting.machine`.")
    object_id = serializers.CharField(source="object_pk", read_only=True)
    object = serializers.CharField(source="object_repr", read_only=True)
    changes = serializers.SerializerMethodField()
    actor = serializers.SlugRelatedField[Any](
        slug_field="username", read_only=True, allow_null=True, help_text="The user (a session's or a token's)."
    )
    by = serializers.SerializerMethodField(help_text="`token <prefix>`, `task <name>`, or empty for a session.")
    via = serializers.SerializerMethodField(help_text="The bulk write that recorded it, or empty.")
    request_id = serializers.CharField(source="cid", read_only=True, allow_null=True)

    class Meta:
        model = LogEntry
        fields = [
            "id",
            "at",
            "action",
            "model",
            "object_id",
            "object",
            "changes",
            "actor",
            "by",
            "via",
            "request_id",
            "remote_addr",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=list(present.ACTION_OF)))
    def get_action(self, entry: LogEntry) -> str:
        return present.action_name(entry)

    def get_model(self, entry: LogEntry) -> str:
        return f"{entry.content_type.app_label}.{entry.content_type.model}"

    @extend_schema_field(serializers.DictField(child=FieldChangeSerializer()))
    def get_changes(self, entry: LogEntry) -> dict[str, dict[str, Any]]:
        return {c.field: {"before": c.before, "after": c.after} for c in present.field_changes(entry)}

    def get_by(self, entry: LogEntry) -> str:
        return present.by(entry)

    def get_via(self, entry: LogEntry) -> str:
        return present.via(entry)


class ChangeFilter(FilterSet):
    # The recorded models, read once the apps (and auditlog's registry) are ready: urls import this.
    model = django_filters.ChoiceFilter(choices=present.model_choices(), method="filter_model", label="app.model")
    object_id = django_filters.CharFilter(method="filter_all", label="The object's id", max_length=255)
    actor = django_filters.CharFilter(
        method="filter_all", label="A username, a token prefix or a task name", max_length=150
    )
    request_id = django_filters.CharFilter(method="filter_all", label="The request or task id", max_length=255)
    action = django_filters.ChoiceFilter(choices=[(a, a) for a in present.ACTION_OF], method="filter_all")
    since = django_filters.IsoDateTimeFilter(method="filter_all", label="At or after (ISO 8601)")
    until = django_filters.IsoDateTimeFilter(method="filter_all", label="Before (ISO 8601)")

    class Meta:
        model = LogEntry
        fields = ["model", "object_id", "actor", "request_id", "action", "since", "until"]

    def filter_all(self, queryset, name, value):
        return present.filtered(queryset, **{name: value})

    def filter_model(self, queryset, name, value: str):  # the hint types the parameter in the schema
        return present.filtered(queryset, model=value)


@extend_schema_view(
    list=extend_schema(summary="Staff: the change log — who changed what, when, before and after, newest first"),
    retrieve=extend_schema(summary="Staff: one change"),
)
class ChangeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = present.entries()
    serializer_class = ChangeSerializer
    filterset_class = ChangeFilter
    permission_classes = [permissions.IsAdminUser]
    ordering_fields = ["timestamp"]
    search_fields = ["object_repr"]

    def get_queryset(self):
        return present.entries()
