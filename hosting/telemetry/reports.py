"""The reads of telemetry: what the pages, the API and /metrics show. Plain functions over
querysets, each a fixed number of queries whatever the fleet's size; the few rules they
apply (uptime shares, a circuit's flags) are pure functions below the reads.

"Now" is the latest finished poll of each site (`PollRun`), so a poll still being written
never shows as a dip; a machine's own latest window is found through the (machine, start)
index, looking back no further than `LOOKBACK`.

Uptime never counts an unknown window (reachable NULL: no poll happened) as down: hashing
and reachable are shares of the *known* windows, unknown a share of all of them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, F, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate, TruncDay
from django.utils import timezone

from capacity import ledger
from capacity.models import Circuit, PowerFeed, Rack, Site
from capacity.power import CONTINUOUS_LOAD_FRACTION
from hosting.models import Contract, Machine
from hosting.telemetry.models import (
    Alert,
    CircuitWindow,
    ContractDay,
    MachineHour,
    PollRun,
    TelemetryPolicy,
    Window,
)

LOOKBACK = dt.timedelta(days=1)  # a machine's latest window is searched this far back
LAST_SEEN_LOOKBACK = dt.timedelta(days=30)
CIRCUIT_LATEST_LOOKBACK = dt.timedelta(hours=1)
RESOLUTIONS = {"5m": dt.timedelta(minutes=5), "1h": dt.timedelta(hours=1), "1d": dt.timedelta(days=1)}
NEAR_FRACTION = 0.9  # "nears" a limit: at 90 % of it


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    """[first day, first day of the next month)."""
    first = month.replace(day=1)
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, nxt


# --------------------------------------------------------------------------------------
# Scopes: whose windows
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose telemetry: some tenants' contracts, a site, one contract, or everything (all None)."""

    tenant_ids: tuple[int, ...] | None = None
    site_id: int | None = None
    contract_id: int | None = None

    @classmethod
    def tenant(cls, tenant_id: int) -> Scope:
        return cls(tenant_ids=(tenant_id,))

    def q(self, prefix: str = "") -> Q:
        q = Q()
        if self.tenant_ids is not None:
            tenants = Contract.objects.filter(tenant_id__in=self.tenant_ids).values("pk")
            q &= Q(**{f"{prefix}contract_id__in": tenants})
        if self.site_id is not None:
            q &= Q(**{f"{prefix}site_id": self.site_id})
        if self.contract_id is not None:
            q &= Q(**{f"{prefix}contract_id": self.contract_id})
        return q


# --------------------------------------------------------------------------------------
# Now: the latest finished poll of each site
# --------------------------------------------------------------------------------------


def latest_poll_starts(site_ids: Iterable[int] | None = None) -> dict[int, dt.datetime]:
    """site id → the window start of its latest finished poll (one query)."""
    rows = PollRun.objects.filter(finished_at__isnull=False)
    if site_ids is not None:
        rows = rows.filter(site_id__in=list(site_ids))
    found = rows.order_by().values("site_id").annotate(start=Max("window_start")).values_list("site_id", "start")
    return dict(found)


def _at_latest(starts: dict[int, dt.datetime]) -> Q:
    """Windows of each site at its latest poll; nothing when no site was polled."""
    q = Q(site_id__in=[])
    for site_id, start in starts.items():
        q |= Q(site_id=site_id, start=start)
    return q


@dataclass(frozen=True)
class Now:
    """A fleet's state at each site's latest finished poll."""

    machines: int = 0
    reachable: int = 0
    hashing: int = 0
    hashrate_ths: float = 0.0
    power_w: float = 0.0
    as_of: dt.datetime | None = None

    @property
    def power_kw(self) -> float:
        return self.power_w / 1000


def _now_row(row: Mapping[str, Any]) -> Now:
    return Now(
        machines=row["machines"] or 0,
        reachable=row["reachable"] or 0,
        hashing=row["hashing"] or 0,
        hashrate_ths=row["hashrate_ths"] or 0.0,
        power_w=row["power_w"] or 0.0,
        as_of=row.get("as_of"),
    )


