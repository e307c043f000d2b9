"""API v1 reads of telemetry: a machine's series and a contract's month of uptime.

Mounted by hosting.api.urls. Tenant-scoped through `visible_to` (another tenant's machine
or contract is 404); pagination, throttles and the error shape are the API's globals.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hosting.models import Contract, Machine
from hosting.telemetry import reports

# How far back a series reaches when `from` is not given, and the longest span one request may ask.
DEFAULT_SPAN = {"5m": dt.timedelta(hours=24), "1h": dt.timedelta(days=7), "1d": dt.timedelta(days=30)}
MAX_SPAN = {"5m": dt.timedelta(days=31), "1h": dt.timedelta(days=366), "1d": dt.timedelta(days=3660)}
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _telemetry_query_validate(self: serializers.Serializer, data: dict[str, Any]) -> dict[str, Any]:
    resolution = data.get("resolution") or "5m"
    try:
        end = data.get("to") or timezone.now()
        start = data.get("from") or end - DEFAULT_SPAN[resolution]
    except OverflowError:
        raise serializers.ValidationError({"from": ["Too far in the past."]}) from None
    if start >= end:
        raise serializers.ValidationError({"to": ["Must be after `from`."]})
    if end - start > MAX_SPAN[resolution]:
        days = MAX_SPAN[resolution].days
        raise serializers.ValidationError({"from": [f"At most {days} days at resolution {resolution}."]})
    return {"start": start, "end": end, "resolution": resolution}


# `from` is a Python keyword: the serializer is built with type() so the parameter keeps its name.
TelemetryQuerySerializer: type[serializers.Serializer] = type(
    "TelemetryQuerySerializer",
    (serializers.Serializer,),
    {
        "from": serializers.DateTimeField(
            required=False, help_text="Start (inclusive); default `to` − 24 h (5m), 7 d (1h) or 30 d (1d)."
        ),
        "to": serializers.DateTimeField(required=False, help_text="End (exclusive); default now."),
        "resolution": serializers.ChoiceField(
            choices=list(reports.RESOLUTIONS), default="5m", help_text="5m: windows; 1h: hourly; 1d: daily (UTC)."
        ),
        "validate": _telemetry_query_validate,
        "__module__": __name__,
        "__doc__": "A series' span and resolution; at most 31 days at 5m, 366 at 1h, 3660 at 1d.",
    },
)


class TelemetryPointSerializer(serializers.Serializer):
    """One step of a machine's series; what a resolution does not carry is null."""

    start = serializers.DateTimeField()
    reachable = serializers.BooleanField(allow_null=True, help_text="5m only; null: unknown (no poll happened).")
    hashing = serializers.BooleanField(allow_null=True, help_text="5m only.")
    hashrate_ths = serializers.FloatField(allow_null=True, help_text="At 1h/1d the average, unreachable at 0.")
    hashrate_pct = serializers.FloatField(allow_null=True, help_text="5m only: % of the model's nominal.")
    power_w = serializers.FloatField(allow_null=True, help_text="At 1h/1d the average.")
    power_source = serializers.CharField(allow_null=True, help_text="5m only: pdu, miner or nameplate.")
    chip_temp_max_c = serializers.FloatField(allow_null=True)
    board_temp_max_c = serializers.FloatField(allow_null=True, help_text="5m only.")
    inlet_temp_c = serializers.FloatField(allow_null=True, help_text="5m only.")
    fans_ok = serializers.BooleanField(allow_null=True, help_text="5m only.")
    boards_seen = serializers.IntegerField(allow_null=True, help_text="5m only.")
    chips_seen = serializers.IntegerField(allow_null=True, help_text="5m only.")
    windows = serializers.IntegerField(allow_null=True, help_text="1h/1d: windows in the step.")
    windows_unknown = serializers.IntegerField(allow_null=True)
    windows_reachable = serializers.IntegerField(allow_null=True)
    windows_hashing = serializers.IntegerField(allow_null=True)
    energy_wh = serializers.FloatField(allow_null=True, help_text="1h/1d.")


