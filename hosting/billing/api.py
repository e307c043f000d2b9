"""API v1 reads of billing: invoices (with their lines, per-machine detail, PDF and CSVs) and a
contract's billing terms. Read-only.

Mounted by hosting.api.urls. Scoped by `Invoice.objects.visible_to` (staff all, tenants
their issued invoices; a draft or another tenant's invoice is 404); pagination, throttles
and the error shape are the API's globals. `?format=pdf|csv` picks a document instead of JSON.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.db.models import QuerySet
from django_filters import rest_framework as drf_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, mixins, renderers, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from hosting.api.filters import FilterSet
from hosting.billing import documents, services
from hosting.billing.models import (
    ContractTerms,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceMachine,
    InvoiceStatus,
    LineKind,
    MachineDay,
)
from hosting.models import Contract

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


# --- documents as renderers (so `?format=` negotiates them) -------------------------------------


class PDFRenderer(renderers.BaseRenderer):
    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data if isinstance(data, bytes) else b""


class CSVRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data if isinstance(data, bytes) else b""


class DocumentFormatsMixin:
    """JSON by default; errors always answer JSON, whatever format was asked."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        accepted = getattr(request, "accepted_renderer", None)
        if isinstance(response, Response) and isinstance(accepted, PDFRenderer | CSVRenderer):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


# --- serializers ---------------------------------------------------------------------------


def _choice(choices: Any, help_text: str) -> serializers.CharField:
    """A read-only choice typed by a pattern, not an enum: `kind` and `status` name other
    components' enums too, and an enum here would collide with them (a schema warning)."""
    pattern = "^(" + "|".join(re.escape(value) for value, _ in choices) + ")$"

    @extend_schema_field({"type": "string", "pattern": pattern, "description": help_text})
    class Choice(serializers.CharField):
        pass

    return Choice(read_only=True, help_text=help_text)


class InvoiceLineSerializer(serializers.ModelSerializer):
    kind = _choice(LineKind.choices, "energy, flat, setup, levy, sla_credit, deposit, deposit_refund, correction")

    class Meta:
        model = InvoiceLine
        fields = ["position", "kind", "description", "quantity", "unit", "unit_price", "amount"]
        read_only_fields = fields


class InvoiceMachineSerializer(serializers.ModelSerializer):
    serial = serializers.CharField(source="machine.serial", read_only=True)
    model = serializers.SlugRelatedField[Any](source="machine_model", slug_field="slug", read_only=True)

    class Meta:
        model = InvoiceMachine
        fields = [
            "machine", "serial", "model", "days_live", "hours_live", "kwh_metered", "kwh_billed", "windows",
            "windows_counted", "windows_up", "windows_unknown", "excluded_curtailed", "excluded_maintenance",
            "excluded_rma", "curtailed_over_rights", "uptime_pct", "setup_billed", "amount",
        ]  # fmt: skip
        read_only_fields = fields


class ExcludedSerializer(serializers.Serializer):
    curtailed = serializers.IntegerField()
    maintenance = serializers.IntegerField()
    rma = serializers.IntegerField()


class InvoiceSummarySerializer(serializers.Serializer):
    """The uptime, SLA and kWh figures behind the lines (empty when nothing was billed)."""

    machines = serializers.IntegerField(required=False)
    kwh_metered = serializers.CharField(required=False, help_text="Decimal as text.")
    uptime_pct = serializers.CharField(required=False, allow_null=True, help_text="Decimal as text; null: no window.")
    windows_counted = serializers.IntegerField(required=False)
    windows_up = serializers.IntegerField(required=False)
    windows_unknown = serializers.IntegerField(required=False, help_text="No poll: counted as up.")
    excluded = ExcludedSerializer(required=False, help_text="Windows left out of the SLA, by reason.")
    curtailed_over_rights = serializers.IntegerField(required=False)
    sla_credit_pct = serializers.CharField(required=False)


class InvoiceSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)
    site = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)
    period = serializers.SerializerMethodField(help_text="YYYY-MM")
    summary = InvoiceSummarySerializer(read_only=True)
    kind = _choice(InvoiceKind.choices, "invoice or credit_note")
    status = _choice(InvoiceStatus.choices, "draft (staff only), issued, paid, overdue or void")
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id", "number", "kind", "status", "tenant", "contract", "site", "corrects", "period", "period_start",
            "period_end", "currency", "hosting_amount", "credit_amount", "total_amount", "issued_at", "due_on",
            "paid_at", "voided_at", "reason", "summary", "lines",
        ]  # fmt: skip
        read_only_fields = fields

    def get_period(self, invoice: Invoice) -> str:
        return f"{invoice.period_start:%Y-%m}"


class InvoiceListSerializer(InvoiceSerializer):
    class Meta(InvoiceSerializer.Meta):
        fields = [f for f in InvoiceSerializer.Meta.fields if f not in ("summary", "lines")]
        read_only_fields = fields


class SlaTierSerializer(serializers.Serializer):
    below_pct = serializers.CharField()
    credit_pct = serializers.CharField()