NOW_AGGREGATES = {
    "machines": Count("machine_id"),
    "reachable": Count("machine_id", filter=Q(reachable=True)),
    "hashing": Count("machine_id", filter=Q(hashing=True)),
    "hashrate_ths": Sum("hashrate_ths"),
    "power_w": Sum("power_w"),
    "as_of": Max("start"),
}


def fleet_now(scope: Scope) -> Now:
    """Machines, hashrate and watts at the latest poll of each site of the scope (two queries)."""
    starts = latest_poll_starts([scope.site_id] if scope.site_id is not None else None)
    row = Window.objects.filter(_at_latest(starts), scope.q()).aggregate(**NOW_AGGREGATES)
    return _now_row(row)


def now_by_site(site_ids: Iterable[int] | None = None) -> dict[int, Now]:
    """site id → its Now (two queries for all sites)."""
    starts = latest_poll_starts(site_ids)
    rows = Window.objects.filter(_at_latest(starts)).order_by().values("site_id").annotate(**NOW_AGGREGATES)
    return {row["site_id"]: _now_row(row) for row in rows}


def now_by_tenant() -> dict[int, Now]:
    """tenant id → its Now across its sites (two queries)."""
    starts = latest_poll_starts()
    rows = (
        Window.objects.filter(_at_latest(starts))
        .order_by()
        .values(tenant_id=F("contract__tenant_id"))
        .annotate(**NOW_AGGREGATES)
    )
    return {row["tenant_id"]: _now_row(row) for row in rows}


# --------------------------------------------------------------------------------------
# Series: 24 h from windows, 30 days from hourly rollups
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One step of a series: from `at` for one resolution step."""

    at: dt.datetime
    hashrate_ths: float | None = None
    power_w: float | None = None
    chip_temp_c: float | None = None
    windows: int = 0
    windows_unknown: int = 0
    windows_reachable: int = 0
    windows_hashing: int = 0
    energy_wh: float | None = None


def fleet_series_24h(scope: Scope, now: dt.datetime | None = None) -> list[Point]:
    """The scope's summed hashrate and watts per 5-minute window over the last 24 h (one query)."""
    since = _now(now) - dt.timedelta(hours=24)
    rows = list(
        Window.objects.filter(scope.q(), start__gte=since)
        .order_by()
        .values("start")
        .annotate(
            hashrate=Sum("hashrate_ths"),
            power=Sum("power_w"),
            n=Count("machine_id"),
            unknown=Count("machine_id", filter=Q(reachable__isnull=True)),
        )
        .order_by("start")
    )
    return [Point(r["start"], r["hashrate"], r["power"], windows=r["n"], windows_unknown=r["unknown"]) for r in rows]


def fleet_series_30d(scope: Scope, now: dt.datetime | None = None) -> list[Point]:
    """The scope's summed hourly average hashrate and watts over the last 30 days (one query)."""
    since = _now(now) - dt.timedelta(days=30)
    rows = (
        MachineHour.objects.filter(scope.q(), hour__gte=since)
        .order_by()
        .values("hour")
        .annotate(hashrate=Sum("hashrate_ths_avg"), power=Sum("power_w_avg"), energy=Sum("energy_wh"))
        .order_by("hour")
    )
    return [Point(r["hour"], r["hashrate"], r["power"], energy_wh=r["energy"]) for r in rows]


# --------------------------------------------------------------------------------------
# Uptime and energy this month, from the daily rollups (and today's hours)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Uptime:
    """Windows counted over a span: hashing and reachable out of the known ones."""

    windows: int = 0
    unknown: int = 0
    reachable: int = 0
    hashing: int = 0
    energy_wh: float = 0.0

    @property
    def known(self) -> int:
        return self.windows - self.unknown

    @property
    def hashing_pct(self) -> float | None:
        return 100 * self.hashing / self.known if self.known else None

    @property
    def reachable_pct(self) -> float | None:
        return 100 * self.reachable / self.known if self.known else None

    @property
    def unknown_pct(self) -> float | None:
        return 100 * self.unknown / self.windows if self.windows else None

    @property
    def kwh(self) -> float:
        return self.energy_wh / 1000

    def __add__(self, other: Uptime) -> Uptime:
        return Uptime(
            self.windows + other.windows,
            self.unknown + other.unknown,
            self.reachable + other.reachable,
            self.hashing + other.hashing,
            self.energy_wh + other.energy_wh,
        )


