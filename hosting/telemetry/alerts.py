"""The alert rules, pure: a site's rules, a machine model's limits and a machine's last
windows (or a circuit's latest window) in; which alert kinds hold now, with what the rule
saw, out. No database: `hosting.telemetry.alerting` loads the rows and writes the alerts.

Each rule answers one of three things for a kind:
- it **holds** (a `Finding`: open the alert, or keep it open),
- it is **clear** (`None`: resolve an open alert),
- or it is **undecided** (the kind is absent from the answer: leave things as they are).

Undecided is what unknown windows give (`reachable` NULL: no poll happened). A host's
monitoring gap must neither open an alert against a tenant's machine nor close one that
nobody has seen fixed. In a streak (offline for N windows, hashrate low for N windows)
unknown windows are skipped: they neither count towards the streak nor break it; and a
streak that runs off the end of the windows given, shorter than N, is undecided too (what
came before is not known here), never clear.

Limits are strict: a reading exactly at its limit is fine; only over it (or, for
hashrate, under it) is an alert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from capacity.power import SQRT3

# Kinds (the values of hosting.telemetry.models.AlertKind, kept here as plain strings so
# the rules need no Django).
OFFLINE = "offline"
LOW_HASHRATE = "low_hashrate"
BOARD_LOST = "board_lost"
CHIP_HOT = "chip_hot"
FANS_STOPPED = "fans_stopped"
INLET_HOT = "inlet_hot"
OVER_DRAW = "over_draw"
CIRCUIT_HOT = "circuit_hot"
MACHINE_KINDS = (OFFLINE, LOW_HASHRATE, BOARD_LOST, CHIP_HOT, FANS_STOPPED, INLET_HOT, OVER_DRAW)

MEASURED_SOURCES = frozenset({"pdu", "miner"})  # nameplate watts are assumed, never measured


@dataclass(frozen=True)
class Rules:
    """A site's alert rules (TelemetryPolicy)."""

    offline_windows: int = 3
    low_hashrate_pct: float = 80
    low_hashrate_windows: int = 3
    inlet_max_c: float = 40
    circuit_alert_pct: float = 80

    @property
    def lookback_windows(self) -> int:
        """How many intervals back a streak is looked for: twice the longest streak, so a
        few unknown windows inside it do not hide it."""
        return 2 * max(self.offline_windows, self.low_hashrate_windows, 1)


@dataclass(frozen=True)
class Limits:
    """A machine model's figures (MachineModel)."""

    nominal_hashrate_ths: float
    nameplate_power_w: int
    power_tolerance_pct: float
    max_chip_temp_c: float
    hashboards: int
    chips_per_board: int
    fans: int

    @property
    def chips_expected(self) -> int:
        return self.hashboards * self.chips_per_board

    @property
    def max_power_w(self) -> float:
        return self.nameplate_power_w * (1 + self.power_tolerance_pct / 100)


class WindowLike(Protocol):
    """What the rules read of a window (hosting.telemetry.models.Window has it all)."""

    @property
    def start(self) -> dt.datetime: ...
    @property
    def reachable(self) -> bool | None: ...
    @property
    def hashrate_ths(self) -> float | None: ...
    @property
    def boards_seen(self) -> int | None: ...
    @property
    def chips_seen(self) -> int | None: ...
    @property
    def chip_temp_max_c(self) -> float | None: ...
    @property
    def inlet_temp_c(self) -> float | None: ...
    @property
    def fans_ok(self) -> bool | None: ...
    @property
    def power_w(self) -> float | None: ...
    @property
    def power_source(self) -> str: ...


@dataclass(frozen=True)
class Finding:
    """A rule that holds: what it saw (JSON-ready values) and a line for people."""

    kind: str
    message: str
    values: dict = field(default_factory=dict)


Decisions = dict[str, Finding | None]
"""kind → Finding (holds) or None (clear); a kind absent is undecided."""


def _iso(at: dt.datetime) -> str:
    return at.isoformat()


def _known_newest_first(windows: Sequence[WindowLike]) -> list[WindowLike]:
    return [w for w in reversed(windows) if w.reachable is not None]


def hashrate_pct(window: WindowLike, limits: Limits) -> float | None:
    """The window's hashrate as a % of the model's nominal."""
    if window.hashrate_ths is None:
        return None
    return window.hashrate_ths / limits.nominal_hashrate_ths * 100


