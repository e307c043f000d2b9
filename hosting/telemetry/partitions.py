"""Range partitions of the telemetry tables on PostgreSQL: which tables, by what, named how.

The raw windows (`telemetry_window`, `telemetry_circuitwindow`) are partitioned by day on
`start` and dropped whole by retention; the machine-hours by month on `hour`, kept for
years. Each parent has a DEFAULT partition, so a row whose partition does not exist yet is
still written (the periodic maintenance moves it out and creates partitions ahead).

This module is free of models and of the database so the migration can import it and the
naming rules can be tested without PostgreSQL. On SQLite the same tables are plain tables.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.migrations.operations import CreateModel

UTC = dt.UTC


@dataclass(frozen=True)
class Partitioned:
    """A parent table, its range column and the span of one partition ("day" or "month")."""

    table: str
    column: str
    span: str

    @property
    def default(self) -> str:
        return f"{self.table}_default"

    def bounds(self, at: dt.datetime | dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The [start, end) in UTC of the partition holding `at`."""
        day = at.astimezone(UTC).date() if isinstance(at, dt.datetime) else at
        if self.span == "day":
            start = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, start + dt.timedelta(days=1)
        start = dt.datetime(day.year, day.month, 1, tzinfo=UTC)
        end = dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
        return start, end

    def name(self, start: dt.datetime) -> str:
        return f"{self.table}_p{start:%Y%m%d}" if self.span == "day" else f"{self.table}_p{start:%Y%m}"

    def parse(self, name: str) -> tuple[dt.datetime, dt.datetime] | None:
        """The bounds a partition's name stands for; None for the default or a stranger."""
        digits = 8 if self.span == "day" else 6
        match = re.fullmatch(rf"{re.escape(self.table)}_p(\d{{{digits}}})", name)
        if not match:
            return None
        value = match.group(1)
        day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:]) if self.span == "day" else 1)
        return self.bounds(day)

    def covering(self, first: dt.date, last: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """Every partition's bounds from the one holding `first` to the one holding `last`."""
        spans = []
        start, end = self.bounds(first)
        while start.date() <= last:
            spans.append((start, end))
            start, end = self.bounds(end)
        return spans


WINDOW = Partitioned("telemetry_window", "start", "day")
CIRCUIT_WINDOW = Partitioned("telemetry_circuitwindow", "start", "day")
MACHINE_HOUR = Partitioned("telemetry_machinehour", "hour", "month")
PARTITIONED = (WINDOW, CIRCUIT_WINDOW, MACHINE_HOUR)
RAW = (WINDOW, CIRCUIT_WINDOW)  # dropped by retention; the rollups are kept


class CreatePartitionedModel(CreateModel):
    """CreateModel that, on PostgreSQL, makes the table `PARTITION BY RANGE (column)` with a
    DEFAULT partition; elsewhere a plain table. The model state is CreateModel's, so
    `makemigrations` sees nothing to change."""

    def __init__(self, name, fields, *, partition_column: str, **kwargs):
        self.partition_column = partition_column
        super().__init__(name, fields, **kwargs)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        kwargs["partition_column"] = self.partition_column
        return name, args, kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return None
        table = model._meta.db_table
        column = model._meta.get_field(self.partition_column).column
        quote = schema_editor.quote_name
        table_sql = schema_editor.table_sql

        def partitioned_table_sql(m):
            sql, params = table_sql(m)
            if m._meta.db_table == table:
                sql = f"{sql} PARTITION BY RANGE ({quote(column)})"
            return sql, params

        schema_editor.table_sql = partitioned_table_sql
        try:
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        finally:
            del schema_editor.table_sql  # back to the class's method
        schema_editor.execute(f"CREATE TABLE {quote(table + '_default')} PARTITION OF {quote(table)} DEFAULT")
        return None

    def describe(self):
        return f"Create model {self.name} (range-partitioned on {self.partition_column} on PostgreSQL)"
