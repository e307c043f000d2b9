"""A fleet's figures for a page, for any scope (a tenant's, a site's): now, this month's
uptime and kWh, open alerts, and its hashrate over 24 h and 30 days drawn as SVG. The
portal's dashboard and the staff's site and tenant pages show the same thing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone

from hosting.staff import svg
from hosting.telemetry import reports

HASH_COLOUR, POWER_COLOUR, TEMP_COLOUR = "#2171b5", "#d4a72c", "#cf222e"
STEP = {"5m": dt.timedelta(minutes=5), "1h": dt.timedelta(hours=1), "1d": dt.timedelta(days=1)}


def series(points: Sequence[reports.Point], attr: str) -> list[tuple[dt.datetime, float | None]]:
    return [(p.at, getattr(p, attr)) for p in points]


def fleet_figures(scope: reports.Scope, now: dt.datetime | None = None) -> dict:
    """`fleet_now`, `uptime` (this month), `open_alerts` and `charts` (day, month) of a scope."""
    now = now or timezone.now()
    day, month = reports.fleet_series_24h(scope, now), reports.fleet_series_30d(scope, now)
    charts = {
        "day": svg.time_chart(series(day, "hashrate_ths"), start=now - dt.timedelta(hours=24), end=now,
                              step=STEP["5m"], unit="TH/s", label="Fleet hashrate, last 24 h", colour=HASH_COLOUR,
                              width=1100, height=220),
        "month": svg.time_chart(series(month, "hashrate_ths"), start=now - dt.timedelta(days=30), end=now,
                                step=STEP["1h"], unit="TH/s", label="Fleet hashrate, last 30 days (hourly)",
                                colour=HASH_COLOUR, width=1100, height=220),
    }  # fmt: skip
    return {
        "fleet_now": reports.fleet_now(scope),
        "uptime": reports.month_uptime(scope, now=now),
        "charts": charts,
        "open_alerts": reports.open_alerts_count(scope),
    }
