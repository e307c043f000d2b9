"""The dashboards' numbers, without a database: forecasts read from the ledger's timeline at
its change points and month boundaries, live draw and waitlisted demand in facility MW, the
all-sites sum, and the small pure helpers behind the rack elevation."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from capacity import power
from capacity.models import Site
from hosting.staff import figures, svg

D = dt.date
START = D(2026, 1, 15)


def phase(day, mw):
    return SimpleNamespace(energized_on=day, mw=Decimal(mw))


def booking(start, end, it_kw):
    return power.Booking(start, end, Decimal(it_kw))


@pytest.fixture
def siberia():
    """PUE 1.25; 125 MW energized, +375 MW six months from the start; 60 MW of IT booked
    open-ended and 20 MW more for a year from March."""
    return power.SiteBook(
        "siberia",
        Decimal("1.25"),
        [phase(D(2025, 1, 1), "125"), phase(D(2026, 7, 15), "375")],
        [booking(D(2025, 6, 1), None, "60000"), booking(D(2026, 3, 1), D(2027, 3, 1), "20000")],
    )


def mw_at(fc, day):
    p = fc.at(day)
    return (p.budget_mw, p.committed_mw, p.live_mw, p.waitlisted_mw, p.demand_mw, p.headroom_it_kw)


def test_the_forecast_steps_at_the_phase_date_and_counts_committed_live_and_waitlisted_at_pue(siberia):
    # Given a waitlisted quote of 40 MW IT for a year from September, and 1 MW IT live
    waitlisted = [figures.WaitlistedQuote(Decimal("40000"), D(2026, 9, 1), 12).demand(siberia.pue)]
    fc = figures.forecast(siberia, START, live_w=1_000_000, waitlisted=waitlisted)

    # Then it covers 24 months, one point per month boundary and per change
    assert (fc.start, fc.end) == (START, D(2028, 1, 15))
    days = [p.day for p in fc.points]
    assert days == sorted(set(days))
    assert D(2026, 2, 1) in days
    assert D(2027, 12, 1) in days
    for change in (D(2026, 3, 1), D(2026, 7, 15), D(2026, 9, 1), D(2027, 3, 1), D(2027, 9, 1)):
        assert change in days

    # Budget steps on the phase date; committed is IT × 1.25; live 1 MW IT × 1.25;
    # the waitlist (40 MW IT × 1.25 = 50 MW) stacks on committed over its term.
    m = Decimal
    assert mw_at(fc, START) == (m(125), m(75), m("1.25"), m(0), m(75), m(40000))
    assert mw_at(fc, D(2026, 3, 1)) == (m(125), m(100), m("1.25"), m(0), m(100), m(20000))
    assert fc.at(D(2026, 7, 14)).budget_mw == 125
    assert mw_at(fc, D(2026, 7, 15)) == (m(500), m(100), m("1.25"), m(0), m(100), m(320000))
    assert mw_at(fc, D(2026, 9, 1)) == (m(500), m(100), m("1.25"), m(50), m(150), m(320000))
    assert mw_at(fc, D(2027, 3, 1)) == (m(500), m(75), m("1.25"), m(50), m(125), m(340000))
    assert mw_at(fc, D(2027, 9, 1)) == (m(500), m(75), m("1.25"), m(0), m(75), m(340000))
    assert fc.at(D(2028, 1, 14)) == fc.points[-1]
    with pytest.raises(ValueError, match="outside"):
        fc.at(D(2028, 1, 15))


def test_the_change_table_lists_only_the_days_something_moves(siberia):
    fc = figures.forecast(siberia, START)
    assert [p.day for p in fc.changes] == [START, D(2026, 3, 1), D(2026, 7, 15), D(2027, 3, 1)]


def test_the_forecast_agrees_with_the_ledger_on_every_day(siberia):
    fc = figures.forecast(siberia, START)
    day = START
    while day < fc.end:
        point = fc.at(day)
        assert point.budget_kw == siberia.budget_kw(day)
        assert point.committed_kw == siberia.committed_kw(day) * siberia.pue
        assert point.headroom_it_kw == siberia.headroom_kw(day)
        day += dt.timedelta(days=11)


def test_all_sites_is_the_sum_of_the_sites(siberia):
    texas = power.SiteBook(
        "texas",
        Decimal("1.10"),
        [phase(D(2020, 1, 1), "100"), phase(D(2026, 11, 1), "150")],
        [booking(D(2026, 5, 1), D(2027, 5, 1), "50000")],
    )
    parts = [
        figures.forecast(siberia, START, live_w=2_000_000),
        figures.forecast(texas, START, live_w=500_000, waitlisted=[booking(D(2026, 6, 1), D(2026, 8, 1), "1100")]),
    ]
    total = figures.combine("all", parts, start=START)
    days = {p.day for f in parts for p in f.points}
    assert days <= {p.day for p in total.points}
    for day in [*sorted(days), D(2026, 10, 31), D(2026, 11, 1)]:
        at = [f.at(day) for f in parts]
        point = total.at(day)
        assert point.budget_kw == sum(p.budget_kw for p in at)
        assert point.committed_kw == sum(p.committed_kw for p in at)
        assert point.live_kw == sum(p.live_kw for p in at)
        assert point.waitlisted_kw == sum(p.waitlisted_kw for p in at)
        assert point.headroom_it_kw == sum(p.headroom_it_kw for p in at)
    # 1 Nov 2026: 500 + 250 MW; 100 MW (Siberia) + 55 MW (Texas, 50 MW IT × 1.1) committed
    assert total.at(D(2026, 11, 1)).budget_mw == 750
    assert total.at(D(2026, 11, 1)).committed_mw == Decimal("155.000")
    assert total.at(START).live_mw == Decimal("2.5") + Decimal("0.55")


def test_combining_forecasts_of_different_dates_is_refused(siberia):
    with pytest.raises(ValueError, match="same dates"):
        figures.combine("x", [figures.forecast(siberia, START)], start=D(2026, 1, 16))


def site(pk, slug, *, country="US", region="Texas", pue="1.10"):
    return Site(pk=pk, slug=slug, name=slug.title(), country=country, region=region, pue=Decimal(pue))


def test_waitlisted_quotes_count_at_the_sites_their_filters_allow():
    texas, bratsk = site(1, "rockdale"), site(2, "bratsk", country="RU", region="Siberia", pue="1.04")
    sites = [texas, bratsk]
    anywhere = figures.WaitlistedQuote(Decimal("1000"), D(2026, 1, 1), 12)
    in_russia = figures.WaitlistedQuote(Decimal("2000"), D(2026, 1, 1), 12, country="ru")
    in_texas = figures.WaitlistedQuote(Decimal("4000"), D(2026, 1, 1), 12, region="texas")
    at_bratsk = figures.WaitlistedQuote(Decimal("8000"), D(2026, 1, 1), 12, site_id=2)
    unknown_site = figures.WaitlistedQuote(Decimal("16000"), D(2026, 1, 1), 12, site_id=99)
    quotes = [anywhere, in_russia, in_texas, at_bratsk, unknown_site]

    at_texas = figures.waitlist_at_site(quotes, texas, sites)
    assert sorted(b.it_kw for b in at_texas) == [Decimal("1100.00"), Decimal("4400.00")]  # × 1.10
    at_bratsk_kw = sorted(b.it_kw for b in figures.waitlist_at_site(quotes, bratsk, sites))
    assert at_bratsk_kw == [Decimal("1040.00"), Decimal("2080.00"), Decimal("8320.00")]  # × 1.04
    assert at_texas[0].ends_on == D(2027, 1, 1)

    # All sites: each quote once, at the highest PUE it could draw at (any site's when none match)
    everywhere = sorted(b.it_kw for b in figures.waitlist_everywhere(quotes, sites))
    assert everywhere == [
        Decimal("1100.00"),
        Decimal("2080.00"),
        Decimal("4400.00"),
        Decimal("8320.00"),
        Decimal("17600.00"),
    ]


def test_month_starts_lie_strictly_inside_the_range():
    assert figures.month_starts(D(2026, 1, 1), D(2026, 4, 1)) == [D(2026, 2, 1), D(2026, 3, 1)]
    assert figures.month_starts(D(2026, 1, 31), D(2026, 3, 2)) == [D(2026, 2, 1), D(2026, 3, 1)]


# --- rack helpers --------------------------------------------------------------------------


def test_the_max_chip_temperature_ignores_boards_without_a_reading():
    boards = [{"chip_temp_c": 71.5}, {"chip_temp_c": None}, {"chip_temp_c": 88}, {"present": False}]
    assert figures.max_chip_temp_c(boards) == 88.0
    assert figures.max_chip_temp_c([{"chip_temp_c": None}]) is None
    assert figures.max_chip_temp_c([]) is None
    assert figures.max_chip_temp_c(None) is None


@pytest.mark.parametrize(
    ("load_w", "level"),
    [(0, "ok"), (40_000, "ok"), (41_000, "warn"), (49_000, "warn"), (49_200, "high"), (54_628, "high")],
)
def test_circuit_load_levels_count_against_usable_watts(load_w, level):
    load = figures.CircuitLoad("C1", load_w, 54_628)
    assert load.level == level
    assert load.fraction == Decimal(load_w) / Decimal(54_628)


def test_slot_cells_follow_position_order_and_link_machines():
    machine = SimpleNamespace(pk=7, serial="SN7", model="Antminer S19", status="live")
    slots = [SimpleNamespace(position=2, machine=machine), SimpleNamespace(position=1, machine=None)]
    cells = figures.slot_cells(slots, {7: 81.0}, lambda pk: f"/m/{pk}/")
    assert [c.position for c in cells] == [1, 2]
    assert cells[0].empty
    assert (cells[1].href, cells[1].temp_c) == ("/m/7/", 81.0)
    assert cells[1].tooltip == "#2: SN7 · Antminer S19 · live · 81.0 °C max chip · latest self-test"


def test_ages_read_as_people_say_them():
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    assert figures.fmt_age(figures.age(now - dt.timedelta(days=3, hours=4, minutes=5), now)) == "3 d 4 h"
    assert figures.fmt_age(figures.age(now - dt.timedelta(hours=5, minutes=12), now)) == "5 h 12 min"
    assert figures.fmt_age(figures.age(now - dt.timedelta(minutes=7), now)) == "7 min"
    assert figures.fmt_age(figures.age(now + dt.timedelta(minutes=7), now)) == "0 min"
    assert figures.fmt_age(None) == "—"


# --- svg helpers ---------------------------------------------------------------------------------


def test_ticks_are_round_and_reach_the_top():
    assert svg.nice_ticks(1750) == [0, 500, 1000, 1500, 2000]
    assert svg.nice_ticks(9.2) == [0, 2, 4, 6, 8, 10]
    assert svg.nice_ticks(0) == [0.0, 1.0]


def test_steps_are_drawn_horizontal_then_vertical():
    assert svg.step_line([0, 10, 20], [5, 3, 1], 30) == "M0 5H10V3H20V1H30"
    assert svg.step_band([0, 10], [9, 8], [5, 3], 20) == "M0 5H10V3H20V8H10V9H0Z"


def test_the_heat_scale_runs_from_cold_blue_to_hot_red_and_clamps():
    assert svg.heat_colour(40, 40, 95) == "#2c7bb6"
    assert svg.heat_colour(67.5, 40, 95) == "#ffffbf"
    assert svg.heat_colour(95, 40, 95) == "#d7191c"
    assert svg.heat_colour(120, 40, 95) == "#d7191c"
    assert svg.heat_colour(0, 40, 95) == "#2c7bb6"