@dataclass(frozen=True)
class MonthUptime:
    month: dt.date
    total: Uptime
    days: dict[dt.date, Uptime] = field(default_factory=dict)


def _uptime_by_day(rows: QuerySet) -> dict[dt.date, Uptime]:
    """Rows of ContractDay or MachineHour with a `day` (values("day")) → that day's Uptime."""
    sums = rows.values("day").annotate(
        w=Sum("windows"), u=Sum("windows_unknown"), r=Sum("windows_reachable"), h=Sum("windows_hashing"),
        e=Sum("energy_wh"),
    )  # fmt: skip
    return {r["day"]: Uptime(r["w"] or 0, r["u"] or 0, r["r"] or 0, r["h"] or 0, r["e"] or 0.0) for r in sums}


def month_uptime(scope: Scope, month: dt.date | None = None, now: dt.datetime | None = None) -> MonthUptime:
    """A month's uptime and kWh for a contract, a tenant or a site: the days rolled up in
    ContractDay, then the machines' hours after the last rolled day (two queries)."""
    now = _now(now)
    first, after = month_bounds(month or now.date())
    contracts = _contracts(scope)
    days: dict[dt.date, Uptime] = {}
    rows = ContractDay.objects.filter(contract__in=contracts, day__gte=first, day__lt=after).order_by()
    days.update(_uptime_by_day(rows))
    rolled_until = max(days) + dt.timedelta(days=1) if days else first
    if rolled_until < after:
        hours = (
            MachineHour.objects.filter(scope.q(), hour__gte=day_start(rolled_until), hour__lt=day_start(after))
            .order_by()
            .annotate(day=TruncDate("hour", tzinfo=dt.UTC))
        )
        days.update(_uptime_by_day(hours))
    for day, tail in _windows_not_rolled(scope, first, after).items():
        days[day] = days.get(day, Uptime()) + tail
    total = sum(days.values(), Uptime())
    return MonthUptime(first, total, dict(sorted(days.items())))


def _windows_not_rolled(scope: Scope, first: dt.date, after: dt.date) -> dict[dt.date, Uptime]:
    """The month's raw windows after the last machine-hour rolled up (the hour under way and
    any the roll-up has not reached), by day: so "this month" includes the last minutes.
    Energy is each window's watts over its site's interval (unreachable at 0 W, unknown
    left out), the rollups' rule. Three queries."""
    rolled = MachineHour.objects.filter(scope.q(), hour__gte=day_start(first), hour__lt=day_start(after))
    last_hour = rolled.aggregate(last=Max("hour"))["last"]
    since = last_hour + dt.timedelta(hours=1) if last_hour else day_start(first)
    rows = (
        Window.objects.filter(scope.q(), start__gte=since, start__lt=day_start(after))
        .order_by()
        .annotate(day=TruncDate("start", tzinfo=dt.UTC))
        .values("day", "site_id")
        .annotate(
            w=Count("pk"), u=Count("pk", filter=Q(reachable__isnull=True)), r=Count("pk", filter=Q(reachable=True)),
            h=Count("pk", filter=Q(hashing=True)), watts=Sum("power_w", filter=Q(reachable__isnull=False)),
        )
    )  # fmt: skip
    interval_s = dict(
        TelemetryPolicy.objects.filter(site_id__in={r["site_id"] for r in rows}).values_list(
            "site_id", "poll_interval_s"
        )
    )
    tails: dict[dt.date, Uptime] = {}
    for r in rows:
        energy_wh = (r["watts"] or 0.0) * interval_s.get(r["site_id"], 300) / 3600
        tails[r["day"]] = tails.get(r["day"], Uptime()) + Uptime(r["w"], r["u"], r["r"], r["h"], energy_wh)
    return tails


