"""The write path: windows go in (COPY + upsert on PostgreSQL, bulk upsert on SQLite), a
late real poll replaces the unknown written before it, and a key repeated keeps its last row."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from capacity.models import Circuit
from hosting.telemetry import storage
from hosting.telemetry.models import CircuitWindow, Window
from tests.telemetry.store_world import STEP, T0, live_machines, unknown, window

pytestmark = pytest.mark.django_db


def test_windows_are_written_with_every_field(floor):
    a, b = live_machines(floor, 2)
    given = [window(a, T0), window(b, T0, reachable=False, hashing=False, hashrate_ths=0.0, power_w=0.0,
                                  errors="timed out")]  # fmt: skip

    assert storage.write_windows(given) == 2

    got = Window.objects.get(machine=b, start=T0)
    assert (got.reachable, got.hashing, got.hashrate_ths, got.power_w, got.errors) == (False, False, 0.0, 0.0,
                                                                                        "timed out")  # fmt: skip
    first = Window.objects.get(machine=a, start=T0)
    for field in storage.WINDOW_FIELDS:
        assert getattr(first, field) == getattr(given[0], field), field


def test_a_late_poll_replaces_the_unknown_window(floor):
    (machine,) = live_machines(floor, 1)
    storage.write_windows([unknown(machine, T0)])
    assert Window.objects.get(machine=machine, start=T0).reachable is None

    storage.write_windows([window(machine, T0, hashrate_ths=91.0)])

    row = Window.objects.get(machine=machine, start=T0)
    assert (row.reachable, row.hashrate_ths, row.power_source) == (True, 91.0, "pdu")
    assert Window.objects.filter(machine=machine).count() == 1


def test_a_key_repeated_in_one_call_keeps_its_last_row(floor):
    (machine,) = live_machines(floor, 1)

    written = storage.write_windows([window(machine, T0, hashrate_ths=1.0), window(machine, T0, hashrate_ths=2.0)])

    assert written == 1
    assert Window.objects.get(machine=machine, start=T0).hashrate_ths == 2.0


def test_many_batches_and_twice_in_one_transaction(floor, monkeypatch):
    monkeypatch.setattr(storage, "BATCH", 3)
    machines = live_machines(floor, 4)
    rows = [window(m, T0 + n * STEP) for m in machines for n in range(5)]

    with transaction.atomic():  # the staging table of one batch never gets in the next one's way
        assert storage.write_windows(rows) == 20
        assert storage.write_windows(rows[:7]) == 7

    assert Window.objects.count() == 20


def test_circuit_windows_are_upserted(floor):
    circuit = Circuit.objects.get(pk=floor["circuits"][0].pk)
    site = floor["site"]
    storage.write_circuit_windows([CircuitWindow(start=T0, circuit=circuit, site=site, measured_w=None)])

    storage.write_circuit_windows([CircuitWindow(start=T0, circuit=circuit, site=site, measured_w=9_750.0,
                                                 outlets_read=3)])  # fmt: skip

    row = CircuitWindow.objects.get()
    assert (row.measured_w, row.outlets_read) == (9_750.0, 3)


@pytest.mark.postgres
def test_postgres_copies_into_a_staging_table_then_upserts(floor):
    machines = live_machines(floor, 3)
    storage.write_windows([unknown(m, T0) for m in machines])

    with CaptureQueriesContext(connection) as queries:
        storage.write_windows([window(m, T0) for m in machines])

    statements = [q["sql"] for q in queries.captured_queries]
    assert any(s.startswith("CREATE TEMPORARY TABLE telemetry_window_in") for s in statements)
    (upsert,) = [s for s in statements if s.startswith("INSERT INTO telemetry_window ")]
    assert "FROM telemetry_window_in ON CONFLICT" in upsert
    assert not any("VALUES" in s for s in statements)  # the rows came by COPY, not as an INSERT's values
    assert Window.objects.filter(reachable=True).count() == 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.telemetry_window_in')")
        assert cursor.fetchone()[0] is None  # dropped with its batch
