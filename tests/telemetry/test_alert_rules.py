"""The alert rules, pure: every rule at, over and under its limit, and what unknown windows do
(they neither count nor break a streak, and never open or resolve anything)."""

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest

from capacity.power import circuit_usable_w
from hosting.telemetry import alerts
from hosting.telemetry.alerts import Breaker, Limits, Rules

T0 = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)

# An Antminer S19-like model: 95 TH/s, 3,250 W ± 10 %, chips up to 95 °C, 3 × 76 chips, 4 fans.
S19 = Limits(
    nominal_hashrate_ths=95.0,
    nameplate_power_w=3250,
    power_tolerance_pct=10.0,
    max_chip_temp_c=95.0,
    hashboards=3,
    chips_per_board=76,
    fans=4,
)
RULES = Rules(offline_windows=3, low_hashrate_pct=80, low_hashrate_windows=3, inlet_max_c=40, circuit_alert_pct=80)


@dataclass(frozen=True)
class W:
    """A window as the rules read it: a healthy one unless told otherwise."""

    start: dt.datetime = T0
    reachable: bool | None = True
    hashrate_ths: float | None = 95.0
    boards_seen: int | None = 3
    chips_seen: int | None = 228
    chip_temp_max_c: float | None = 75.0
    inlet_temp_c: float | None = 25.0
    fans_ok: bool | None = True
    power_w: float | None = 3250.0
    power_source: str = "pdu"


UNKNOWN = {
    "reachable": None,
    "hashrate_ths": None,
    "boards_seen": None,
    "chips_seen": None,
    "chip_temp_max_c": None,
    "inlet_temp_c": None,
    "fans_ok": None,
    "power_w": None,
    "power_source": "",
}
DOWN = {**UNKNOWN, "reachable": False, "hashrate_ths": 0.0}


def series(*kinds: str, **fields) -> list[W]:
    """Windows oldest first, one per interval ending at T0: 'u' up, 'd' down, '?' unknown,
    'l' up but hashing low (50 %)."""
    shapes: dict[str, dict[str, Any]] = {"u": {}, "d": DOWN, "?": UNKNOWN, "l": {"hashrate_ths": 47.5}}
    n = len(kinds)
    return [W(start=T0 - (n - 1 - i) * STEP, **{**shapes[k], **fields}) for i, k in enumerate(kinds)]


# --- offline ---------------------------------------------------------------------------------


def test_offline_for_n_windows_in_a_row_holds_with_since():
    decision = alerts.offline(RULES, series("u", "d", "d", "d"))[alerts.OFFLINE]
    assert decision is not None
    assert decision.values == {"windows": 3, "limit_windows": 3, "since": (T0 - 2 * STEP).isoformat()}
    assert "3 windows" in decision.message


def test_offline_one_window_short_of_the_limit_is_clear():
    assert alerts.offline(RULES, series("u", "d", "d")) == {alerts.OFFLINE: None}


def test_a_reachable_window_resolves_offline():
    assert alerts.offline(RULES, series("d", "d", "d", "u")) == {alerts.OFFLINE: None}


def test_unknown_windows_neither_count_nor_break_an_offline_streak():
    # d ? d ? d: three unreachable windows with gaps between: offline for 3.
    decision = alerts.offline(RULES, series("u", "d", "?", "d", "?", "d"))[alerts.OFFLINE]
    assert decision is not None
    assert decision.values["windows"] == 3
    # Two unknown windows are not two more offline windows.
    assert alerts.offline(RULES, series("u", "d", "?", "?", "d")) == {alerts.OFFLINE: None}


def test_unknown_newest_windows_keep_an_offline_streak_open():
    decision = alerts.offline(RULES, series("u", "d", "d", "d", "?", "?"))[alerts.OFFLINE]
    assert decision is not None
    assert decision.values["windows"] == 3


def test_nothing_known_or_a_streak_running_off_the_windows_given_is_undecided():
    assert alerts.offline(RULES, series("?", "?", "?")) == {}
    assert alerts.offline(RULES, []) == {}
    # Two down and nothing known before them: maybe the third is just before what was loaded.
    assert alerts.offline(RULES, series("?", "d", "d")) == {}


# --- hashrate low ------------------------------------------------------------------------------


