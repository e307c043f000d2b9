"""The triggers, golden cases worked by hand: hold minutes above the strike before curtailing,
resume minutes below before resuming (hysteresis), stale prices change nothing; 4CP inside an
avoid interval or the June–September watch window, in the site's local time; deadlines."""

import datetime as dt
from decimal import Decimal

import pytest

from hosting.curtailment import triggers
from hosting.curtailment.triggers import Decision, Price

T0 = dt.datetime(2026, 7, 15, 18, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)
RULES = triggers.PriceRules(strike_usd_per_mwh=Decimal("150"), hold_minutes=30, resume_minutes=45)


def series(*usd: float) -> list[Price]:
    return [Price(T0 + i * STEP, Decimal(str(p))) for i, p in enumerate(usd)]


def test_the_golden_series_curtails_after_the_hold_and_resumes_after_the_resume_time():
    # interval:    0    1    2    3    4    5    6    7    8    9   10   11   12
    prices = series(90, 200, 90, 200, 300, 400, 160, 100, 150, 120, 110, 100, 90)
    times = [T0 + i * STEP for i in range(13)]
    states = [on for _, on in triggers.price_schedule(RULES, prices, times)]
    # 1: one interval above, broken by 2 → never held 30 min. From 3: above at 3, 4 (30 min
    # at 5) → curtailed at 5. 7 is below, 8 at the strike breaks the run, below from 9:
    # 45 min below at 12 → resumed at 12.
    assert states == [False, False, False, False, False, True, True, True, True, True, True, True, False]


def test_curtailing_needs_the_whole_hold_time():
    prices = series(200, 200)
    assert triggers.price_verdict(RULES, prices, T0 + STEP + dt.timedelta(minutes=14), curtailed=False).decision == (
        Decision.HOLD
    )
    at_30 = triggers.price_verdict(RULES, prices, T0 + 2 * STEP - dt.timedelta(seconds=1), curtailed=False)
    assert at_30.decision == Decision.HOLD
    verdict = triggers.price_verdict(RULES, prices, T0 + 2 * STEP, curtailed=False)
    assert verdict.decision == Decision.CURTAIL
    assert verdict.since == T0
    assert verdict.price == Decimal("200")


def test_a_gap_in_the_prices_restarts_the_hold():
    prices = [Price(T0, Decimal(200)), Price(T0 + 2 * STEP, Decimal(200))]  # interval 1 missing
    assert triggers.price_verdict(RULES, prices, T0 + 3 * STEP, curtailed=False).decision == Decision.HOLD
    assert triggers.price_verdict(RULES, prices, T0 + 4 * STEP, curtailed=False).decision == Decision.CURTAIL


def test_already_in_the_wanted_state_holds():
    prices = series(200, 200, 200)
    assert triggers.price_verdict(RULES, prices, T0 + 3 * STEP, curtailed=True).decision == Decision.HOLD
    low = series(50, 50, 50, 50)
    assert triggers.price_verdict(RULES, low, T0 + 4 * STEP, curtailed=False).decision == Decision.HOLD
    assert triggers.price_verdict(RULES, low, T0 + 3 * STEP, curtailed=True).decision == Decision.RESUME


def test_stale_or_missing_or_future_prices_change_nothing():
    assert triggers.price_verdict(RULES, [], T0, curtailed=False).decision == Decision.HOLD
    prices = series(500, 500, 500)
    stale = T0 + 3 * STEP + RULES.stale_after
    verdict = triggers.price_verdict(RULES, prices, stale, curtailed=False)
    assert (verdict.decision, verdict.reason) == (Decision.HOLD, "no price since 2026-07-15 18:30 UTC")
    # Prices after `now` are not known yet.
    assert triggers.price_verdict(RULES, prices, T0 - STEP, curtailed=False).decision == Decision.HOLD


def test_a_price_at_the_strike_is_neither_above_nor_below():
    prices = series(150, 150, 150, 150)
    assert triggers.price_verdict(RULES, prices, T0 + 4 * STEP, curtailed=False).decision == Decision.HOLD
    assert triggers.price_verdict(RULES, prices, T0 + 4 * STEP, curtailed=True).decision == Decision.HOLD


