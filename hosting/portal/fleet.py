"""What the portal shows of a tenant's fleet after go-live: the dashboard's figures and
charts, the machines list's telemetry columns, sorting and CSV, a machine's charts.

Reads come from hosting.telemetry.reports (a fixed number of queries each); charts are
drawn on the server by hosting.staff.svg, as the capacity forecast is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import F, QuerySet
from django.utils import timezone

from hosting.staff import svg
from hosting.staff.fleet import HASH_COLOUR, POWER_COLOUR, STEP, TEMP_COLOUR, fleet_figures, series
from hosting.telemetry import reports

MACHINE_SPANS = {"24h": (dt.timedelta(hours=24), "5m"), "7d": (dt.timedelta(days=7), "1h"),
                 "30d": (dt.timedelta(days=30), "1h")}  # fmt: skip

# ?sort= of the machines list → the order (nulls last either way, then serial).
SORTS = {
    "serial": (F("serial").asc(),),
    "hashrate": (F("latest_hashrate_ths").asc(nulls_last=True), F("serial").asc()),
    "-hashrate": (F("latest_hashrate_ths").desc(nulls_last=True), F("serial").asc()),
    "temp": (F("latest_chip_temp_c").asc(nulls_last=True), F("serial").asc()),
    "-temp": (F("latest_chip_temp_c").desc(nulls_last=True), F("serial").asc()),
    "seen": (F("last_seen_at").asc(nulls_first=True), F("serial").asc()),
    "-seen": (F("last_seen_at").desc(nulls_last=True), F("serial").asc()),
    "slot": (F("slot__rack__name").asc(nulls_last=True), F("slot__position").asc(nulls_last=True), F("serial").asc()),
    "status": (F("status").asc(), F("serial").asc()),
}
SORTS |= {
    "-serial": (F("serial").desc(),),
    "-status": (F("status").desc(), F("serial").asc()),
    "-slot": (F("slot__rack__name").desc(nulls_last=True), F("slot__position").desc(nulls_last=True)),
}


def scope_of(user) -> reports.Scope:
    return reports.Scope(tenant_ids=tuple(user.tenants.values_list("pk", flat=True)))


def dashboard(user, now: dt.datetime | None = None) -> dict:
    """The dashboard's fleet figures: now, 24 h and 30 days of hashrate, this month's uptime and kWh."""
    return fleet_figures(scope_of(user), now)


def sorted_machines(machines: QuerySet, sort: str) -> QuerySet:
    """The machines with their latest window, in the asked order (serial when unknown)."""
    return reports.with_latest_window(machines).order_by(*SORTS.get(sort, SORTS["serial"]))


CSV_HEADER = ["serial", "model", "mac", "site", "rack", "slot", "ip", "status", "hashrate_ths", "chip_temp_c",
              "power_w", "last_seen_utc"]  # fmt: skip


def csv_rows(machines: QuerySet) -> Iterator[list]:
    for m in machines.iterator(chunk_size=2000):
        slot = m.slot
        yield [
            m.serial, m.model.name, m.mac, m.contract.site.name, slot.rack.name if slot else "",
            slot.position if slot else "", m.ip or "", m.status, _round(m.latest_hashrate_ths),
            _round(m.latest_chip_temp_c), _round(m.latest_power_w),
            m.last_seen_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if m.last_seen_at else "",
        ]  # fmt: skip


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 2)


def machine_charts(machine, span: str, now: dt.datetime | None = None) -> dict:
    """Hashrate, power and chip temperature of one machine over 24 h (windows) or 7/30 days (hours)."""
    now = now or timezone.now()
    length, resolution = MACHINE_SPANS.get(span, MACHINE_SPANS["24h"])
    start = now - length
    points = reports.machine_points(machine.pk, start, now, resolution)
    model = machine.model

    def chart(attr: str, unit: str, label: str, colour: str, reference: float, reference_label: str):
        return svg.time_chart(series(points, attr), start=start, end=now, step=STEP[resolution], unit=unit,
                              label=label, colour=colour, reference=reference, reference_label=reference_label,
                              width=400, height=200)  # fmt: skip

    return {
        "hashrate": chart("hashrate_ths", "TH/s", "Hashrate", HASH_COLOUR, float(model.nominal_hashrate_ths),
                          "nominal"),
        "power": chart("power_w", "W", "Power", POWER_COLOUR, float(model.nameplate_power_w), "nameplate"),
        "temperature": chart("chip_temp_c", "°C", "Hottest chip", TEMP_COLOUR, float(model.max_chip_temp_c),
                             "model's limit"),
    }  # fmt: skip