def _contracts(scope: Scope) -> QuerySet:
    contracts = Contract.objects.all()
    if scope.tenant_ids is not None:
        contracts = contracts.filter(tenant_id__in=scope.tenant_ids)
    if scope.site_id is not None:
        contracts = contracts.filter(site_id=scope.site_id)
    if scope.contract_id is not None:
        contracts = contracts.filter(pk=scope.contract_id)
    return contracts.values("pk")


# --------------------------------------------------------------------------------------
# One machine's series at 5m / 1h / 1d
# --------------------------------------------------------------------------------------


DAY_AGGREGATES = {
    "windows": Sum("windows"),
    "windows_unknown": Sum("windows_unknown"),
    "windows_reachable": Sum("windows_reachable"),
    "windows_hashing": Sum("windows_hashing"),
    "energy_wh": Sum("energy_wh"),
    "chip_temp_max_c": Max("chip_temp_max_c"),
    "hashrate_ths": Avg("hashrate_ths_avg"),
    "power_w": Avg("power_w_avg"),
}


def machine_series(machine_id: int, start: dt.datetime, end: dt.datetime, resolution: str) -> QuerySet | list[dict]:
    """A machine's points in [start, end) as dicts, a queryset where it can be (the API pages
    it): 5m from its windows, 1h from its hours, 1d its hours by UTC day (a list: ≤ 3,660)."""
    if resolution == "5m":
        return (
            Window.objects.filter(machine_id=machine_id, start__gte=start, start__lt=end)
            .order_by("start")
            .values(
                "start", "reachable", "hashing", "hashrate_ths", "hashrate_pct", "power_w", "power_source",
                "chip_temp_max_c", "board_temp_max_c", "inlet_temp_c", "fans_ok", "boards_seen", "chips_seen",
            )
        )  # fmt: skip
    hours = MachineHour.objects.filter(machine_id=machine_id, hour__gte=start, hour__lt=end).order_by()
    if resolution == "1h":
        return hours.order_by("hour").values(
            "windows", "windows_unknown", "windows_reachable", "windows_hashing", "energy_wh", "chip_temp_max_c",
            start=F("hour"), hashrate_ths=F("hashrate_ths_avg"), power_w=F("power_w_avg"),
        )  # fmt: skip
    if resolution == "1d":  # named apart from the model's fields, which an annotation may not shadow
        days = (
            hours.annotate(day=TruncDay("hour", tzinfo=dt.UTC))
            .values("day")
            .annotate(**{f"day_{name}": aggregate for name, aggregate in DAY_AGGREGATES.items()})
            .order_by("day")
        )
        rows: list[dict[str, Any]] = [dict(d) for d in days]
        return [{"start": d["day"], **{name: d[f"day_{name}"] for name in DAY_AGGREGATES}} for d in rows]
    raise ValueError(f"unknown resolution {resolution!r}: one of {', '.join(RESOLUTIONS)}")


def machine_points(machine_id: int, start: dt.datetime, end: dt.datetime, resolution: str) -> list[Point]:
    """The same series as Points, for charts."""
    points = []
    for r in machine_series(machine_id, start, end, resolution):
        points.append(
            Point(
                r["start"],
                r.get("hashrate_ths"),
                r.get("power_w"),
                r.get("chip_temp_max_c"),
                windows=r.get("windows", 1),
                windows_unknown=r.get("windows_unknown", 1 if r.get("reachable", True) is None else 0),
            )
        )
    return points


# --------------------------------------------------------------------------------------
# Machines with their latest window (lists, racks, floor map)
# --------------------------------------------------------------------------------------

LATEST_FIELDS = {
    "latest_at": "start",
    "latest_reachable": "reachable",
    "latest_hashrate_ths": "hashrate_ths",
    "latest_hashrate_pct": "hashrate_pct",
    "latest_power_w": "power_w",
    "latest_chip_temp_c": "chip_temp_max_c",
}