def test_hashrate_under_the_limit_for_n_windows_holds():
    decision = alerts.low_hashrate(RULES, S19, series("u", "l", "l", "l"))[alerts.LOW_HASHRATE]
    assert decision is not None
    assert decision.values["hashrate_pct"] == 50.0
    assert decision.values["windows"] == 3
    assert decision.values["since"] == (T0 - 2 * STEP).isoformat()


def test_hashrate_exactly_at_the_limit_is_not_low():
    at_limit = series("u", "u", "u", "u", hashrate_ths=76.0)  # 76 / 95 = 80 % exactly
    assert alerts.low_hashrate(RULES, S19, at_limit) == {alerts.LOW_HASHRATE: None}
    just_under = series("u", "u", "u", "u", hashrate_ths=75.99)
    assert alerts.low_hashrate(RULES, S19, just_under)[alerts.LOW_HASHRATE] is not None


def test_low_hashrate_needs_n_windows_and_unknown_ones_are_skipped():
    assert alerts.low_hashrate(RULES, S19, series("u", "l", "l")) == {alerts.LOW_HASHRATE: None}
    decision = alerts.low_hashrate(RULES, S19, series("u", "l", "?", "l", "?", "l"))[alerts.LOW_HASHRATE]
    assert decision is not None
    assert decision.values["windows"] == 3


def test_an_unreachable_window_breaks_the_low_streak_and_leaves_it_undecided_while_down():
    assert alerts.low_hashrate(RULES, S19, series("l", "l", "d", "l")) == {alerts.LOW_HASHRATE: None}
    assert alerts.low_hashrate(RULES, S19, series("l", "l", "l", "d")) == {}  # offline speaks now
    assert alerts.low_hashrate(RULES, S19, series("l", "l", "l", "?")) != {}  # unknown: the streak stands


def test_low_hashrate_reads_the_models_nominal_not_a_literal():
    slow_model = replace(S19, nominal_hashrate_ths=50.0)
    assert alerts.low_hashrate(RULES, slow_model, series("l", "l", "l")) == {alerts.LOW_HASHRATE: None}


# --- the instantaneous rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "lost"),
    [
        ({}, False),
        ({"boards_seen": 2, "chips_seen": 152}, True),
        ({"chips_seen": 227}, True),  # one chip short
        ({"chips_seen": 228, "boards_seen": 3}, False),  # exactly all of them
        ({"boards_seen": 2, "chips_seen": None}, True),
    ],
)
def test_a_board_or_chips_lost(fields, lost):
    decision = alerts.board_lost(S19, W(**fields))[alerts.BOARD_LOST]
    assert (decision is not None) is lost
    if lost:
        assert decision.values["boards_expected"] == 3
        assert decision.values["chips_expected"] == 228


def test_board_lost_is_undecided_on_an_unreachable_or_unknown_window():
    assert alerts.board_lost(S19, W(**DOWN)) == {}
    assert alerts.board_lost(S19, W(**UNKNOWN)) == {}
    assert alerts.board_lost(S19, W(boards_seen=None, chips_seen=None)) == {}


def test_chip_temperature_over_the_models_limit_exactly_at_it_is_fine():
    assert alerts.chip_hot(S19, W(chip_temp_max_c=95.0)) == {alerts.CHIP_HOT: None}
    decision = alerts.chip_hot(S19, W(chip_temp_max_c=95.1))[alerts.CHIP_HOT]
    assert decision is not None
    assert decision.values == {"chip_temp_max_c": 95.1, "limit_c": 95.0}
    assert alerts.chip_hot(replace(S19, max_chip_temp_c=100.0), W(chip_temp_max_c=99.0)) == {alerts.CHIP_HOT: None}
    assert alerts.chip_hot(S19, W(**DOWN)) == {}


def test_fans_stopped():
    assert alerts.fans_stopped(W(fans_ok=False))[alerts.FANS_STOPPED] is not None
    assert alerts.fans_stopped(W(fans_ok=True)) == {alerts.FANS_STOPPED: None}
    assert alerts.fans_stopped(W(fans_ok=None)) == {}
    assert alerts.fans_stopped(W(**DOWN)) == {}


