"""Rollups equal the sum of their windows: machine-hours (SQL) against rollups.roll_hour
(plain Python) over random windows, contract-days against their hours, circuit-days against
their circuit windows; unknown is never down; re-rolling gives the same rows."""

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hosting.telemetry import rollups, storage
from hosting.telemetry.models import CircuitDay, CircuitWindow, ContractDay, MachineHour, TelemetryPolicy, Window
from hosting.telemetry.services_store import fill_unknown, roll_up_days, roll_up_hours
from tests.telemetry.store_world import INTERVAL_S, STEP, T0, accounting_from, live_machines, unknown, window

pytestmark = pytest.mark.django_db
HOURS = 2
PER_HOUR = 3600 // INTERVAL_S
DONE = T0 + HOURS * dt.timedelta(hours=1)  # accounting closes the two hours at this time (no grace)

MACHINE_HOUR_FIELDS = ["windows", "windows_unknown", "windows_reachable", "windows_hashing", "hashrate_ths_avg",
                       "power_w_avg", "energy_wh", "chip_temp_max_c"]  # fmt: skip
DAY_FIELDS = ["machines", "windows", "windows_unknown", "windows_reachable", "windows_hashing", "hashrate_ths_avg",
              "energy_wh"]  # fmt: skip

# One window: not polled (accounting writes it unknown), unknown, unreachable, or polled with
# figures (some firmware reports no watts or no hashrate).
reading = st.fixed_dictionaries(
    {
        "hashing": st.booleans(),
        "hashrate_ths": st.none() | st.floats(0, 200, allow_nan=False, allow_subnormal=False),
        "power_w": st.none() | st.floats(0, 4000, allow_nan=False, allow_subnormal=False),
        "chip_temp_max_c": st.none() | st.floats(20, 110, allow_nan=False, allow_subnormal=False),
    }
)
state = st.one_of(st.just("missing"), st.just("unknown"), st.just("unreachable"), reading)
fleet = st.lists(st.lists(state, min_size=HOURS * PER_HOUR, max_size=HOURS * PER_HOUR), min_size=3, max_size=3)


def _write(machines, states) -> None:
    rows = []
    for machine, series in zip(machines, states, strict=True):
        for n, s in enumerate(series):
            start = T0 + n * STEP
            if s == "missing":
                continue
            if s == "unknown":
                rows.append(unknown(machine, start))
            elif s == "unreachable":
                rows.append(window(machine, start, reachable=False, hashing=False, hashrate_ths=None, power_w=None,
                                   chip_temp_max_c=None))  # fmt: skip
            else:
                rows.append(window(machine, start, **s))
    storage.write_windows(rows)


def _figures(row, fields):
    return {f: getattr(row, f) for f in fields}


def _approx(figures: dict) -> dict:
    return {k: pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v for k, v in figures.items()}


def _roll(site) -> None:
    fill_unknown(site, DONE, grace_s=0)
    roll_up_hours(site, DONE)
    roll_up_days(site, DONE)


@pytest.fixture
def three(floor):
    return live_machines(floor, 3)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=fleet)
def test_rollups_equal_the_sum_of_their_windows(floor, three, states):
    site = floor["site"]
    with transaction.atomic():
        accounting_from(site, T0)
        _write(three, states)

        _roll(site)

        machines = three
        hours = list(MachineHour.objects.order_by("machine_id", "hour"))
        assert [(h.machine_id, h.hour) for h in hours] == [
            (m.pk, T0 + dt.timedelta(hours=k)) for m in machines for k in range(HOURS)
        ]
        for h in hours:
            windows = Window.objects.filter(machine_id=h.machine_id, start__gte=h.hour, start__lt=h.hour + rollups.HOUR)
            expected = rollups.roll_hour(windows, INTERVAL_S)
            assert _figures(h, MACHINE_HOUR_FIELDS) == _approx(expected.__dict__)
            assert (h.site_id, h.contract_id) == (site.pk, floor["contract"].pk)
        # Every window is counted once, and what was never polled counts as unknown, not down.
        assert sum(h.windows for h in hours) == Window.objects.count() == len(machines) * HOURS * PER_HOUR
        assert sum(h.windows_unknown for h in hours) == sum(s in ("missing", "unknown") for x in states for s in x)
        assert sum(h.windows_reachable for h in hours) == sum(isinstance(s, dict) for x in states for s in x)
        watts = sum((s["power_w"] or 0.0) for x in states for s in x if isinstance(s, dict))
        assert sum(h.energy_wh for h in hours) == pytest.approx(watts * INTERVAL_S / 3600)

        (day,) = ContractDay.objects.all()
        assert (day.contract_id, day.day) == (floor["contract"].pk, T0.date())
        assert _figures(day, DAY_FIELDS) == _approx(rollups.roll_day(hours).__dict__)
        transaction.set_rollback(True)  # the next example starts from nothing