class MachineTelemetryView(generics.GenericAPIView):
    """A machine's series: 5-minute windows, hourly or daily rollups."""

    queryset = Machine.objects.all()
    serializer_class = TelemetryPointSerializer
    filter_backends: list = []
    lookup_field = "pk"
    lookup_url_kwarg = "id"

    @extend_schema(
        summary="One of your machines' telemetry over a span, at 5m, 1h or 1d",
        parameters=[TelemetryQuerySerializer],
        responses=TelemetryPointSerializer(many=True),
    )
    def get(self, request: Request, id: int) -> Response:
        machine = generics.get_object_or_404(Machine.objects.visible_to(request.user), pk=id)
        query = TelemetryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        page = self.paginate_queryset(reports.machine_series(machine.pk, q["start"], q["end"], q["resolution"]))
        return self.get_paginated_response(TelemetryPointSerializer(page, many=True).data)


class UptimeQuerySerializer(serializers.Serializer):
    month = serializers.RegexField(MONTH, required=False, help_text="YYYY-MM (UTC); default this month.")

    def validate_month(self, value: str) -> dt.date:
        match = MONTH.match(value)
        assert match is not None  # the RegexField checked it
        year, month = int(match[1]), int(match[2])
        if not 2000 <= year <= 9998:
            raise serializers.ValidationError("A year from 2000 to 9998.")
        return dt.date(year, month, 1)


class UptimeFiguresSerializer(serializers.Serializer):
    windows = serializers.IntegerField(help_text="Every 5-minute window of the contract's machines.")
    unknown = serializers.IntegerField(help_text="Windows with no poll (Haven's gap): never counted as down.")
    reachable = serializers.IntegerField()
    hashing = serializers.IntegerField()
    hashing_pct = serializers.FloatField(allow_null=True, help_text="Hashing ÷ known windows × 100.")
    reachable_pct = serializers.FloatField(allow_null=True, help_text="Reachable ÷ known windows × 100.")
    unknown_pct = serializers.FloatField(allow_null=True, help_text="Unknown ÷ all windows × 100.")
    kwh = serializers.FloatField()


class UptimeDaySerializer(UptimeFiguresSerializer):
    day = serializers.DateField()


class ContractUptimeSerializer(UptimeFiguresSerializer):
    contract = serializers.IntegerField()
    month = serializers.CharField(help_text="YYYY-MM")
    days = UptimeDaySerializer(many=True)


def _figures(u: reports.Uptime) -> dict[str, Any]:
    return {
        "windows": u.windows, "unknown": u.unknown, "reachable": u.reachable, "hashing": u.hashing,
        "hashing_pct": u.hashing_pct, "reachable_pct": u.reachable_pct, "unknown_pct": u.unknown_pct, "kwh": u.kwh,
    }  # fmt: skip


class ContractUptimeView(generics.GenericAPIView):
    """A contract's month: hashing, reachable and unknown windows, kWh, per day."""

    queryset = Contract.objects.all()
    serializer_class = ContractUptimeSerializer
    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        summary="One of your contracts' uptime and kWh over a month, per day",
        parameters=[UptimeQuerySerializer],
        responses=ContractUptimeSerializer,
    )
    def get(self, request: Request, id: int) -> Response:
        contract = generics.get_object_or_404(Contract.objects.visible_to(request.user), pk=id)
        query = UptimeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        month = reports.month_uptime(reports.Scope(contract_id=contract.pk), query.validated_data.get("month"))
        days = [{"day": day, **_figures(u)} for day, u in month.days.items()]
        body = {"contract": contract.pk, "month": f"{month.month:%Y-%m}", **_figures(month.total), "days": days}
        return Response(ContractUptimeSerializer(body).data)
