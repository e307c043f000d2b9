"""The numbers behind the staff dashboards: plain functions of plain values, no database.

Views read rows (in a fixed number of queries) and hand them in; these functions answer
with dataclasses the templates and `hosting.staff.svg` draw. The capacity rules are the
ledger's (`SiteBook`, `Timeline`); nothing here re-derives a budget or a headroom.

Units: the forecast is in facility kW (IT kW × the site's PUE) — what the grid
connection sees — except `headroom_it_kw`, which is IT kW as the ledger counts it.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from dateutil.relativedelta import relativedelta

from capacity import power
from hosting.quotes import matching

ZERO = Decimal(0)
W_PER_KW = Decimal(1000)
FORECAST_MONTHS = 24


def mw(kw: Decimal) -> Decimal:
    return kw / power.KW_PER_MW


# --------------------------------------------------------------------------------------
# Today, per site (the home page)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteToday:
    """A site's headline figures on its local date."""

    name: str
    slug: str
    day: dt.date
    energized_mw: Decimal
    committed_it_kw: Decimal
    free_it_kw: Decimal


def site_today(name: str, slug: str, book: power.SiteBook, day: dt.date) -> SiteToday:
    return SiteToday(
        name=name,
        slug=slug,
        day=day,
        energized_mw=mw(book.budget_kw(day)),
        committed_it_kw=book.committed_kw(day),
        free_it_kw=book.headroom_kw(day),
    )


# --------------------------------------------------------------------------------------
# Capacity forecast
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitlistedQuote:
    """What a waitlisted quote asks for and where it may go (its filters)."""

    it_kw: Decimal
    start_on: dt.date
    term_months: int
    region: str = ""
    country: str = ""
    site_id: int | None = None

    @property
    def ends_on(self) -> dt.date:
        return self.start_on + relativedelta(months=self.term_months)

    def sites(self, sites: Sequence) -> list:
        """The sites its filters allow (the quote's own rule, `hosting.quotes.matching`)."""
        named = next((s for s in sites if s.pk == self.site_id), None) if self.site_id else None
        if self.site_id and named is None:
            return []
        return matching(list(sites), region=self.region, country=self.country, site=named)

    def demand(self, pue: Decimal) -> power.Booking:
        """Its term as facility kW at a site of this PUE."""
        return power.Booking(self.start_on, self.ends_on, self.it_kw * pue)


def waitlist_at_site(quotes: Iterable[WaitlistedQuote], site, sites: Sequence) -> list[power.Booking]:
    """The facility demand of the waitlisted quotes that could go to `site`, at its PUE."""
    return [q.demand(site.pue) for q in quotes if any(s.pk == site.pk for s in q.sites(sites))]


def waitlist_everywhere(quotes: Iterable[WaitlistedQuote], sites: Sequence) -> list[power.Booking]:
    """Every waitlisted quote once, as facility kW at the highest PUE among the sites it could
    go to (the most it could draw; any site's when its filters match none)."""
    fallback = max((s.pue for s in sites), default=Decimal(1))
    return [q.demand(max((s.pue for s in q.sites(sites)), default=fallback)) for q in quotes]


@dataclass(frozen=True)
class ForecastPoint:
    """The values from `day` until the next point (steps: nothing changes in between)."""

    day: dt.date
    budget_kw: Decimal  # energized, facility
    committed_kw: Decimal  # reserved IT kW × PUE
    live_kw: Decimal  # nameplate W of live machines × PUE
    waitlisted_kw: Decimal  # waitlisted IT kW × PUE, drawn stacked on committed
    headroom_it_kw: Decimal  # the ledger's free IT kW

    @property
    def budget_mw(self) -> Decimal:
        return mw(self.budget_kw)

    @property
    def committed_mw(self) -> Decimal:
        return mw(self.committed_kw)

    @property
    def live_mw(self) -> Decimal:
        return mw(self.live_kw)

    @property
    def waitlisted_mw(self) -> Decimal:
        return mw(self.waitlisted_kw)

    @property
    def demand_mw(self) -> Decimal:
        """Committed with the waitlist on top."""
        return mw(self.committed_kw + self.waitlisted_kw)