def test_unknown_is_excluded_from_down_and_from_energy(floor):
    gap, flaky = live_machines(floor, 2)
    site = floor["site"]
    accounting_from(site, T0)
    storage.write_windows(
        [window(gap, T0 + n * STEP) for n in range(6)]  # then six intervals nobody polled
        + [window(flaky, T0 + n * STEP, **({} if n % 2 else {"reachable": False, "hashing": False}))
           for n in range(12)]
    )  # fmt: skip

    _roll(site)

    g = MachineHour.objects.get(machine=gap, hour=T0)
    f = MachineHour.objects.get(machine=flaky, hour=T0)
    assert (g.windows, g.windows_unknown, g.windows_reachable, g.windows_hashing) == (12, 6, 6, 6)
    assert rollups.uptime(g.windows, g.windows_unknown, g.windows_reachable, g.windows_hashing) == rollups.Uptime(
        hashing_pct=100.0, reachable_pct=100.0, unknown_pct=50.0
    )
    assert (g.power_w_avg, g.energy_wh, g.hashrate_ths_avg) == (3250.0, pytest.approx(6 * 3250 / 12), 95.0)
    assert (f.windows_unknown, f.windows_reachable, f.power_w_avg, f.hashrate_ths_avg) == (0, 6, 1625.0, 47.5)
    assert f.energy_wh == pytest.approx(6 * 3250 / 12)  # down windows draw 0 W; unknown ones are not counted at all


def test_re_rolling_the_same_hours_gives_the_same_rows(floor):
    machines = live_machines(floor, 2)
    site = floor["site"]
    accounting_from(site, T0)
    storage.write_windows(window(m, T0 + n * STEP, hashrate_ths=90.0 + n) for m in machines for n in range(20))
    _roll(site)
    hours = {(h.machine_id, h.hour): _figures(h, MACHINE_HOUR_FIELDS) for h in MachineHour.objects.all()}
    days = {(d.contract_id, d.day): _figures(d, DAY_FIELDS) for d in ContractDay.objects.all()}

    TelemetryPolicy.objects.filter(site=site).update(hours_rolled_until=T0, days_rolled_until=T0.date())
    _roll(site)
    _roll(site)

    assert {(h.machine_id, h.hour): _figures(h, MACHINE_HOUR_FIELDS) for h in MachineHour.objects.all()} == hours
    assert {(d.contract_id, d.day): _figures(d, DAY_FIELDS) for d in ContractDay.objects.all()} == days
    assert MachineHour.objects.count() == 4
    assert ContractDay.objects.count() == 1


def test_only_hours_accounting_has_closed_are_rolled(floor):
    (machine,) = live_machines(floor, 1)
    site = floor["site"]
    accounting_from(site, T0)
    storage.write_windows(window(machine, T0 + n * STEP) for n in range(18))

    fill_unknown(site, T0 + dt.timedelta(minutes=95), grace_s=60)  # closes intervals up to 11:30
    roll_up_hours(site, T0 + dt.timedelta(hours=3))

    assert list(MachineHour.objects.values_list("hour", flat=True)) == [T0]  # 11:00 is not complete
    policy = TelemetryPolicy.objects.get(site=site)
    assert (policy.filled_until, policy.hours_rolled_until) == (T0 + 18 * STEP, T0 + dt.timedelta(hours=1))

    roll_up_days(site, T0 + dt.timedelta(hours=3))
    assert TelemetryPolicy.objects.get(site=site).days_rolled_until == T0.date()  # the day is still going on
    assert ContractDay.objects.get().windows == 12


def test_days_move_on_past_whole_days_only(floor):
    (machine,) = live_machines(floor, 1)
    site = floor["site"]
    start = dt.datetime(2026, 3, 9, 22, 0, tzinfo=dt.UTC)
    accounting_from(site, start)
    storage.write_windows(window(machine, start + n * STEP) for n in range(48))  # 22:00 to 02:00

    fill_unknown(site, start + dt.timedelta(hours=4), grace_s=0)
    roll_up_hours(site, start + dt.timedelta(hours=4))
    roll_up_days(site, start + dt.timedelta(hours=4))

    days = {d.day: d.windows for d in ContractDay.objects.all()}
    assert days == {dt.date(2026, 3, 9): 24, dt.date(2026, 3, 10): 24}
    assert TelemetryPolicy.objects.get(site=site).days_rolled_until == dt.date(2026, 3, 10)


def test_circuit_days_hold_the_peak_the_mean_and_the_energy(floor):
    site = floor["site"]
    circuit = floor["circuits"][0]
    accounting_from(site, T0)
    watts = [6_000.0, None, 9_000.0, 7_500.0]
    storage.write_circuit_windows(
        CircuitWindow(start=T0 + n * STEP, circuit_id=circuit.pk, site=site, measured_w=w) for n, w in enumerate(watts)
    )

    _roll(site)

    day = CircuitDay.objects.get(circuit=circuit)
    expected = rollups.roll_circuit_day(watts, INTERVAL_S)
    assert (day.day, day.measured_w_peak, day.measured_w_avg) == (T0.date(), 9_000.0, 7_500.0)
    assert day.energy_wh == pytest.approx(expected.energy_wh) == pytest.approx(22_500 * INTERVAL_S / 3600)