def with_latest_window(machines: QuerySet, now: dt.datetime | None = None) -> QuerySet:
    """Machines annotated with their latest window's figures (`latest_*`) and `last_seen_at`
    (the latest window it answered), each a seek on the (machine, start) index; sortable."""
    since = _now(now) - LOOKBACK
    latest = Window.objects.filter(machine_id=OuterRef("pk"), start__gte=since).order_by("-start")
    seen = Window.objects.filter(
        machine_id=OuterRef("pk"), start__gte=_now(now) - LAST_SEEN_LOOKBACK, reachable=True
    ).order_by("-start")
    annotations = {name: Subquery(latest.values(column)[:1]) for name, column in LATEST_FIELDS.items()}
    return machines.annotate(**annotations, last_seen_at=Subquery(seen.values("start")[:1]))


@dataclass(frozen=True)
class RackNow:
    """A rack at its site's latest poll, with its occupancy and booked watts."""

    rack_id: int
    name: str
    row: str
    slots_total: int = 0
    slots_used: int = 0
    booked_w: int = 0
    machines: int = 0
    power_w: float = 0.0
    hashrate_pct: float | None = None
    chip_temp_c: float | None = None

    @property
    def utilisation(self) -> float:
        return self.slots_used / self.slots_total if self.slots_total else 0.0


def racks_now(site: Site) -> list[RackNow]:
    """Every rack of a site with measured watts, mean hashrate % of nominal and hottest chip
    at the site's latest poll, beside its occupancy and booked watts (three queries)."""
    starts = latest_poll_starts([site.pk])
    figures: dict[int, dict[str, Any]] = {
        r["rack"]: dict(r)
        for r in Window.objects.filter(_at_latest(starts))
        .order_by()
        .values(rack=F("machine__slot__rack_id"))
        .annotate(n=Count("machine_id"), w=Sum("power_w"), pct=Avg("hashrate_pct"), temp=Max("chip_temp_max_c"))
    }
    racks = Rack.objects.filter(site=site).with_occupancy().annotate(booked_w=Sum("slots__allocated_w"))
    out = []
    for rack in racks.order_by("row", "name", "pk"):
        f = figures.get(rack.pk, {})
        out.append(
            RackNow(rack.pk, rack.name, rack.row, rack.slots_total, rack.slots_used, rack.booked_w or 0,
                    f.get("n", 0), f.get("w") or 0.0, f.get("pct"), f.get("temp"))
        )  # fmt: skip
    return out


def latest_rack_windows(rack_id: int, site_id: int) -> dict[int, dict]:
    """machine id → its window at its site's latest poll, for one rack (two queries)."""
    starts = latest_poll_starts([site_id])
    rows = Window.objects.filter(_at_latest(starts), machine__slot__rack_id=rack_id).values(
        "machine_id", "start", "reachable", "hashrate_ths", "hashrate_pct", "power_w", "chip_temp_max_c"
    )
    return {r["machine_id"]: dict(r) for r in rows}


# --------------------------------------------------------------------------------------
# Measured power against the ledger
# --------------------------------------------------------------------------------------


def breaker_w(usable_w: int) -> float:
    """The breaker's full rating in watts: usable is already 80 % of it."""
    return usable_w / float(CONTINUOUS_LOAD_FRACTION)


@dataclass(frozen=True)
class CircuitPower:
    """A circuit's measured draw beside what the ledger booked on it (nameplate W)."""

    circuit_id: int
    name: str
    feed_id: int
    site_id: int
    booked_w: int
    usable_w: int
    measured_w: float | None = None
    peak_w: float | None = None
    alert_pct: int = 80

    @property
    def breaker_w(self) -> float:
        return breaker_w(self.usable_w)

    @property
    def breaker_pct(self) -> float | None:
        return None if self.measured_w is None else 100 * self.measured_w / self.breaker_w

    @property
    def over_booked(self) -> bool:
        return self.measured_w is not None and self.measured_w > self.booked_w

    @property
    def near_limit(self) -> bool:
        """Measured at 90 % or more of the site's breaker threshold (80 % of the breaker by default)."""
        pct = self.breaker_pct
        return pct is not None and pct >= NEAR_FRACTION * self.alert_pct

    @property
    def flagged(self) -> bool:
        return self.over_booked or self.near_limit