def offline(rules: Rules, windows: Sequence[WindowLike]) -> Decisions:
    """Unreachable in `offline_windows` known windows in a row (unknown ones skipped)."""
    streak: list[WindowLike] = []
    for w in _known_newest_first(windows):
        if w.reachable:
            break
        streak.append(w)
    else:  # ran off the end: no reachable window seen
        if len(streak) < rules.offline_windows:
            return {}
    if len(streak) < rules.offline_windows:
        return {OFFLINE: None}
    since = streak[-1].start
    values = {"windows": len(streak), "limit_windows": rules.offline_windows, "since": _iso(since)}
    message = f"Unreachable for {len(streak)} windows in a row, since {since:%Y-%m-%d %H:%M} UTC"
    return {OFFLINE: Finding(OFFLINE, message, values)}


def low_hashrate(rules: Rules, limits: Limits, windows: Sequence[WindowLike]) -> Decisions:
    """Under `low_hashrate_pct` % of nominal in `low_hashrate_windows` reachable windows in
    a row. Unknown windows are skipped; an unreachable one breaks the streak (the offline
    rule speaks for it), and while the newest known window is unreachable this rule is
    undecided."""
    known = _known_newest_first(windows)
    if not known or not known[0].reachable or hashrate_pct(known[0], limits) is None:
        return {}
    streak: list[tuple[WindowLike, float]] = []
    for w in known:
        pct = hashrate_pct(w, limits)
        if not w.reachable or pct is None or pct >= rules.low_hashrate_pct:
            break
        streak.append((w, pct))
    else:
        if len(streak) < rules.low_hashrate_windows:
            return {}
    if len(streak) < rules.low_hashrate_windows:
        return {LOW_HASHRATE: None}
    newest_pct = streak[0][1]
    since = streak[-1][0].start
    values = {
        "hashrate_ths": streak[0][0].hashrate_ths,
        "hashrate_pct": round(newest_pct, 1),
        "limit_pct": rules.low_hashrate_pct,
        "nominal_ths": limits.nominal_hashrate_ths,
        "windows": len(streak),
        "since": _iso(since),
    }
    message = (
        f"Hashrate {newest_pct:.0f} % of nominal ({streak[0][0].hashrate_ths:.1f} of "
        f"{limits.nominal_hashrate_ths:g} TH/s), under {rules.low_hashrate_pct:g} % for {len(streak)} windows"
    )
    return {LOW_HASHRATE: Finding(LOW_HASHRATE, message, values)}


def board_lost(limits: Limits, window: WindowLike) -> Decisions:
    """Fewer hashboards or chips answering than the model has (a reachable window only)."""
    if not window.reachable or (window.boards_seen is None and window.chips_seen is None):
        return {}
    boards_short = window.boards_seen is not None and window.boards_seen < limits.hashboards
    chips_short = window.chips_seen is not None and window.chips_seen < limits.chips_expected
    if not (boards_short or chips_short):
        return {BOARD_LOST: None}
    values = {
        "boards_seen": window.boards_seen,
        "boards_expected": limits.hashboards,
        "chips_seen": window.chips_seen,
        "chips_expected": limits.chips_expected,
    }
    parts = []
    if boards_short:
        parts.append(f"{window.boards_seen} of {limits.hashboards} boards")
    if chips_short:
        parts.append(f"{window.chips_seen} of {limits.chips_expected} chips")
    return {BOARD_LOST: Finding(BOARD_LOST, "Answering: " + ", ".join(parts), values)}


def chip_hot(limits: Limits, window: WindowLike) -> Decisions:
    """The hottest chip over the model's limit (a reachable window only)."""
    if not window.reachable or window.chip_temp_max_c is None:
        return {}
    if window.chip_temp_max_c <= limits.max_chip_temp_c:
        return {CHIP_HOT: None}
    values = {"chip_temp_max_c": window.chip_temp_max_c, "limit_c": limits.max_chip_temp_c}
    message = f"Chip at {window.chip_temp_max_c:.1f} °C, over the model's {limits.max_chip_temp_c:g} °C"
    return {CHIP_HOT: Finding(CHIP_HOT, message, values)}


def fans_stopped(window: WindowLike) -> Decisions:
    """A fan stopped or too slow, as the window recorded it (a reachable window only)."""
    if not window.reachable or window.fans_ok is None:
        return {}
    if window.fans_ok:
        return {FANS_STOPPED: None}
    return {FANS_STOPPED: Finding(FANS_STOPPED, "A fan has stopped", {"fans_ok": False})}