@dataclass(frozen=True)
class Forecast:
    """A step function over [start, end): one point per change and per month boundary."""

    name: str
    start: dt.date
    end: dt.date
    points: tuple[ForecastPoint, ...]

    @cached_property
    def _days(self) -> list[dt.date]:
        return [p.day for p in self.points]

    def at(self, day: dt.date) -> ForecastPoint:
        if not self.start <= day < self.end:
            raise ValueError(f"{day} is outside this forecast's [{self.start}, {self.end})")
        return self.points[bisect_right(self._days, day) - 1]

    @property
    def changes(self) -> list[ForecastPoint]:
        """The first point and every one where budget, commitment or waitlist moves."""
        out: list[ForecastPoint] = []
        for point in self.points:
            prev = out[-1] if out else None
            if prev is None or (prev.budget_kw, prev.committed_kw, prev.waitlisted_kw, prev.live_kw) != (
                point.budget_kw,
                point.committed_kw,
                point.waitlisted_kw,
                point.live_kw,
            ):
                out.append(point)
        return out

    @property
    def peak_kw(self) -> Decimal:
        return max((max(p.budget_kw, p.committed_kw + p.waitlisted_kw, p.live_kw) for p in self.points), default=ZERO)


def horizon(start: dt.date, months: int = FORECAST_MONTHS) -> dt.date:
    return start + relativedelta(months=months)


def month_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    """The first day of every month in (start, end)."""
    day = start.replace(day=1) + relativedelta(months=1)
    out = []
    while day < end:
        out.append(day)
        day += relativedelta(months=1)
    return out


def _booking_days(bookings: Iterable[power.BookingLike]) -> set[dt.date]:
    days = set()
    for b in bookings:
        days.add(b.starts_on)
        if b.ends_on is not None:
            days.add(b.ends_on)
    return days


def _sum_on(bookings: Sequence[power.BookingLike], start: dt.date) -> Callable[[dt.date], Decimal]:
    """day → the sum of the bookings covering it, from the ledger's own step function."""
    steps = power.Timeline(power.timeline((), bookings, start), Decimal(1))
    return lambda day: steps.segment_on(day).committed_kw


def _days(start: dt.date, end: dt.date, *more: Iterable[dt.date]) -> list[dt.date]:
    """start, every month boundary and every given change day inside (start, end), sorted."""
    days = {start, *month_starts(start, end)}
    for group in more:
        days.update(d for d in group if start < d < end)
    return sorted(days)


def forecast(
    book: power.SiteBook,
    start: dt.date,
    *,
    months: int = FORECAST_MONTHS,
    live_w: int = 0,
    waitlisted: Sequence[power.BookingLike] = (),
) -> Forecast:
    """A site's forecast from `start`: the ledger's timeline (budget, committed IT kW) read
    at its change points and month boundaries, with live draw and waitlisted demand.

    `waitlisted` is in facility kW already (see `waitlist_at_site`); `live_w` in IT watts.
    """
    end = horizon(start, months)
    timeline = book.timeline(start)
    live_kw = Decimal(live_w) / W_PER_KW * book.pue
    days = _days(start, end, (s.starts_on for s in timeline.segments), _booking_days(waitlisted))
    waitlisted_on = _sum_on(waitlisted, start)
    points = []
    for day in days:
        segment = timeline.segment_on(day)
        points.append(
            ForecastPoint(
                day=day,
                budget_kw=segment.budget_kw,
                committed_kw=segment.committed_kw * book.pue,
                live_kw=live_kw,
                waitlisted_kw=waitlisted_on(day),
                headroom_it_kw=segment.headroom_kw(book.pue),
            )
        )
    return Forecast(book.name, start, end, tuple(points))


def combine(
    name: str, forecasts: Sequence[Forecast], *, start: dt.date, months: int = FORECAST_MONTHS, waitlisted=None
) -> Forecast:
    """Several sites' forecasts summed on the same days (each read as a step function).

    The waitlist is each site's own unless `waitlisted` (facility kW) replaces it: a quote
    that could go to several sites is one demand, not one per site.
    """
    end = horizon(start, months)
    if any(f.start != start or f.end != end for f in forecasts):
        raise ValueError("Forecasts to combine must cover the same dates.")
    extra = _booking_days(waitlisted) if waitlisted is not None else ()
    days = _days(start, end, (p.day for f in forecasts for p in f.points), extra)
    waitlisted_on = _sum_on(waitlisted, start) if waitlisted is not None else None
    points = []
    for day in days:
        at = [f.at(day) for f in forecasts]
        points.append(
            ForecastPoint(
                day=day,
                budget_kw=sum((p.budget_kw for p in at), ZERO),
                committed_kw=sum((p.committed_kw for p in at), ZERO),
                live_kw=sum((p.live_kw for p in at), ZERO),
                waitlisted_kw=(
                    sum((p.waitlisted_kw for p in at), ZERO) if waitlisted_on is None else waitlisted_on(day)
                ),
                headroom_it_kw=sum((p.headroom_it_kw for p in at), ZERO),
            )
        )
    return Forecast(name, start, end, tuple(points))


