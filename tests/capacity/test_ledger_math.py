"""The ledger's pure calculations, by hand-computed cases; no database."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity import power

D = Decimal


@dataclass
class Phase:
    energized_on: dt.date
    mw: Decimal


@dataclass
class Booking:
    starts_on: dt.date
    ends_on: dt.date | None
    it_kw: Decimal


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --- circuits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("voltage_v", "amps", "phases", "pf", "usable_w"),
    [
        (240, 30, 1, D("1"), 5_760),  # 240 × 30 × 1 × 0.8
        (208, 30, 1, D("1"), 4_992),  # 208 × 30 × 0.8
        (240, 30, 1, D("0.95"), 5_472),  # 240 × 30 × 0.95 × 0.8
        (208, 30, 3, D("1"), 8_646),  # 208 × 30 × √3 × 0.8 = 8 646.40
        (415, 100, 3, D("0.95"), 54_628),  # 415 × 100 × 0.95 × √3 × 0.8 = 54 628.88
        (480, 60, 3, D("1"), 39_906),  # 480 × 60 × √3 × 0.8 = 39 906.45
        (400, 32, 3, D("1"), 17_736),  # IEC 32 A: 400 × 32 × √3 × 0.8 = 17 736.20
    ],
)
def test_circuit_usable_watts_follow_the_80_percent_rule(voltage_v, amps, phases, pf, usable_w):
    assert power.circuit_usable_w(voltage_v, amps, phases, pf) == usable_w


def test_usable_watts_are_floored_never_rounded_up():
    # 415 × 100 × 0.95 × √3 × 0.8 = 54 628.88: rounding up would allow a watt past the breaker.
    assert power.circuit_usable_w(415, 100, 3, D("0.95")) == 54_628


def test_three_phase_carries_root_three_times_single_phase():
    single = power.circuit_usable_w(400, 100, 1, D("1"))
    three = power.circuit_usable_w(400, 100, 3, D("1"))
    assert single == 32_000
    assert three == 55_425  # 32 000 × √3 = 55 425.63


def test_feed_load_is_apparent_power():
    assert power.apparent_va(3_250, D("0.95")) == pytest.approx(D("3421.05"), abs=D("0.01"))


# --- budget, commitment, headroom ---------------------------------------------------------

PHASES = [
    Phase(day("2021-01-01"), D("125")),  # 125 MW today
    Phase(day("2021-07-01"), D("500")),  # +500 MW in Q3
    Phase(day("2022-01-01"), D("875")),
]


def test_budget_is_the_sum_of_phases_energized_on_or_before_the_day():
    assert power.budget_kw(PHASES, day("2020-12-31")) == 0
    assert power.budget_kw(PHASES, day("2021-01-01")) == D("125000")
    assert power.budget_kw(PHASES, day("2021-06-30")) == D("125000")
    assert power.budget_kw(PHASES, day("2021-07-01")) == D("625000")
    assert power.budget_kw(PHASES, day("2030-01-01")) == D("1500000")


def test_committed_counts_overlapping_and_open_ended_reservations_on_their_days():
    bookings = [
        Booking(day("2021-01-01"), day("2021-04-01"), D("100")),  # [Jan, Apr)
        Booking(day("2021-03-01"), None, D("50")),  # open-ended from March
        Booking(day("2021-03-15"), day("2021-03-16"), D("7")),  # one day
    ]
    assert power.committed_kw(bookings, day("2021-02-01")) == D("100")
    assert power.committed_kw(bookings, day("2021-03-15")) == D("157")
    assert power.committed_kw(bookings, day("2021-03-16")) == D("150")
    assert power.committed_kw(bookings, day("2021-04-01")) == D("50")  # ends_on is exclusive
    assert power.committed_kw(bookings, day("2040-01-01")) == D("50")


def test_headroom_divides_the_budget_by_pue():
    # 125 MW at PUE 1.25 carries 100 MW of IT; 60 MW committed leaves 40 MW.
    assert power.headroom_kw(D("125000"), D("1.25"), D("60000")) == D("40000")
    # Floored to the watt: 10 MW / 1.3 = 7 692.307…
    assert power.headroom_kw(D("10000"), D("1.3"), D("0")) == D("7692.307")


def test_fits_is_exact_at_the_boundary():
    assert power.fits(D("10000"), D("1.25"), D("7000"), D("1000"))  # 8000 × 1.25 = 10000
    assert not power.fits(D("10000"), D("1.25"), D("7000"), D("1000.001"))


# --- timeline and the queries built on it ------------------------------------------------


def test_timeline_splits_only_at_change_points():
    bookings = [Booking(day("2021-03-01"), day("2021-09-01"), D("1000"))]
    segments = power.timeline(PHASES, bookings, day("2021-02-01"))
    assert [(s.starts_on, s.ends_on, s.budget_kw, s.committed_kw) for s in segments] == [
        (day("2021-02-01"), day("2021-03-01"), D("125000"), D("0")),
        (day("2021-03-01"), day("2021-07-01"), D("125000"), D("1000")),
        (day("2021-07-01"), day("2021-09-01"), D("625000"), D("1000")),
        (day("2021-09-01"), day("2022-01-01"), D("625000"), D("0")),
        (day("2022-01-01"), None, D("1500000"), D("0")),
    ]


def test_timeline_merges_changes_that_cancel_on_one_day():
    bookings = [
        Booking(day("2021-01-01"), day("2021-03-01"), D("10")),
        Booking(day("2021-03-01"), None, D("10")),  # hand-over on the same day
    ]
    segments = power.timeline([Phase(day("2021-01-01"), D("1"))], bookings, day("2021-01-01"))
    assert len(segments) == 1
    assert segments[0].committed_kw == D("10")


def book(pue="1.0", phases=PHASES, bookings=()):
    return power.SiteBook("test", D(pue), list(phases), list(bookings))


def test_min_headroom_over_a_range_sees_the_worst_day_inside_it_only():
    site = book(
        bookings=[
            Booking(day("2021-03-01"), day("2021-04-01"), D("120000")),  # a tight March
        ]
    )
    assert site.min_headroom_kw(day("2021-01-01"), day("2021-03-01")) == D("125000")
    assert site.min_headroom_kw(day("2021-01-01"), day("2021-03-02")) == D("5000")
    assert site.min_headroom_kw(day("2021-04-01"), None) == D("125000")


def test_shortfall_says_how_much_and_from_when():
    site = book(bookings=[Booking(day("2021-03-01"), day("2021-04-01"), D("120000"))])
    short = site.shortfall(D("10000"), day("2021-02-01"), day("2021-05-01"))
    assert short == power.Shortfall(short_kw=D("5000"), short_from=day("2021-03-01"), available_kw=D("5000"))
    assert site.shortfall(D("5000"), day("2021-02-01"), day("2021-05-01")) is None


def test_earliest_fit_waits_for_the_phase_that_makes_room():
    # 125 MW now, 100 MW of it booked open-ended: 50 MW for a year fits once Q3's 500 MW lands.
    site = book(bookings=[Booking(day("2021-01-01"), None, D("100000"))])
    assert site.earliest_fit(D("50000"), day("2021-02-01"), relativedelta(years=1)) == day("2021-07-01")
    assert site.earliest_fit(D("25000"), day("2021-02-01"), relativedelta(years=1)) == day("2021-02-01")


def test_earliest_fit_jumps_over_a_gap_too_short_for_the_term():
    # Free in April only (a reservation ends Apr 1, another starts May 1 until 2022).
    phases = [Phase(day("2021-01-01"), D("10"))]
    bookings = [
        Booking(day("2021-01-01"), day("2021-04-01"), D("10000")),
        Booking(day("2021-05-01"), day("2022-01-01"), D("10000")),
    ]
    site = book(phases=phases, bookings=bookings)
    assert site.earliest_fit(D("1000"), day("2021-01-15"), relativedelta(days=30)) == day("2021-04-01")
    assert site.earliest_fit(D("1000"), day("2021-01-15"), relativedelta(months=2)) == day("2022-01-01")
    # ... and with a horizon before then, it does not fit at all.
    assert site.earliest_fit(D("1000"), day("2021-01-15"), relativedelta(months=2), until=day("2021-12-31")) is None


def test_earliest_fit_open_ended_needs_room_forever():
    phases = [Phase(day("2021-01-01"), D("10"))]
    site = book(phases=phases, bookings=[Booking(day("2021-06-01"), None, D("9500"))])
    assert site.earliest_fit(D("1000"), day("2021-01-01"), relativedelta(months=3)) == day("2021-01-01")
    assert site.earliest_fit(D("1000"), day("2021-01-01"), None) is None
    assert site.earliest_fit(D("500"), day("2021-01-01"), None) == day("2021-01-01")


def test_earliest_fit_accounts_for_pue():
    # 10 MW at PUE 1.25 carries 8 MW of IT.
    site = book(pue="1.25", phases=[Phase(day("2021-01-01"), D("10"))])
    assert site.earliest_fit(D("8000"), day("2021-01-01"), None) == day("2021-01-01")
    assert site.earliest_fit(D("8000.001"), day("2021-01-01"), None) is None


def test_over_budget_finds_the_first_stranded_day():
    site = book(
        phases=[Phase(day("2021-01-01"), D("1"))],
        bookings=[Booking(day("2021-02-01"), day("2021-03-01"), D("1200"))],
    )
    over = site.over_budget(day("2021-01-01"))
    assert over is not None
    assert (over.short_kw, over.short_from) == (D("200"), day("2021-02-01"))
    assert site.over_budget(day("2021-03-01")) is None


def test_the_timeline_is_built_from_change_points_not_days():
    # A million days of range cost the same as one: two bookings, two phases → ≤ 5 segments.
    site = book(
        phases=[Phase(day("2000-01-01"), D("1")), Phase(day("2500-01-01"), D("1"))],
        bookings=[Booking(day("2000-01-01"), day("2900-01-01"), D("1"))],
    )
    assert len(site.timeline(day("2000-01-01")).segments) == 3
    assert site.min_headroom_kw(day("2000-01-01"), day("2999-01-01")) == D("999")


# --- the compiled timeline agrees with a day-by-day search ------------------------------------

ORIGIN = day("2021-01-01")


def brute_earliest_fit(site, kw, not_before, term_days, until):
    """The obvious answer, day by day: slow, but plainly right."""
    candidate = not_before
    while candidate <= until:
        days = (candidate + dt.timedelta(days=d) for d in range(term_days))
        if all(site.headroom_kw(x) >= kw for x in days):
            return candidate
        candidate += dt.timedelta(days=1)
    return None


@settings(max_examples=150, deadline=None)
@given(
    phase_days=st.lists(st.integers(0, 60), min_size=1, max_size=3),
    bookings=st.lists(
        st.tuples(st.integers(0, 80), st.integers(1, 40), st.integers(1, 9)), max_size=6
    ),  # (start day, length in days, kW)
    kw=st.integers(1, 12),
    not_before=st.integers(0, 70),
    term_days=st.integers(1, 30),
)
def test_earliest_fit_matches_a_day_by_day_search(phase_days, bookings, kw, not_before, term_days):
    phases = [Phase(ORIGIN + dt.timedelta(days=d), D("0.005")) for d in phase_days]  # 5 kW each
    booked = [Booking(ORIGIN + dt.timedelta(days=s), ORIGIN + dt.timedelta(days=s + n), D(k)) for s, n, k in bookings]
    site = book(phases=phases, bookings=booked)
    start = ORIGIN + dt.timedelta(days=not_before)
    until = ORIGIN + dt.timedelta(days=150)  # past every change point: the answer cannot change later
    expected = brute_earliest_fit(site, D(kw), start, term_days, until)
    assert site.earliest_fit(D(kw), start, dt.timedelta(days=term_days), until=until) == expected
    if expected is not None:
        assert site.timeline(start).fits(D(kw), expected, expected + dt.timedelta(days=term_days))