@dataclass(frozen=True)
class FeedPower:
    feed_id: int
    name: str
    site_id: int
    rating_kva: int
    booked_w: int
    measured_w: float | None
    peak_w: float | None = None  # today's highest metered sum over one interval


@dataclass(frozen=True)
class SitePower:
    """A site's measured facility draw (machines' latest watts × PUE) against its energized budget."""

    site_id: int
    name: str
    slug: str
    pue: Decimal
    budget_kw: Decimal
    booked_w: int
    it_measured_w: float
    circuits_measured_w: float | None
    alert_pct: int = 90
    circuits_peak_w: float | None = None  # today's highest metered sum over one interval

    @property
    def facility_kw(self) -> float:
        return self.it_measured_w / 1000 * float(self.pue)

    @property
    def budget_pct(self) -> float | None:
        return 100 * self.facility_kw / float(self.budget_kw) if self.budget_kw else None

    @property
    def near_budget(self) -> bool:
        pct = self.budget_pct
        return pct is not None and pct >= self.alert_pct


@dataclass(frozen=True)
class PowerView:
    sites: list[SitePower]
    feeds: list[FeedPower]
    circuits: list[CircuitPower]

    @property
    def feeds_in_use(self) -> list[FeedPower]:
        """Feeds with something booked or metered: the ones worth a row."""
        return [f for f in self.feeds if f.booked_w or f.measured_w is not None]

    @property
    def idle_feeds(self) -> int:
        return len(self.feeds) - len(self.feeds_in_use)

    @property
    def flagged_circuits(self) -> list[CircuitPower]:
        return [c for c in self.circuits if c.flagged]

    @property
    def flagged_sites(self) -> list[SitePower]:
        return [s for s in self.sites if s.near_budget]


def circuits_measured(
    site_ids: Sequence[int], now: dt.datetime | None = None
) -> dict[int, tuple[float | None, float | None]]:
    """circuit id → (latest measured W, today's peak W) from its circuit windows (two queries)."""
    now = _now(now)
    today = day_start(now.date())
    since = min(today, now - CIRCUIT_LATEST_LOOKBACK)
    rows = (
        CircuitWindow.objects.filter(site_id__in=site_ids, start__gte=since)
        .order_by()
        .values("circuit_id")
        .annotate(peak=Max("measured_w", filter=Q(start__gte=today)), last=Max("start"))
    )
    peaks = {r["circuit_id"]: (r["last"], r["peak"]) for r in rows}
    lasts = {last for last, _ in peaks.values()}
    latest = {}
    if lasts:
        for cid, start, w in CircuitWindow.objects.filter(site_id__in=site_ids, start__in=lasts).values_list(
            "circuit_id", "start", "measured_w"
        ):
            if peaks.get(cid, (None,))[0] == start:
                latest[cid] = w
    return {cid: (latest.get(cid), peak) for cid, (_, peak) in peaks.items()}


def peaks_today(site_ids: Sequence[int], now: dt.datetime | None = None) -> tuple[dict[int, float], dict[int, float]]:
    """(feed id → today's peak W, site id → today's peak W): the highest sum of the metered
    circuits over one interval, not the sum of each circuit's own peak (one query)."""
    today = day_start(_now(now).date())
    rows = (
        CircuitWindow.objects.filter(site_id__in=site_ids, start__gte=today, measured_w__isnull=False)
        .order_by()
        .values_list("circuit__feed_id", "site_id", "start")
        .annotate(w=Sum("measured_w"))
    )
    feeds: dict[int, float] = {}
    by_site_start: dict[tuple[int, dt.datetime], float] = defaultdict(float)
    for feed_id, site_id, start, w in rows:
        feeds[feed_id] = max(feeds.get(feed_id, 0.0), w)
        by_site_start[site_id, start] += w
    sites: dict[int, float] = {}
    for (site_id, _), w in by_site_start.items():
        sites[site_id] = max(sites.get(site_id, 0.0), w)
    return feeds, sites


