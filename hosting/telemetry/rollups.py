"""The rollup rules, as plain functions (no database): what a machine-hour, a contract-day
and a circuit-day are made of. `services_store` computes the same figures in SQL (INSERT …
SELECT … GROUP BY); the tests hold the two to each other over random windows.

The rules (Foreman's, with unknown kept apart):
- An **unknown** window (reachable NULL: no poll happened) is counted, and excluded from
  every average and from energy: a monitoring gap is never downtime and never 0 W.
- An **unreachable** window is known: hashrate 0 and power 0 W.
- energy_wh = the sum over known windows of their watts × the window's length (power
  averages of 5-minute readings); power_w_avg = the mean watts over known windows.
- A reachable window that reported no watts is left out of the power mean (it still
  counts for energy as nothing: we do not invent a reading).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
UTC = dt.UTC


def window_start(at: dt.datetime, interval_s: int) -> dt.datetime:
    """The start of the poll interval holding `at`: intervals are aligned on the epoch, so
    every process (poller, accounting, tests) agrees on them without asking anyone."""
    epoch_s = int(at.timestamp())
    return dt.datetime.fromtimestamp(epoch_s - epoch_s % interval_s, tz=UTC)


def hour_start(at: dt.datetime) -> dt.datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def due_windows(
    filled_until: dt.datetime, now: dt.datetime, interval_s: int, grace_s: int, limit: int
) -> list[dt.datetime]:
    """The starts of the intervals from `filled_until` that ended more than `grace_s` ago
    (at most `limit` of them): those a poll can no longer be waited for."""
    step = dt.timedelta(seconds=interval_s)
    grace = dt.timedelta(seconds=grace_s)
    starts: list[dt.datetime] = []
    start = filled_until
    while len(starts) < limit and start + step + grace <= now:
        starts.append(start)
        start += step
    return starts


def hours_between(start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    hour = hour_start(start)
    while hour < end:
        yield hour
        hour += HOUR


class WindowLike(Protocol):
    reachable: bool | None
    hashing: bool | None
    hashrate_ths: float | None
    power_w: float | None
    chip_temp_max_c: float | None


@dataclass(frozen=True)
class HourFigures:
    """What a MachineHour holds, from a machine's windows in one hour."""

    windows: int
    windows_unknown: int
    windows_reachable: int
    windows_hashing: int
    hashrate_ths_avg: float | None
    power_w_avg: float | None
    energy_wh: float
    chip_temp_max_c: float | None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def roll_hour(windows: Iterable[WindowLike], interval_s: int) -> HourFigures:
    windows = list(windows)
    known = [w for w in windows if w.reachable is not None]
    hashrates = [(w.hashrate_ths or 0.0) if w.reachable else 0.0 for w in known]
    watts = [w.power_w if w.reachable else 0.0 for w in known]
    measured = [p for p in watts if p is not None]
    temps = [w.chip_temp_max_c for w in windows if w.chip_temp_max_c is not None]
    return HourFigures(
        windows=len(windows),
        windows_unknown=len(windows) - len(known),
        windows_reachable=sum(1 for w in known if w.reachable),
        windows_hashing=sum(1 for w in windows if w.hashing),
        hashrate_ths_avg=_mean(hashrates),
        power_w_avg=_mean(measured),
        energy_wh=sum(measured) * interval_s / 3600,
        chip_temp_max_c=max(temps) if temps else None,
    )


class HourLike(Protocol):
    hour: dt.datetime
    machine_id: int
    windows: int
    windows_unknown: int
    windows_reachable: int
    windows_hashing: int
    hashrate_ths_avg: float | None
    energy_wh: float


@dataclass(frozen=True)
class DayFigures:
    """What a ContractDay holds, from its machines' hours in one UTC day."""

    machines: int
    windows: int
    windows_unknown: int
    windows_reachable: int
    windows_hashing: int
    hashrate_ths_avg: float | None  # the fleet's (summed over machines), averaged over known hours
    energy_wh: float


def roll_day(hours: Iterable[HourLike]) -> DayFigures:
    hours = list(hours)
    known = [h for h in hours if h.hashrate_ths_avg is not None]
    known_hours = {h.hour for h in known}
    return DayFigures(
        machines=len({h.machine_id for h in hours}),
        windows=sum(h.windows for h in hours),
        windows_unknown=sum(h.windows_unknown for h in hours),
        windows_reachable=sum(h.windows_reachable for h in hours),
        windows_hashing=sum(h.windows_hashing for h in hours),
        hashrate_ths_avg=sum(h.hashrate_ths_avg or 0.0 for h in known) / len(known_hours) if known_hours else None,
        energy_wh=sum(h.energy_wh for h in hours),
    )


@dataclass(frozen=True)
class CircuitDayFigures:
    measured_w_peak: float | None
    measured_w_avg: float | None
    energy_wh: float


def roll_circuit_day(measured_w: Iterable[float | None], interval_s: int) -> CircuitDayFigures:
    """A circuit's day from its windows' measured watts (None: the PDU did not answer)."""
    read = [w for w in measured_w if w is not None]
    return CircuitDayFigures(
        measured_w_peak=max(read) if read else None,
        measured_w_avg=_mean(read),
        energy_wh=sum(read) * interval_s / 3600,
    )


@dataclass(frozen=True)
class Uptime:
    """Shares of a period's windows: hashing and reachable over the known ones, unknown over all."""

    hashing_pct: float | None
    reachable_pct: float | None
    unknown_pct: float | None


def uptime(windows: int, unknown: int, reachable: int, hashing: int) -> Uptime:
    known = windows - unknown
    return Uptime(
        hashing_pct=100 * hashing / known if known else None,
        reachable_pct=100 * reachable / known if known else None,
        unknown_pct=100 * unknown / windows if windows else None,
    )