def inlet_hot(rules: Rules, window: WindowLike) -> Decisions:
    """Inlet air over the site's maximum (whenever it was measured)."""
    if window.reachable is None or window.inlet_temp_c is None:
        return {}
    if window.inlet_temp_c <= rules.inlet_max_c:
        return {INLET_HOT: None}
    values = {"inlet_temp_c": window.inlet_temp_c, "limit_c": rules.inlet_max_c}
    message = f"Inlet air at {window.inlet_temp_c:.1f} °C, over the site's {rules.inlet_max_c:g} °C"
    return {INLET_HOT: Finding(INLET_HOT, message, values)}


def over_draw(limits: Limits, window: WindowLike) -> Decisions:
    """Measured watts (PDU outlet or the miner's own) over nameplate × (1 + tolerance).
    Judged whenever watts were measured: a PDU meters a hung miner too."""
    if window.reachable is None or window.power_w is None or window.power_source not in MEASURED_SOURCES:
        return {}
    if window.power_w <= limits.max_power_w:
        return {OVER_DRAW: None}
    values = {
        "power_w": window.power_w,
        "source": window.power_source,
        "nameplate_w": limits.nameplate_power_w,
        "tolerance_pct": limits.power_tolerance_pct,
        "limit_w": round(limits.max_power_w, 1),
    }
    message = (
        f"Drawing {window.power_w:,.0f} W ({window.power_source}), over nameplate "
        f"{limits.nameplate_power_w:,} W + {limits.power_tolerance_pct:g} %"
    )
    return {OVER_DRAW: Finding(OVER_DRAW, message, values)}


def machine_decisions(
    rules: Rules, limits: Limits, windows: Sequence[WindowLike], at: dt.datetime, *, curtailed: bool = False
) -> Decisions:
    """Every machine rule over a machine's windows up to `at` (oldest first, newest last).

    The instantaneous rules (boards, chips, temperatures, fans, watts) read the window of
    `at` alone; without one (not polled, or unknown) they are undecided.

    A `curtailed` machine was told to stop: not hashing is what it should do, so it is neither
    offline nor low on hashrate (both clear; its windows still record whether it answered),
    and its boards, asleep, say nothing of their health (undecided). Whether it really
    stopped is judged by curtailment, by its outlet's watts; the other rules (chips, fans,
    inlet, over nameplate) hold as for any machine."""
    decisions: Decisions = {}
    if curtailed:
        decisions |= {OFFLINE: None, LOW_HASHRATE: None}
    else:
        decisions |= offline(rules, windows)
        decisions |= low_hashrate(rules, limits, windows)
    current = windows[-1] if windows and windows[-1].start == at else None
    if current is not None:
        if not curtailed:
            decisions |= board_lost(limits, current)
        decisions |= chip_hot(limits, current)
        decisions |= fans_stopped(current)
        decisions |= inlet_hot(rules, current)
        decisions |= over_draw(limits, current)
    return decisions


def circuit_rated_w(voltage_v: int, breaker_amps: int, phases: int, power_factor: Decimal) -> Decimal:
    """A breaker's full rating in watts: V × A × PF (× √3 three-phase, line-to-line volts).
    At 80 % this is `capacity.power.circuit_usable_w`, the continuous-load limit."""
    watts = Decimal(voltage_v) * Decimal(breaker_amps) * Decimal(power_factor)
    return watts * SQRT3 if phases == 3 else watts


@dataclass(frozen=True)
class Breaker:
    """A circuit's rating (capacity.models.Circuit)."""

    voltage_v: int
    breaker_amps: int
    phases: int
    power_factor: Decimal

    @property
    def rated_w(self) -> Decimal:
        return circuit_rated_w(self.voltage_v, self.breaker_amps, self.phases, self.power_factor)


def circuit_hot(rules: Rules, breaker: Breaker, measured_w: float | None) -> Decisions:
    """A circuit's measured watts over `circuit_alert_pct` % of its breaker's rating
    (80 %: the continuous-load limit). No reading (PDU silent, nothing metered): undecided."""
    if measured_w is None:
        return {}
    rated_w = float(breaker.rated_w)
    limit_w = rated_w * rules.circuit_alert_pct / 100
    if measured_w <= limit_w:
        return {CIRCUIT_HOT: None}
    pct = measured_w / rated_w * 100
    values = {
        "measured_w": measured_w,
        "rated_w": round(rated_w, 1),
        "limit_w": round(limit_w, 1),
        "limit_pct": rules.circuit_alert_pct,
        "measured_pct": round(pct, 1),
    }
    message = (
        f"Drawing {measured_w:,.0f} W, {pct:.0f} % of the breaker's {rated_w:,.0f} W "
        f"(alert over {rules.circuit_alert_pct:g} %)"
    )
    return {CIRCUIT_HOT: Finding(CIRCUIT_HOT, message, values)}