def power_view(sites: Sequence[Site] | None = None, now: dt.datetime | None = None) -> PowerView:
    """Per circuit, feed and site: measured beside booked and usable (a fixed number of queries)."""
    now = _now(now)
    sites = list(sites) if sites is not None else list(Site.objects.order_by("name"))
    ids = [s.pk for s in sites]
    policies = dict(TelemetryPolicy.objects.filter(site_id__in=ids).values_list("site_id", "circuit_alert_pct"))
    facility_pct = dict(TelemetryPolicy.objects.filter(site_id__in=ids).values_list("site_id", "facility_alert_pct"))
    measured = circuits_measured(ids, now)
    circuits = []
    rows = Circuit.objects.filter(feed__site_id__in=ids).with_load().select_related("feed__site")
    for c in rows.order_by("feed", "name"):
        latest, peak = measured.get(c.pk, (None, None))
        circuits.append(
            CircuitPower(c.pk, str(c), c.feed_id, c.feed.site_id, c.load_w, c.usable_w, latest, peak,
                         policies.get(c.feed.site_id, 80))
        )  # fmt: skip
    by_feed: dict[int, list[CircuitPower]] = defaultdict(list)
    for c in circuits:
        by_feed[c.feed_id].append(c)
    feed_peaks, site_peaks = peaks_today(ids, now)
    feeds = [
        FeedPower(f.pk, str(f), f.site_id, f.rating_kva, sum(c.booked_w for c in by_feed[f.pk]),
                  _sum_known(c.measured_w for c in by_feed[f.pk]), feed_peaks.get(f.pk))
        for f in PowerFeed.objects.filter(site_id__in=ids).select_related("site").order_by("site", "name")
    ]  # fmt: skip
    books = ledger.load_books(sites, now)
    live = now_by_site(ids)
    out_sites = []
    for s in sites:
        site_circuits = [c for c in circuits if c.site_id == s.pk]
        out_sites.append(
            SitePower(s.pk, s.name, s.slug, s.pue, books[s.pk].budget_kw(s.today(now)),
                      sum(c.booked_w for c in site_circuits), live.get(s.pk, Now()).power_w,
                      _sum_known(c.measured_w for c in site_circuits), facility_pct.get(s.pk, 90),
                      site_peaks.get(s.pk))
        )  # fmt: skip
    return PowerView(out_sites, feeds, circuits)


def _sum_known(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


# --------------------------------------------------------------------------------------
# Alerts and operations
# --------------------------------------------------------------------------------------


def open_alerts_count(scope: Scope) -> int:
    alerts = Alert.objects.open()
    if scope.tenant_ids is not None:
        alerts = alerts.filter(tenant_id__in=scope.tenant_ids)
    if scope.site_id is not None:
        alerts = alerts.filter(site_id=scope.site_id)
    return alerts.count()


def open_alerts_by_site() -> dict[int, int]:
    rows = Alert.objects.open().order_by().values("site_id").annotate(n=Count("pk")).values_list("site_id", "n")
    return dict(rows)


def last_polls(site_ids: Iterable[int] | None = None) -> dict[int, tuple[dt.datetime | None, int]]:
    """site id → (when its latest finished poll finished, windows it wrote) (two queries)."""
    starts = latest_poll_starts(site_ids)
    q = Q(site_id__in=[])
    for site_id, start in starts.items():
        q |= Q(site_id=site_id, window_start=start)
    rows = PollRun.objects.filter(q).values_list("site_id", "finished_at", "windows_written")
    return {site_id: (finished, written) for site_id, finished, written in rows}


def live_machines_by_site() -> dict[int, int]:
    rows = (
        Machine.objects.watched()
        .order_by()
        .values("slot__rack__site_id")
        .annotate(n=Count("pk"))
        .values_list("slot__rack__site_id", "n")
    )
    return dict(rows)
