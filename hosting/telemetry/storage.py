"""Where windows are written: the one write path of the poller (and of the benchmark).

On PostgreSQL each batch is COPY'd into a temporary staging table, then moved with one
`INSERT … SELECT … ON CONFLICT (start, machine) DO UPDATE` into the partitioned table (a
late real poll replaces an unknown window written earlier; COPY alone cannot upsert). On
SQLite it is Django's bulk upsert. Either way a key repeated within a call keeps its last row
(an upsert may not touch a row twice in one statement).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from operator import attrgetter

from django.db import connection, models, transaction

from hosting.telemetry.models import CircuitWindow, Window

BATCH = 10_000  # rows per COPY + INSERT: big enough to amortise a round trip, small enough to stay in memory

WINDOW_FIELDS = [f.name for f in Window._meta.concrete_fields if f.name not in ("start", "machine")]
CIRCUIT_FIELDS = [f.name for f in CircuitWindow._meta.concrete_fields if f.name not in ("start", "circuit")]


def write_windows(rows: Iterable[Window]) -> int:
    """Insert windows; a window already there (an unknown filled in earlier) is replaced."""
    return _upsert(Window, ("start", "machine"), WINDOW_FIELDS, rows)


def write_circuit_windows(rows: Iterable[CircuitWindow]) -> int:
    """Insert circuit windows; one already there for the same circuit and start is replaced."""
    return _upsert(CircuitWindow, ("start", "circuit"), CIRCUIT_FIELDS, rows)


def _upsert(model: type[models.Model], key: tuple[str, str], fields: list[str], rows: Iterable) -> int:
    key_columns = [str(model._meta.get_field(name).column) for name in key]  # type: ignore[union-attr]
    written = 0
    iterator = iter(rows)
    while batch := list(islice(iterator, BATCH)):
        unique = list({tuple(getattr(row, c) for c in key_columns): row for row in batch}.values())
        if connection.vendor == "postgresql":
            _copy_upsert(model, key_columns, unique)
        else:
            model._default_manager.bulk_create(
                unique, update_conflicts=True, unique_fields=list(key), update_fields=fields
            )
        written += len(unique)
    return written


def _copy_upsert(model: type[models.Model], key_columns: Sequence[str], rows: Sequence[models.Model]) -> None:
    meta = model._meta
    fields = list(meta.concrete_fields)
    columns = [str(f.column) for f in fields]
    table = meta.db_table
    staging = f"{table}_in"
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    updates = ", ".join(
        f"{connection.ops.quote_name(c)} = EXCLUDED.{connection.ops.quote_name(c)}"
        for c in columns
        if c not in key_columns
    )
    conflict = ", ".join(connection.ops.quote_name(c) for c in key_columns)
    # Raw attribute values, not get_db_prep_save per field: that costs more than the COPY
    # itself. Windows hold aware datetimes, ids, numbers, text (a TextChoices value is a str).
    values = attrgetter(*(f.attname for f in fields))
    with transaction.atomic(), connection.cursor() as cursor:
        # A fresh staging table per batch (dropped here, and by ON COMMIT DROP if we fail):
        # it always has the table's current columns, whatever migration ran since.
        cursor.execute(f"CREATE TEMPORARY TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
        with cursor.cursor.copy(f"COPY {staging} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(values(row))
        cursor.execute(
            f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM {staging} "  # noqa: S608 - our own names
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
        cursor.execute(f"DROP TABLE {staging}")
