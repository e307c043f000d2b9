"""When a program says to curtail or resume: pure rules, no database.

Price: curtail only once the price has stayed above the strike for `hold_minutes`, resume
only once it has stayed below for `resume_minutes` (hysteresis: a single interval across the
strike changes nothing, and a price exactly at the strike is neither above nor below it).
A 15-minute price holds over its interval; the latest one holds until `stale_after` has
passed, and after that (no prices arriving) nothing changes either way.

4CP: inside an interval staff marked to avoid, or inside the daily watch window from June
to September in the site's local time → curtail; outside → resume.

Event programs (ERS-10/30, RRS, voluntary): the deadline is the start plus the program's
response time.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

INTERVAL = dt.timedelta(minutes=15)
FOUR_CP_MONTHS = frozenset({6, 7, 8, 9})  # ERCOT's four coincident peaks: June to September
EVENT_KINDS = frozenset({"ers10", "ers30", "rrs", "voluntary"})
# Minutes to respond when the program does not say: ERS-10 and ERS-30 by their names, RRS
# (deployed loads answer within 10 minutes), voluntary and the automatic triggers a settlement interval.
DEFAULT_RESPONSE_MINUTES = {"ers10": 10, "ers30": 30, "rrs": 10, "voluntary": 30, "price": 15, "4cp": 15}


class Decision(enum.StrEnum):
    CURTAIL = "curtail"
    RESUME = "resume"
    HOLD = "hold"  # keep doing what is being done


@dataclass(frozen=True)
class Price:
    interval_start: dt.datetime
    usd_per_mwh: Decimal


@dataclass(frozen=True)
class PriceRules:
    strike_usd_per_mwh: Decimal
    hold_minutes: int
    resume_minutes: int
    interval: dt.timedelta = INTERVAL
    stale_after: dt.timedelta = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    since: dt.datetime | None = None  # when the price went (and stayed) on its side of the strike
    price: Decimal | None = None


def _side(price: Decimal, strike: Decimal) -> int:
    return (price > strike) - (price < strike)  # 1 above, -1 below, 0 at the strike


def price_verdict(rules: PriceRules, prices: Iterable[Price], now: dt.datetime, *, curtailed: bool) -> Verdict:
    """Curtail, resume or hold at `now`, given the prices so far (any order; later ones ignored)."""
    known = sorted((p for p in prices if p.interval_start <= now), key=lambda p: p.interval_start)
    if not known:
        return Verdict(Decision.HOLD, "no price yet")
    latest = known[-1]
    if now - latest.interval_start >= rules.interval + rules.stale_after:
        return Verdict(Decision.HOLD, f"no price since {latest.interval_start:%Y-%m-%d %H:%M} UTC", price=None)
    strike = rules.strike_usd_per_mwh
    side = _side(latest.usd_per_mwh, strike)
    if side == 0:
        return Verdict(Decision.HOLD, "the price is at the strike", price=latest.usd_per_mwh)
    # Walk back over contiguous intervals on the same side: how long it has stayed there.
    since = latest.interval_start
    for earlier in reversed(known[:-1]):
        if since - earlier.interval_start != rules.interval or _side(earlier.usd_per_mwh, strike) != side:
            break
        since = earlier.interval_start
    lasted = now - since
    if side > 0:
        word, wanted, needed = "above", Decision.CURTAIL, rules.hold_minutes
    else:
        word, wanted, needed = "below", Decision.RESUME, rules.resume_minutes
    price = latest.usd_per_mwh
    state = f"{price} $/MWh, {word} the strike {strike} since {since:%Y-%m-%d %H:%M} UTC"
    if (wanted is Decision.CURTAIL) == curtailed:
        return Verdict(Decision.HOLD, f"{state}; already {'curtailed' if curtailed else 'running'}", since, price)
    if lasted < dt.timedelta(minutes=needed):
        left = dt.timedelta(minutes=needed) - lasted
        return Verdict(Decision.HOLD, f"{state}; {int(left.total_seconds() // 60)} min more to {wanted}", since, price)
    return Verdict(wanted, f"{state} (at least {needed} min)", since, price)


def price_schedule(
    rules: PriceRules, prices: Sequence[Price], times: Iterable[dt.datetime], *, curtailed: bool = False
) -> list[tuple[dt.datetime, bool]]:
    """The curtailed/running state after evaluating at each of `times` in turn."""
    states = []
    for now in times:
        decision = price_verdict(rules, prices, now, curtailed=curtailed).decision
        if decision is Decision.CURTAIL:
            curtailed = True
        elif decision is Decision.RESUME:
            curtailed = False
        states.append((now, curtailed))
    return states


@dataclass(frozen=True)
class FourCpRules:
    time_zone: str
    watch_from: dt.time | None
    watch_until: dt.time | None
    avoid: tuple[tuple[dt.datetime, dt.datetime], ...] = ()


def in_watch_window(rules: FourCpRules, now: dt.datetime) -> bool:
    """Inside the daily 4CP watch window, June to September, in the site's local time."""
    if rules.watch_from is None or rules.watch_until is None:
        return False
    local = now.astimezone(zoneinfo.ZoneInfo(rules.time_zone))
    if local.month not in FOUR_CP_MONTHS:
        return False
    at, start, end = local.time().replace(tzinfo=None), rules.watch_from, rules.watch_until
    if start <= end:
        return start <= at < end
    return at >= start or at < end  # a window across midnight


def four_cp_verdict(rules: FourCpRules, now: dt.datetime, *, curtailed: bool) -> Verdict:
    avoided = next(((s, e) for s, e in rules.avoid if s <= now < e), None)
    if avoided is not None:
        reason, inside = f"inside the avoid interval {avoided[0]:%Y-%m-%d %H:%M}–{avoided[1]:%H:%M} UTC", True
    elif in_watch_window(rules, now):
        reason, inside = f"inside the 4CP watch window {rules.watch_from:%H:%M}–{rules.watch_until:%H:%M}", True
    else:
        reason, inside = "outside every avoid interval and the 4CP watch window", False
    if inside and not curtailed:
        return Verdict(Decision.CURTAIL, reason)
    if not inside and curtailed:
        return Verdict(Decision.RESUME, reason)
    return Verdict(Decision.HOLD, reason)


def response_minutes(kind: str, program_minutes: int | None) -> int:
    """Minutes from an event's start to its deadline: the program's, else its kind's."""
    return program_minutes if program_minutes is not None else DEFAULT_RESPONSE_MINUTES[kind]


def deadline(kind: str, starts_at: dt.datetime, program_minutes: int | None) -> dt.datetime:
    return starts_at + dt.timedelta(minutes=response_minutes(kind, program_minutes))