def test_inlet_over_the_sites_maximum():
    assert alerts.inlet_hot(RULES, W(inlet_temp_c=40.0)) == {alerts.INLET_HOT: None}
    decision = alerts.inlet_hot(RULES, W(inlet_temp_c=40.5))[alerts.INLET_HOT]
    assert decision is not None
    assert decision.values == {"inlet_temp_c": 40.5, "limit_c": 40}
    assert alerts.inlet_hot(replace(RULES, inlet_max_c=45), W(inlet_temp_c=42.0)) == {alerts.INLET_HOT: None}
    assert alerts.inlet_hot(RULES, W(**UNKNOWN)) == {}


def test_over_draw_against_nameplate_and_the_models_tolerance():
    assert alerts.over_draw(S19, W(power_w=3575.0)) == {alerts.OVER_DRAW: None}  # 3,250 × 1.10 exactly
    decision = alerts.over_draw(S19, W(power_w=3576.0))[alerts.OVER_DRAW]
    assert decision is not None
    assert decision.values["limit_w"] == 3575.0
    assert decision.values["source"] == "pdu"
    assert alerts.over_draw(S19, W(power_w=3600.0, power_source="miner"))[alerts.OVER_DRAW] is not None
    assert alerts.over_draw(replace(S19, power_tolerance_pct=20.0), W(power_w=3600.0)) == {alerts.OVER_DRAW: None}


def test_over_draw_is_judged_on_measured_watts_only_even_when_the_miner_is_down():
    assert alerts.over_draw(S19, W(power_w=9999.0, power_source="nameplate")) == {}
    hung = W(**{**DOWN, "power_w": 4000.0, "power_source": "pdu"})  # the PDU meters a hung miner
    assert alerts.over_draw(S19, hung)[alerts.OVER_DRAW] is not None
    assert alerts.over_draw(S19, W(**UNKNOWN)) == {}


# --- all of a machine's rules at once ----------------------------------------------------------------


def test_machine_decisions_read_the_window_of_the_evaluated_interval():
    windows = series("u", "u", "u", chip_temp_max_c=99.0, fans_ok=False)
    decisions = alerts.machine_decisions(RULES, S19, windows, T0)
    assert {k for k, v in decisions.items() if v is not None} == {alerts.CHIP_HOT, alerts.FANS_STOPPED}
    assert decisions[alerts.OFFLINE] is None
    assert decisions[alerts.BOARD_LOST] is None
    # No window for the interval evaluated: the instantaneous rules are undecided.
    later = alerts.machine_decisions(RULES, S19, windows, T0 + STEP)
    assert set(later) == {alerts.OFFLINE, alerts.LOW_HASHRATE}


def test_an_unknown_window_decides_nothing_new():
    windows = [*series("u", "u", "u"), W(start=T0 + STEP, **UNKNOWN)]
    decisions = alerts.machine_decisions(RULES, S19, windows, T0 + STEP)
    assert decisions == {alerts.OFFLINE: None, alerts.LOW_HASHRATE: None}  # from the known windows before it


# --- circuits ------------------------------------------------------------------------------------


BREAKER = Breaker(voltage_v=415, breaker_amps=100, phases=3, power_factor=Decimal("0.95"))


def test_circuit_over_its_alert_share_of_the_breaker():
    usable = circuit_usable_w(415, 100, 3, Decimal("0.95"))  # 80 % of the rating: 54,628 W
    limit = float(BREAKER.rated_w) * 80 / 100
    assert int(limit) == usable
    assert alerts.circuit_hot(RULES, BREAKER, limit) == {alerts.CIRCUIT_HOT: None}  # exactly at 80 %
    decision = alerts.circuit_hot(RULES, BREAKER, limit + 1)[alerts.CIRCUIT_HOT]
    assert decision is not None
    assert decision.values["limit_pct"] == 80
    assert decision.values["measured_pct"] == 80.0
    assert alerts.circuit_hot(RULES, BREAKER, None) == {}


def test_circuit_alert_share_and_single_phase_rating():
    single = Breaker(voltage_v=240, breaker_amps=30, phases=1, power_factor=Decimal("1.00"))
    assert single.rated_w == 7200
    assert alerts.circuit_hot(RULES, single, 5761.0)[alerts.CIRCUIT_HOT] is not None
    assert alerts.circuit_hot(replace(RULES, circuit_alert_pct=90), single, 5761.0) == {alerts.CIRCUIT_HOT: None}
