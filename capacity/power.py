"""The pure power maths of a site: usable watts of a circuit, apparent power on a feed,
budget, commitment and headroom by date, and the compiled timelines that answer "does X kW
fit over a term / from when" from the change points of the step functions, never day by day.

No database and no Django: `capacity.ledger` reads rows into these and books under locks.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import NamedTuple, Protocol

from dateutil.relativedelta import relativedelta

KW_PER_MW = Decimal(1000)
CONTINUOUS_LOAD_FRACTION = Decimal("0.80")  # NEC 210.19/215.2: continuous load ≤ 80 % of the breaker
SQRT3 = Decimal(3).sqrt()
KW_QUANTUM = Decimal("0.001")

Term = relativedelta | dt.timedelta | None
"""How long a booking lasts from its first day; None is open-ended."""


class PhaseLike(Protocol):
    @property
    def energized_on(self) -> dt.date: ...
    @property
    def mw(self) -> Decimal: ...


class BookingLike(Protocol):
    @property
    def starts_on(self) -> dt.date: ...
    @property
    def ends_on(self) -> dt.date | None: ...
    @property
    def it_kw(self) -> Decimal: ...
    @property
    def expires_at(self) -> dt.datetime | None: ...  # a hold's expiry; None for firm bookings


@dataclass(frozen=True)
class Booking:
    """A booking not (yet) in the database: for what-if questions."""

    starts_on: dt.date
    ends_on: dt.date | None
    it_kw: Decimal
    expires_at: dt.datetime | None = None


def circuit_usable_w(voltage_v: int, breaker_amps: int, phases: int, power_factor: Decimal) -> int:
    """Continuous watts a circuit may carry: V × A × PF (× √3 three-phase) × 80 %, floored."""
    watts = Decimal(voltage_v) * Decimal(breaker_amps) * Decimal(power_factor) * CONTINUOUS_LOAD_FRACTION
    if phases == 3:
        watts *= SQRT3
    return int(watts.to_integral_value(rounding=ROUND_FLOOR))


def apparent_va(watts: int | Decimal, power_factor: Decimal) -> Decimal:
    """What real watts cost a transformer, whose rating is apparent power (VA)."""
    return Decimal(watts) / Decimal(power_factor)


def budget_kw(phases: Iterable[PhaseLike], day: dt.date) -> Decimal:
    """Facility kW energized on `day`: every phase energized on or before it."""
    return sum((p.mw * KW_PER_MW for p in phases if p.energized_on <= day), Decimal(0))


def committed_kw(bookings: Iterable[BookingLike], day: dt.date) -> Decimal:
    """IT kW booked on `day` (bookings cover [starts_on, ends_on))."""
    return sum(
        (b.it_kw for b in bookings if b.starts_on <= day and (b.ends_on is None or b.ends_on > day)),
        Decimal(0),
    )


def headroom_kw(budget: Decimal, pue: Decimal, committed: Decimal) -> Decimal:
    """IT kW still free: budget ÷ PUE − committed, floored to the watt."""
    return (budget / pue - committed).quantize(KW_QUANTUM, rounding=ROUND_FLOOR)


def fits(budget: Decimal, pue: Decimal, committed: Decimal, extra_kw: Decimal) -> bool:
    """Whether `extra_kw` more IT load keeps (committed + extra) × PUE within the budget.

    Multiplying instead of dividing keeps the comparison exact in Decimal.
    """
    return (committed + extra_kw) * pue <= budget


def end_of_term(starts_on: dt.date, term: Term) -> dt.date | None:
    return None if term is None else starts_on + term


class Segment(NamedTuple):
    """A stretch of days [starts_on, ends_on) over which budget and commitment are constant."""

    starts_on: dt.date
    ends_on: dt.date | None
    budget_kw: Decimal
    committed_kw: Decimal

    def headroom_kw(self, pue: Decimal) -> Decimal:
        return headroom_kw(self.budget_kw, pue, self.committed_kw)

    def fits(self, pue: Decimal, extra_kw: Decimal) -> bool:
        return fits(self.budget_kw, pue, self.committed_kw, extra_kw)


def timeline(phases: Iterable[PhaseLike], bookings: Iterable[BookingLike], start: dt.date) -> list[Segment]:
    """The step function of budget and commitment from `start` on, split at its change points.

    O((phases + bookings) · log) whatever the span of dates; the last segment is open-ended.
    """
    budget = Decimal(0)
    committed = Decimal(0)
    deltas: dict[dt.date, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for phase in phases:
        kw = phase.mw * KW_PER_MW
        if phase.energized_on <= start:
            budget += kw
        else:
            deltas[phase.energized_on][0] += kw
    for booking in bookings:
        if booking.ends_on is not None and booking.ends_on <= start:
            continue
        if booking.starts_on <= start:
            committed += booking.it_kw
        else:
            deltas[booking.starts_on][1] += booking.it_kw
        if booking.ends_on is not None:
            deltas[booking.ends_on][1] -= booking.it_kw

    segments: list[Segment] = []
    seg_start = start
    for day in sorted(deltas):
        d_budget, d_committed = deltas[day]
        if not d_budget and not d_committed:
            continue
        segments.append(Segment(seg_start, day, budget, committed))
        budget += d_budget
        committed += d_committed
        seg_start = day
    segments.append(Segment(seg_start, None, budget, committed))
    return segments


@dataclass(frozen=True)
class Shortfall:
    short_kw: Decimal  # the most IT kW missing on any day of the term
    short_from: dt.date  # the first day something is missing
    available_kw: Decimal  # the least headroom over the term


class Timeline:
    """A site's step function from a start day, compiled for fast range questions.

    Each segment's facility room (budget − committed × PUE) goes into a sparse table, so
    "does X kW fit over [d, d + term)" is two bisections and an O(1) range minimum, and
    finding the earliest start jumps over blocking segments with a binary search each:
    the cost of a quote does not grow with the number of reservations.
    """

    def __init__(self, segments: list[Segment], pue: Decimal):
        self.segments = segments
        self.pue = pue
        self.start = segments[0].starts_on
        self._starts = [s.starts_on for s in segments]
        room = [s.budget_kw - s.committed_kw * pue for s in segments]
        self._sparse = [room]
        width = 1
        while 2 * width <= len(room):
            prev = self._sparse[-1]
            self._sparse.append([min(prev[i], prev[i + width]) for i in range(len(prev) - width)])
            width *= 2

    def _index(self, day: dt.date) -> int:
        if day < self.start:
            raise ValueError(f"{day} is before this timeline's start {self.start}")
        return bisect_right(self._starts, day) - 1

    def _last_index_before(self, end: dt.date | None) -> int:
        """The last segment that starts before `end` (all of them when open-ended)."""
        return len(self.segments) - 1 if end is None else bisect_left(self._starts, end) - 1

    def _room_min(self, i: int, j: int) -> Decimal:
        level = (j - i + 1).bit_length() - 1
        row = self._sparse[level]
        return min(row[i], row[j - (1 << level) + 1])

    def segment_on(self, day: dt.date) -> Segment:
        return self.segments[self._index(day)]

    def headroom_kw(self, day: dt.date) -> Decimal:
        return self.segment_on(day).headroom_kw(self.pue)

    def fits(self, it_kw: Decimal, starts_on: dt.date, ends_on: dt.date | None) -> bool:
        i, j = self._index(starts_on), self._last_index_before(ends_on)
        return self._room_min(i, j) >= it_kw * self.pue

    def earliest_fit(
        self, it_kw: Decimal, not_before: dt.date, term: Term, until: dt.date | None = None
    ) -> dt.date | None:
        """The first day ≥ `not_before` from which `it_kw` fits for the whole term, or None.

        A start can only become feasible where headroom rises, so when the window from a
        candidate is blocked, the next candidate is the end of the last blocking segment
        in it. `until` bounds the answer (a planning horizon).
        """
        need = it_kw * self.pue
        candidate = not_before
        while until is None or candidate <= until:
            i, j = self._index(candidate), self._last_index_before(end_of_term(candidate, term))
            if self._room_min(i, j) >= need:
                return candidate
            lo, hi = i, j  # binary search for the last blocking segment in [i, j]
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._room_min(mid, j) < need:
                    lo = mid
                else:
                    hi = mid - 1
            blocked_until = self.segments[lo].ends_on
            if blocked_until is None:
                return None
            candidate = blocked_until
        return None

    def shortfall(self, it_kw: Decimal, starts_on: dt.date, ends_on: dt.date | None) -> Shortfall | None:
        """None when `it_kw` more fits on every day of [starts_on, ends_on); else what is missing."""
        if self.fits(it_kw, starts_on, ends_on):
            return None
        window = self.segments[self._index(starts_on) : self._last_index_before(ends_on) + 1]
        short = [s for s in window if not s.fits(self.pue, it_kw)]
        return Shortfall(
            short_kw=max(it_kw - s.headroom_kw(self.pue) for s in short),
            short_from=max(short[0].starts_on, starts_on),
            available_kw=max(Decimal(0), min(s.headroom_kw(self.pue) for s in window)),
        )

    def min_headroom_kw(self, starts_on: dt.date, ends_on: dt.date | None) -> Decimal:
        """The least IT kW free on any day of [starts_on, ends_on)."""
        i, j = self._index(starts_on), self._last_index_before(ends_on)
        return (self._room_min(i, j) / self.pue).quantize(KW_QUANTUM, rounding=ROUND_FLOOR)


@dataclass(frozen=True)
class SiteBook:
    """A site's phases and counting reservations, read once; answers every question in memory."""

    name: str
    pue: Decimal
    phases: Sequence[PhaseLike]
    bookings: Sequence[BookingLike]

    def budget_kw(self, day: dt.date) -> Decimal:
        return budget_kw(self.phases, day)

    def committed_kw(self, day: dt.date) -> Decimal:
        return committed_kw(self.bookings, day)

    def headroom_kw(self, day: dt.date) -> Decimal:
        return headroom_kw(self.budget_kw(day), self.pue, self.committed_kw(day))

    def timeline(self, start: dt.date) -> Timeline:
        return Timeline(timeline(self.phases, self.bookings, start), self.pue)

    def min_headroom_kw(self, starts_on: dt.date, ends_on: dt.date | None) -> Decimal:
        return self.timeline(starts_on).min_headroom_kw(starts_on, ends_on)

    def shortfall(self, it_kw: Decimal, starts_on: dt.date, ends_on: dt.date | None) -> Shortfall | None:
        return self.timeline(starts_on).shortfall(it_kw, starts_on, ends_on)

    def earliest_fit(
        self, it_kw: Decimal, not_before: dt.date, term: Term, until: dt.date | None = None
    ) -> dt.date | None:
        return self.timeline(not_before).earliest_fit(it_kw, not_before, term, until)

    def over_budget(self, from_day: dt.date) -> Shortfall | None:
        """Where committed × PUE exceeds the budget on or after `from_day`, if anywhere."""
        return self.shortfall(Decimal(0), from_day, None)