# --- 4CP --------------------------------------------------------------------------------

WATCH = triggers.FourCpRules("America/Chicago", dt.time(15, 0), dt.time(18, 0))


@pytest.mark.parametrize(
    ("utc", "decision"),
    [
        (dt.datetime(2026, 7, 15, 20, 0, tzinfo=dt.UTC), Decision.CURTAIL),  # 15:00 CDT: the window opens
        (dt.datetime(2026, 7, 15, 22, 59, tzinfo=dt.UTC), Decision.CURTAIL),  # 17:59 CDT
        (dt.datetime(2026, 7, 15, 23, 0, tzinfo=dt.UTC), Decision.HOLD),  # 18:00 CDT: closed
        (dt.datetime(2026, 7, 15, 19, 59, tzinfo=dt.UTC), Decision.HOLD),  # 14:59 CDT
        (dt.datetime(2026, 6, 1, 20, 30, tzinfo=dt.UTC), Decision.CURTAIL),  # first day of the season
        (dt.datetime(2026, 9, 30, 21, 0, tzinfo=dt.UTC), Decision.CURTAIL),  # last day
        (dt.datetime(2026, 10, 1, 21, 0, tzinfo=dt.UTC), Decision.HOLD),  # October: out of season
        (dt.datetime(2026, 5, 31, 21, 0, tzinfo=dt.UTC), Decision.HOLD),  # May
        # 1 June 00:30 UTC is still 31 May 19:30 CDT: local time decides the month.
        (dt.datetime(2026, 6, 1, 0, 30, tzinfo=dt.UTC), Decision.HOLD),
    ],
)
def test_the_watch_window_in_site_local_time_june_to_september(utc, decision):
    assert triggers.four_cp_verdict(WATCH, utc, curtailed=False).decision == decision


def test_leaving_the_window_resumes_and_staying_in_holds():
    inside = dt.datetime(2026, 8, 3, 21, 0, tzinfo=dt.UTC)
    outside = dt.datetime(2026, 8, 3, 23, 30, tzinfo=dt.UTC)
    assert triggers.four_cp_verdict(WATCH, inside, curtailed=True).decision == Decision.HOLD
    assert triggers.four_cp_verdict(WATCH, outside, curtailed=True).decision == Decision.RESUME


def test_an_avoid_interval_curtails_in_any_month_and_ends_at_its_end():
    start = dt.datetime(2026, 11, 20, 22, 0, tzinfo=dt.UTC)
    rules = triggers.FourCpRules("America/Chicago", None, None, ((start, start + STEP),))
    assert triggers.four_cp_verdict(rules, start, curtailed=False).decision == Decision.CURTAIL
    assert triggers.four_cp_verdict(rules, start + STEP, curtailed=True).decision == Decision.RESUME
    assert triggers.four_cp_verdict(rules, start - STEP, curtailed=False).decision == Decision.HOLD


def test_a_watch_window_across_midnight():
    rules = triggers.FourCpRules("UTC", dt.time(22, 0), dt.time(2, 0))
    assert triggers.in_watch_window(rules, dt.datetime(2026, 7, 1, 23, 0, tzinfo=dt.UTC))
    assert triggers.in_watch_window(rules, dt.datetime(2026, 7, 2, 1, 59, tzinfo=dt.UTC))
    assert not triggers.in_watch_window(rules, dt.datetime(2026, 7, 2, 2, 0, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("kind", "program_minutes", "minutes"),
    [("ers10", None, 10), ("ers30", None, 30), ("rrs", None, 10), ("voluntary", None, 30), ("ers30", 20, 20)],
)
def test_an_event_programs_deadline_is_its_start_plus_the_response_time(kind, program_minutes, minutes):
    assert triggers.deadline(kind, T0, program_minutes) == T0 + dt.timedelta(minutes=minutes)