# --------------------------------------------------------------------------------------
# Rack elevation
# --------------------------------------------------------------------------------------


def max_chip_temp_c(boards: Iterable[Mapping] | None) -> float | None:
    """The hottest chip reading among a sample's boards (None when none reported one)."""
    readings = [b.get("chip_temp_c") for b in boards or () if isinstance(b, Mapping)]
    temps = [float(t) for t in readings if isinstance(t, int | float) and not isinstance(t, bool)]
    return max(temps, default=None)


@dataclass(frozen=True)
class SlotCell:
    """One slot of a rack as the elevation draws it."""

    position: int
    machine_id: int | None = None
    serial: str = ""
    model: str = ""
    status: str = ""  # the machine's status; "" for an empty slot
    temp_c: float | None = None  # max chip °C: its latest poll's, else its latest self-test's
    href: str = ""
    power_w: float | None = None  # measured at its latest poll
    hashrate_pct: float | None = None  # % of nominal at its latest poll
    nameplate_w: int = 0
    polled: bool = False  # the figures come from a poll (else from commissioning, or nothing)

    @property
    def empty(self) -> bool:
        return self.machine_id is None

    @property
    def power_pct(self) -> float | None:
        return None if self.power_w is None or not self.nameplate_w else 100 * self.power_w / self.nameplate_w

    @property
    def tooltip(self) -> str:
        if self.empty:
            return f"#{self.position}: empty"
        temp = "not measured" if self.temp_c is None else f"{self.temp_c:.1f} °C max chip"
        parts = [f"#{self.position}: {self.serial}", self.model, self.status, temp]
        if self.polled:
            if self.hashrate_pct is not None:
                parts.append(f"{self.hashrate_pct:.0f} % of nominal hashrate")
            if self.power_w is not None:
                parts.append(f"{self.power_w:,.0f} W measured")
            parts.append("latest poll")
        elif self.temp_c is not None:
            parts.append("latest self-test")
        return " · ".join(parts)


def slot_cells(
    slots: Iterable,
    temps: Mapping[int, float | None],
    href: Callable[[int], str],
    latest: Mapping[int, Mapping] | None = None,
) -> list[SlotCell]:
    """Cells in position order from slots with `machine` (and its `model`) selected;
    `temps` (self-tests) by machine id; `latest` (windows at the latest poll) by machine id,
    which win where a machine has one; `href(machine_id)` where a cell links."""
    latest = latest or {}
    cells = []
    for slot in sorted(slots, key=lambda s: s.position):
        machine = getattr(slot, "machine", None)
        if machine is None:
            cells.append(SlotCell(slot.position))
            continue
        window = latest.get(machine.pk)
        temp = (
            window["chip_temp_max_c"] if window and window.get("chip_temp_max_c") is not None else temps.get(machine.pk)
        )
        cells.append(
            SlotCell(
                position=slot.position,
                machine_id=machine.pk,
                serial=machine.serial,
                model=str(machine.model),
                status=machine.status,
                temp_c=temp,
                href=href(machine.pk),
                power_w=window.get("power_w") if window else None,
                hashrate_pct=window.get("hashrate_pct") if window else None,
                nameplate_w=getattr(machine.model, "nameplate_power_w", 0),
                polled=window is not None,
            )
        )
    return cells


@dataclass(frozen=True)
class CircuitLoad:
    """Watts allocated on a circuit against its usable watts (already the 80 % limit)."""

    name: str
    load_w: int
    usable_w: int

    WARN_AT = Decimal("0.75")
    HIGH_AT = Decimal("0.90")

    @property
    def fraction(self) -> Decimal:
        return Decimal(self.load_w) / Decimal(self.usable_w) if self.usable_w else Decimal(1)

    @property
    def level(self) -> str:
        """ok below 75 % of usable, warn below 90 %, high from 90 % (100 % = the limit)."""
        if self.fraction >= self.HIGH_AT:
            return "high"
        if self.fraction >= self.WARN_AT:
            return "warn"
        return "ok"


# --------------------------------------------------------------------------------------
# Queues
# --------------------------------------------------------------------------------------


def age(since: dt.datetime | None, now: dt.datetime) -> dt.timedelta | None:
    return None if since is None else max(now - since, dt.timedelta(0))


def fmt_age(delta: dt.timedelta | None) -> str:
    """3 d 4 h, 5 h 12 min, 7 min — the two biggest units that matter."""
    if delta is None:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"
