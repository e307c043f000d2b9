"""Day partitions of the raw windows, month partitions of the machine-hours: made by the
migration (a DEFAULT partition on PostgreSQL), created ahead, and dropped whole by
retention while the rollups stay. SQLite keeps plain tables and deletes old rows."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hosting.telemetry import storage
from hosting.telemetry.models import CircuitWindow, MachineHour, Window
from hosting.telemetry.partitions import CIRCUIT_WINDOW, MACHINE_HOUR, WINDOW
from hosting.telemetry.services_store import (
    drop_expired,
    ensure_partitions,
    fill_unknown,
    partitions_of,
    retention_cutoff,
    roll_up_hours,
)
from tests.telemetry.store_world import STEP, accounting_from, live_machines, window

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 30, 12, 3, tzinfo=UTC)
OLD = dt.datetime(2026, 3, 14, 10, 0, tzinfo=UTC)  # 16 days before NOW: past a 14-day retention
RECENT = dt.datetime(2026, 3, 29, 10, 0, tzinfo=UTC)


# --- Naming (pure) --------------------------------------------------------------------------


def test_partition_bounds_and_names():
    at = dt.datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert WINDOW.bounds(at) == (dt.datetime(2026, 12, 31, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert MACHINE_HOUR.bounds(at) == (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert WINDOW.name(WINDOW.bounds(at)[0]) == "telemetry_window_p20261231"
    assert MACHINE_HOUR.name(MACHINE_HOUR.bounds(at)[0]) == "telemetry_machinehour_p202612"
    assert WINDOW.parse("telemetry_window_p20261231") == WINDOW.bounds(at)
    assert MACHINE_HOUR.parse("telemetry_machinehour_p202612") == MACHINE_HOUR.bounds(at)
    assert WINDOW.parse("telemetry_window_default") is None
    assert CIRCUIT_WINDOW.parse("telemetry_window_p20261231") is None  # another parent's


def test_a_partition_in_another_time_zone_is_the_utc_day():
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert WINDOW.bounds(dt.datetime(2026, 3, 11, 8, 0, tzinfo=tokyo))[0] == dt.datetime(2026, 3, 10, tzinfo=UTC)


def test_covering_spans_every_day_and_month():
    days = WINDOW.covering(dt.date(2026, 2, 27), dt.date(2026, 3, 2))
    assert [s.date() for s, _ in days] == [dt.date(2026, 2, 27), dt.date(2026, 2, 28), dt.date(2026, 3, 1),
                                           dt.date(2026, 3, 2)]  # fmt: skip
    months = MACHINE_HOUR.covering(dt.date(2026, 11, 30), dt.date(2027, 1, 2))
    assert [s.date() for s, _ in months] == [dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)]


def test_retention_keeps_today_and_the_whole_days_before():
    assert retention_cutoff(14, NOW) == dt.datetime(2026, 3, 16, tzinfo=UTC)


# --- PostgreSQL -----------------------------------------------------------------------------


def _parent(table: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relkind, pg_get_partkeydef(c.oid) FROM pg_class c WHERE c.relname = %s", [table])
        return cursor.fetchone()


def _table_of(machine_id: int, start: dt.datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM telemetry_window WHERE machine_id = %s AND start = %s",
            [machine_id, start],
        )
        return cursor.fetchone()[0]


def _exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0] == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_migration_makes_range_partitioned_parents_with_a_default():
    assert _parent("telemetry_window") == ("p", "RANGE (start)")
    assert _parent("telemetry_circuitwindow") == ("p", "RANGE (start)")
    assert _parent("telemetry_machinehour") == ("p", "RANGE (hour)")
    for spec in (WINDOW, CIRCUIT_WINDOW, MACHINE_HOUR):
        assert spec.default in partitions_of(spec)


@pytest.mark.postgres
@pytest.mark.django_db
def test_partitions_are_created_ahead_and_once():
    created = ensure_partitions(3, now=NOW)

    days = [f"2026033{d}" for d in (0, 1)] + ["20260401", "20260402"]
    assert [f"telemetry_window_p{d}" for d in days] == [n for n in created if n.startswith("telemetry_window_")]
    assert {f"telemetry_circuitwindow_p{d}" for d in days} <= set(partitions_of(CIRCUIT_WINDOW))
    assert {"telemetry_machinehour_p202603", "telemetry_machinehour_p202604"} <= set(partitions_of(MACHINE_HOUR))
    with connection.cursor() as cursor:  # real partitions: in pg_inherits, bounded as named
        cursor.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'telemetry_window'::regclass AND c.relname = 'telemetry_window_p20260331'"
        )
        (bound,) = cursor.fetchone()
    assert bound.startswith("FOR VALUES FROM ('2026-03-31 00:00:00+00')")
    assert ensure_partitions(3, now=NOW) == []


@pytest.mark.postgres
def test_a_window_lands_in_its_day_and_the_default_catches_the_rest(floor):
    (machine,) = live_machines(floor, 1)
    ensure_partitions(1, now=NOW)
    later = dt.datetime(2026, 4, 20, 8, 0, tzinfo=UTC)  # no partition yet
    storage.write_windows([window(machine, NOW), window(machine, later)])
    assert _table_of(machine.pk, NOW) == "telemetry_window_p20260330"
    assert _table_of(machine.pk, later) == "telemetry_window_default"

    created = ensure_partitions(1, now=NOW)

    assert "telemetry_window_p20260420" in created  # made for the row the default caught, which moved in
    assert _table_of(machine.pk, later) == "telemetry_window_p20260420"
    assert Window.objects.filter(machine=machine).count() == 2
    with connection.cursor() as cursor:  # it has the parent's primary key: an upsert still finds the row
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'telemetry_window_p20260420'")
        assert cursor.fetchone()[0] == 2
    storage.write_windows([window(machine, later, hashrate_ths=50.0)])
    assert Window.objects.get(machine=machine, start=later).hashrate_ths == 50.0


def _old_and_recent_world(floor):
    """Windows 16 days ago and yesterday, rolled up into machine-hours."""
    machines = live_machines(floor, 2, since=OLD - dt.timedelta(days=1))
    site = floor["site"]
    ensure_partitions(1, now=OLD)
    ensure_partitions(1, now=RECENT)
    storage.write_windows(window(m, start + n * STEP) for m in machines for start in (OLD, RECENT) for n in range(12))
    storage.write_circuit_windows(
        CircuitWindow(start=start, circuit_id=floor["circuits"][0].pk, site=site, measured_w=6_500.0)
        for start in (OLD, RECENT)
    )
    accounting_from(site, OLD)
    fill_unknown(site, OLD + dt.timedelta(hours=1, minutes=5), grace_s=0)
    roll_up_hours(site, OLD + dt.timedelta(hours=1))
    assert MachineHour.objects.filter(hour=OLD).count() == 2
    return machines


@pytest.mark.postgres
def test_retention_drops_whole_partitions_and_the_rollups_stay(floor):
    _old_and_recent_world(floor)

    with CaptureQueriesContext(connection) as queries:
        dropped = drop_expired(14, now=NOW)

    assert {"telemetry_window_p20260314", "telemetry_circuitwindow_p20260314"} <= set(dropped)
    assert "telemetry_window_p20260329" not in dropped
    assert not _exists("telemetry_window_p20260314")
    assert _exists("telemetry_window_p20260329")
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert any(
        s.startswith("ALTER TABLE telemetry_window DETACH PARTITION telemetry_window_p20260314") for s in statements
    )
    assert not Window.objects.filter(start__lt=RECENT).exists()
    assert Window.objects.filter(start__gte=RECENT).count() == 24
    assert MachineHour.objects.filter(hour=OLD).count() == 2  # billing's rows outlive the raw windows


def test_retention_on_any_database_keeps_the_recent_windows_and_the_rollups(floor):
    _old_and_recent_world(floor)

    drop_expired(14, now=NOW)

    assert not Window.objects.filter(start__lt=RECENT).exists()
    assert not CircuitWindow.objects.filter(start__lt=RECENT).exists()
    assert Window.objects.filter(start__gte=RECENT).count() == 24
    assert CircuitWindow.objects.filter(start__gte=RECENT).count() == 1
    assert MachineHour.objects.filter(hour=OLD).count() == 2
