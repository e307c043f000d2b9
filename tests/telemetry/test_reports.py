"""What telemetry's reads answer: uptime that never counts unknown as down, fleet figures
per tenant and site, a machine's series, measured power beside the ledger's booking — each
in a fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pytest

from hosting.telemetry import reports
from hosting.telemetry.models import TelemetryPolicy
from tests.factories import ContractFactory, PhaseFactory
from tests.telemetry.views_data import INTERVAL, NOW, circuit_windows, live, roll_day, roll_hours, write_day

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(floor):
    """Two live S19s (95 TH/s, 3,250 W) of the floor's tenant, a day of windows to NOW:
    machine 0 hashes throughout; machine 1 is unreachable for the last 12 windows; the
    2 hours before the last 2 hours were not polled at all (unknown)."""
    machines = live(floor, 2)
    unknown = set(range(288 - 48, 288 - 24))
    down = set(range(288 - 12, 288))
    write_day(machines, state=lambda m, i: "unreachable" if m == machines[1] and i in down else "hashing",
              unknown=unknown)  # fmt: skip
    return {**floor, "machines": machines}


def test_uptime_counts_unknown_windows_apart_never_as_down(fleet):
    roll_hours(fleet["machines"])
    yesterday = (NOW - dt.timedelta(days=1)).date()
    roll_day(fleet["contract"].pk, yesterday)  # today's hours are not rolled into a day yet

    month = reports.month_uptime(reports.Scope(contract_id=fleet["contract"].pk), NOW.date(), now=NOW)

    total = month.total
    assert (total.windows, total.unknown, total.reachable) == (576, 48, 576 - 48 - 12)
    assert total.hashing == total.reachable
    assert total.hashing_pct == pytest.approx(100 * 516 / 528)  # of the known windows: unknown is not down
    assert total.unknown_pct == pytest.approx(100 * 48 / 576)
    assert set(month.days) == {yesterday, NOW.date()}
    assert month.days[yesterday].unknown == 0  # the gap is in today's hours
    assert month.days[NOW.date()].unknown == 48
    # kWh: 3.25 kW for every known window of each machine, 0 while unreachable.
    assert total.kwh == pytest.approx(3.25 * (528 - 12) / 12)


def test_windows_not_rolled_up_yet_count_in_the_month_once(fleet):
    """The hour under way (or any the roll-up has not reached) is read from the raw windows,
    so "this month" includes the last minutes; once rolled, the same figures, not twice."""
    scope = reports.Scope(contract_id=fleet["contract"].pk)
    raw = reports.month_uptime(scope, NOW.date(), now=NOW).total
    assert (raw.windows, raw.unknown, raw.reachable, raw.hashing) == (576, 48, 516, 516)
    assert raw.kwh == pytest.approx(3.25 * (528 - 12) / 12)
    roll_hours(fleet["machines"])
    assert reports.month_uptime(scope, NOW.date(), now=NOW).total == raw


def test_a_month_with_nothing_measured_has_no_percentages(floor):
    month = reports.month_uptime(reports.Scope(contract_id=floor["contract"].pk), NOW.date(), now=NOW)
    assert month.total.windows == 0
    assert month.total.hashing_pct is None
    assert month.days == {}


def test_fleet_now_is_the_latest_finished_poll_and_only_the_tenants_own(fleet):
    other = ContractFactory(site=fleet["site"])
    from tests.factories import SlotFactory

    stranger = live(
        {
            **fleet,
            "contract": other,
            "slots": [SlotFactory(rack=fleet["rack"], circuit=fleet["circuits"][1], position=99)],
        },
        1,
        1,
    )
    write_day(stranger, count=3)

    mine = reports.fleet_now(reports.Scope.tenant(fleet["contract"].tenant_id))
    assert mine.machines == 2
    assert mine.reachable == 1
    assert mine.hashing == 1
    assert mine.hashrate_ths == pytest.approx(95.0)
    assert mine.power_kw == pytest.approx(3.25)
    assert mine.as_of == NOW - INTERVAL
    site = reports.now_by_site()[fleet["site"].pk]
    assert site.machines == 3
    assert site.hashrate_ths == pytest.approx(190.0)
    by_tenant = reports.now_by_tenant()
    assert by_tenant[other.tenant_id].machines == 1


def test_fleet_series_over_24_hours_and_30_days(fleet):
    scope = reports.Scope.tenant(fleet["contract"].tenant_id)
    day = reports.fleet_series_24h(scope, now=NOW)
    assert len(day) == 288
    assert day[0].hashrate_ths == pytest.approx(190.0)
    assert day[-1].hashrate_ths == pytest.approx(95.0)
    assert day[-30].windows_unknown == 2
    assert day[-30].hashrate_ths is None
    roll_hours(fleet["machines"])
    month = reports.fleet_series_30d(scope, now=NOW)
    assert len(month) == 24
    assert month[0].hashrate_ths == pytest.approx(190.0)
    assert month[-1].hashrate_ths == pytest.approx(95.0)  # the last hour: machine 1 unreachable, at 0


def test_a_machines_series_at_each_resolution(fleet):
    machine = fleet["machines"][1]
    roll_hours([machine])
    start, end = NOW - dt.timedelta(days=2), NOW
    five = list(reports.machine_series(machine.pk, start, end, "5m"))
    assert len(five) == 288
    assert five[-1]["reachable"] is False
    assert five[-30]["reachable"] is None
    hours = list(reports.machine_series(machine.pk, start, end, "1h"))
    assert len(hours) == 24
    assert hours[-1]["hashrate_ths"] == 0.0
    assert hours[-1]["windows"] == 12
    days = list(reports.machine_series(machine.pk, start, end, "1d"))
    assert [d["start"] for d in days] == [
        dt.datetime(2026, 3, 14, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 15, tzinfo=dt.UTC),
    ]
    assert days[1]["windows"] == 144
    assert days[1]["windows_unknown"] == 24
    with pytest.raises(ValueError, match="resolution"):
        reports.machine_series(machine.pk, start, end, "1w")


def test_machines_with_their_latest_window_in_one_query_however_many(fleet, django_assert_num_queries):
    from hosting.models import Machine

    def read():
        with django_assert_num_queries(1):
            return list(reports.with_latest_window(Machine.objects.order_by("pk"), now=NOW))

    first = read()
    assert first[0].latest_hashrate_ths == pytest.approx(95.0)
    assert first[0].latest_chip_temp_c == 70.0
    assert first[1].latest_reachable is False
    assert first[1].latest_hashrate_ths == 0.0
    assert first[1].last_seen_at == NOW - 13 * INTERVAL  # the last window it answered
    more = live(fleet, 10, 1)
    write_day(more, count=2)
    assert len(read()) == 12


def test_a_circuit_drawing_more_than_booked_or_near_its_breaker_is_flagged(fleet):
    """Circuit 0 carries the two S19s (6,500 W booked) and reads 7,100 W: over booked.
    Circuit 1 books nothing (so any draw is over booked) and reads 40 kW of a 68,285 W
    breaker (58.6 %): not near 80 %; then 50 kW (73.2 %, over 90 % of 80 %): near."""
    site = fleet["site"]
    PhaseFactory(site=site, mw=Decimal("0.008"))
    c0, c1 = fleet["circuits"]
    circuit_windows(c0, site.pk, [6000.0, 7400.0, 7100.0])
    circuit_windows(c1, site.pk, [40000.0])
    view = reports.power_view([site], now=NOW)
    by_id = {c.circuit_id: c for c in view.circuits}
    assert by_id[c0.pk].booked_w == 6500
    assert by_id[c0.pk].measured_w == 7100.0
    assert by_id[c0.pk].peak_w == 7400.0
    assert by_id[c0.pk].over_booked
    assert not by_id[c0.pk].near_limit
    assert by_id[c1.pk].usable_w == 54628
    assert by_id[c1.pk].over_booked  # nothing booked on it, yet it draws
    assert not by_id[c1.pk].near_limit
    assert [c.circuit_id for c in view.flagged_circuits] == [c0.pk, c1.pk]
    circuit_windows(c1, site.pk, [50000.0], end=NOW + INTERVAL)
    view = reports.power_view([site], now=NOW + INTERVAL)
    assert {c.circuit_id for c in view.flagged_circuits} == {c0.pk, c1.pk}
    assert next(c for c in view.circuits if c.circuit_id == c1.pk).near_limit
    (feed,) = view.feeds
    assert feed.booked_w == 6500


def test_a_site_whose_measured_facility_draw_nears_its_budget_is_flagged(fleet):
    site = fleet["site"]
    site.pue = Decimal("1.10")
    site.save()
    PhaseFactory(site=site, mw=Decimal("0.004"), energized_on=dt.date(2021, 1, 1))
    view = reports.power_view([site], now=NOW)
    (row,) = view.sites
    assert row.it_measured_w == pytest.approx(3250.0)  # machine 1 unreachable at the latest poll
    assert row.facility_kw == pytest.approx(3.575)
    assert row.budget_pct == pytest.approx(89.375)
    assert not row.near_budget
    TelemetryPolicy.objects.create(site=site, facility_alert_pct=85)
    assert reports.power_view([site], now=NOW).flagged_sites[0].site_id == site.pk


def test_racks_now_colours_and_occupancy(fleet):
    (rack,) = reports.racks_now(fleet["site"])
    assert rack.slots_total == 32
    assert rack.slots_used == 2
    assert rack.utilisation == pytest.approx(2 / 32)
    assert rack.machines == 2
    assert rack.power_w == pytest.approx(3250.0)
    assert rack.hashrate_pct == pytest.approx(50.0)
    assert rack.chip_temp_c == 70.0


def test_todays_peak_of_a_feed_and_a_site_is_the_highest_interval_not_the_sum_of_peaks(floor):
    one, two = floor["circuits"][:2]
    assert one.feed_id == two.feed_id
    circuit_windows(one, floor["site"].pk, [1000, 3000, 1000])
    circuit_windows(two, floor["site"].pk, [3000, 1000, 1000])  # each peaks at 3 kW, apart

    feeds, sites = reports.peaks_today([floor["site"].pk], now=NOW)

    assert feeds == {one.feed_id: 4000}  # 1 + 3 or 3 + 1, never 3 + 3
    assert sites == {floor["site"].pk: 4000}
    view = reports.power_view([floor["site"]], now=NOW)
    assert {f.feed_id: f.peak_w for f in view.feeds} == {one.feed_id: 4000}
    assert view.sites[0].circuits_peak_w == 4000