class ContractTermsSerializer(serializers.ModelSerializer):
    sla_tiers = SlaTierSerializer(many=True, read_only=True, help_text="Below X % uptime, Y % of the hosting fees.")
    curtailable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ContractTerms
        fields = [
            "contract", "billing_mode", "billing_day", "payment_terms_days", "deposit_months",
            "setup_fee_per_machine", "sla_target_pct", "sla_period", "sla_basis", "sla_tiers",
            "maintenance_notice_h", "curtailable", "curtailment_priority", "max_curtailed_hours_month",
            "curtailment_notice_min", "dr_share_pct", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


# --- filters -------------------------------------------------------------------------------


class MonthField(forms.CharField):
    def to_python(self, value: Any) -> dt.date | None:  # type: ignore[override]
        value = super().to_python(value)
        if not value:
            return None
        match = MONTH.match(value)
        if match is None or not 2000 <= int(match[1]) <= 9998:
            raise forms.ValidationError("A month as YYYY-MM (year 2000 to 9998).")
        return dt.date(int(match[1]), int(match[2]), 1)


class MonthFilter(drf_filters.Filter):
    field_class = MonthField


class InvoiceFilter(FilterSet):
    period = MonthFilter(field_name="period_start", help_text="YYYY-MM: the month invoiced.")
    status = drf_filters.ChoiceFilter(choices=InvoiceStatus.choices)

    class Meta:
        model = Invoice
        fields = ["status", "contract", "kind", "period"]


# --- views ---------------------------------------------------------------------------------

PDF_DOC = OpenApiResponse(OpenApiTypes.BINARY, description="The PDF (`?format=pdf`).")
CSV_DOC = OpenApiResponse(OpenApiTypes.STR, description="The CSV (`?format=csv`).")


class MachineDaySerializer(serializers.ModelSerializer):
    class Meta:
        model = MachineDay
        fields = [
            "day", "machine", "window_s", "windows", "windows_curtailed", "windows_rma", "windows_maintenance",
            "windows_unknown", "windows_reachable", "windows_hashing", "energy_wh_pdu", "energy_wh_miner",
            "energy_wh_nameplate",
        ]  # fmt: skip


@extend_schema_view(
    list=extend_schema(summary="Invoices and credit notes: staff all, tenants their issued ones"),
)
class InvoiceViewSet(DocumentFormatsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Invoice.objects.select_related("tenant", "site", "contract").order_by("-period_start", "-pk")
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    ordering_fields = ["period_start", "due_on", "issued_at"]
    search_fields: list[str] = []

    def get_queryset(self) -> QuerySet[Invoice]:
        return super().get_queryset().visible_to(self.request.user)  # type: ignore[attr-defined]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return InvoiceListSerializer if self.action == "list" else super().get_serializer_class()

    def get_renderers(self) -> list[renderers.BaseRenderer]:
        extra: list[renderers.BaseRenderer] = []
        if self.action == "retrieve":
            extra = [PDFRenderer(), CSVRenderer()]
        elif self.action == "machines":
            extra = [CSVRenderer()]
        return [*super().get_renderers(), *extra]

    @extend_schema(
        summary="One invoice with its lines and uptime summary; ?format=pdf or csv (lines) for the documents",
        responses={
            (200, "application/json"): InvoiceSerializer,
            (200, "application/pdf"): PDF_DOC,
            (200, "text/csv"): CSV_DOC,
        },
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        invoice = self.get_object()
        fmt = request.accepted_renderer.format
        if fmt == "pdf":
            return documents.pdf_response(invoice)
        if fmt == "csv":
            return documents.lines_csv(invoice)
        return Response(InvoiceSerializer(invoice, context=self.get_serializer_context()).data)

    @extend_schema(summary="An invoice's lines", responses=InvoiceLineSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=InvoiceLineSerializer)
    def lines(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        page = self.paginate_queryset(invoice.lines.order_by("position"))
        return self.get_paginated_response(InvoiceLineSerializer(page, many=True).data)

    @extend_schema(
        summary="An invoice's per-machine detail (energy, uptime, exclusions); ?format=csv for all of it",
        responses={
            (200, "application/json"): InvoiceMachineSerializer(many=True),
            (200, "text/csv"): CSV_DOC,
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=InvoiceMachineSerializer)
    def machines(self, request: Request, pk: str | None = None) -> Any:
        invoice = self.get_object()
        if request.accepted_renderer.format == "csv":
            return documents.machines_csv(invoice)
        rows = invoice.machines.select_related("machine", "machine_model").order_by("machine__serial", "pk")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(InvoiceMachineSerializer(page, many=True).data)

    @extend_schema(
        summary="The machine-days behind an invoice (each machine's local days: windows by state, energy by source)",
        parameters=[OpenApiParameter("machine", int, description="Only this machine's days.")],
        responses=MachineDaySerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=MachineDaySerializer)
    def days(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        rows = MachineDay.objects.filter(
            contract_id=invoice.contract_id, day__gte=invoice.period_start, day__lt=invoice.period_end,
            machine_id__in=invoice.machines.values("machine_id"),
        ).order_by("machine_id", "day")  # fmt: skip
        machine = request.query_params.get("machine")
        if machine is not None:
            if not machine.isdigit():
                raise ValidationError({"machine": "A machine id (a whole number)."})
            rows = rows.filter(machine_id=int(machine))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(MachineDaySerializer(page, many=True).data)


class ContractTermsView(generics.GenericAPIView):
    """A contract's billing terms, SLA and curtailment rights, read-only."""

    queryset = Contract.objects.all()
    serializer_class = ContractTermsSerializer
    filter_backends: list = []
    pagination_class = None

    @extend_schema(summary="One of your contracts' billing terms, SLA and curtailment rights")
    def get(self, request: Request, id: int) -> Response:
        contract = generics.get_object_or_404(Contract.objects.visible_to(request.user), pk=id)
        return Response(ContractTermsSerializer(services.terms_for(contract)).data)
