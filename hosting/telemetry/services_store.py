"""Telemetry storage upkeep: partitions ahead and retention, unknown windows, rollups.

Each function is safe to run twice and concurrently: partitions are created if missing;
accounting and rollups lock the site's TelemetryPolicy row, do only what its bookkeeping
says is still missing, and move it forward in the same transaction; every write is an
upsert keyed like the table (re-rolling an hour gives the same row, never a second one).

PostgreSQL: the raw windows live in day partitions (created ahead, dropped whole by
retention: DETACH + DROP, never DELETE) and the machine-hours in month partitions kept for
years. SQLite has plain tables: retention deletes the old rows instead.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from capacity.models import Site
from hosting.models import Machine
from hosting.telemetry import partitions
from hosting.telemetry.models import CircuitWindow, PollRun, TelemetryPolicy, Window
from hosting.telemetry.partitions import Partitioned
from hosting.telemetry.rollups import DAY, HOUR, UTC, due_windows, hour_start, window_start

log = logging.getLogger(__name__)

INTERVALS_PER_TRANSACTION = 12  # unknown fill: an hour of 5-minute windows per lock
HOURS_PER_TRANSACTION = 6  # machine-hours rolled per statement and lock
DAYS_PER_TRANSACTION = 7


# --- Partitions (PostgreSQL) --------------------------------------------------------------


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _literal(at: dt.datetime) -> str:
    return "'" + at.astimezone(UTC).isoformat() + "'"  # our own datetimes: DDL takes no parameters


def partitions_of(spec: Partitioned) -> list[str]:
    """The names of a parent's partitions (the default one included), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [spec.table],
        )
        return [name for (name,) in cursor.fetchall()]


def _spans_in_default(spec: Partitioned) -> list[tuple[dt.datetime, dt.datetime]]:
    """Partitions the rows that fell into the default partition belong to (normally none)."""
    unit = "day" if spec.span == "day" else "month"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('{unit}', {spec.column}, 'UTC') FROM {spec.default}"  # noqa: S608
        )
        return [spec.bounds(at) for (at,) in cursor.fetchall()]


def _create_partition(spec: Partitioned, start: dt.datetime, end: dt.datetime) -> None:
    """Build the partition beside the parent and ATTACH it (a weaker lock on the parent
    than CREATE … PARTITION OF); rows the default partition caught for it move in first."""
    name = spec.name(start)
    bounds = f"FROM ({_literal(start)}) TO ({_literal(end)})"
    in_range = f"{spec.column} >= {_literal(start)} AND {spec.column} < {_literal(end)}"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {name} (LIKE {spec.table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {spec.default} WHERE {in_range})")  # noqa: S608
        if cursor.fetchone()[0]:
            cursor.execute(f"LOCK TABLE {spec.default} IN SHARE ROW EXCLUSIVE MODE")  # no new rows meanwhile
            cursor.execute(f"INSERT INTO {name} SELECT * FROM {spec.default} WHERE {in_range}")  # noqa: S608
            cursor.execute(f"DELETE FROM {spec.default} WHERE {in_range}")  # noqa: S608 - moved, not expired
            log.warning("telemetry: moved %s rows of %s out of %s", cursor.rowcount, name, spec.default)
        # The parent's indexes (its primary key too) are built on the partition as it attaches.
        cursor.execute(f"ALTER TABLE {spec.table} ATTACH PARTITION {name} FOR VALUES {bounds}")


def ensure_partitions(days_ahead: int | None = None, *, now: dt.datetime | None = None) -> list[str]:
    """Create the partitions from today to `days_ahead` days ahead (day partitions of the
    windows, month partitions of the machine-hours), and those for rows the default
    partition caught; return the names created. Nothing to do on SQLite."""
    if not _postgres():
        return []
    if days_ahead is None:
        days_ahead = settings.TELEMETRY_PARTITIONS_AHEAD_DAYS
    today = (now or timezone.now()).astimezone(UTC).date()
    created = []
    for spec in partitions.PARTITIONED:
        existing = set(partitions_of(spec))
        wanted = set(spec.covering(today, today + dt.timedelta(days=days_ahead))) | set(_spans_in_default(spec))
        for start, end in sorted(wanted):
            if spec.name(start) not in existing:
                _create_partition(spec, start, end)
                created.append(spec.name(start))
    if created:
        log.info("telemetry: created partitions %s", ", ".join(created))
    return created


def retention_cutoff(raw_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """Raw windows before this go: today and the `raw_days` whole days before it stay."""
    today = (now or timezone.now()).astimezone(UTC).date()
    cutoff = today - dt.timedelta(days=raw_days)
    return dt.datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)


def drop_expired(raw_days: int | None = None, *, now: dt.datetime | None = None) -> list[str]:
    """Retention of the raw windows (machine and circuit), `TELEMETRY_RAW_DAYS` by default.

    PostgreSQL: every day partition wholly before the cutoff is detached and dropped (no
    row-by-row DELETE, no bloat, no vacuum); returns their names. The rollups are kept.
    SQLite: the old rows are deleted (plain tables); returns the tables touched."""
    if raw_days is None:
        raw_days = settings.TELEMETRY_RAW_DAYS
    cutoff = retention_cutoff(raw_days, now)
    if not _postgres():
        touched = []
        for model in (Window, CircuitWindow):
            deleted, _ = model.objects.filter(start__lt=cutoff).delete()
            if deleted:
                touched.append(model._meta.db_table)
        return touched
    dropped = []
    for spec in partitions.RAW:
        for name in partitions_of(spec):
            bounds = spec.parse(name)
            if bounds is None or bounds[1] > cutoff:
                continue
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {spec.table} DETACH PARTITION {name}")
                cursor.execute(f"DROP TABLE {name}")
            dropped.append(name)
    if dropped:
        log.info("telemetry: dropped expired partitions %s", ", ".join(dropped))
    return dropped


def maintain_partitions(now: dt.datetime | None = None) -> dict[str, list[str]]:
    return {"created": ensure_partitions(now=now), "dropped": drop_expired(now=now)}


# --- The site's bookkeeping -----------------------------------------------------------------


def policy_for(site: Site) -> TelemetryPolicy:
    """The site's policy, created with defaults on first use."""
    policy, _ = TelemetryPolicy.objects.get_or_create(site=site)
    return policy


def _locked_policy(site: Site) -> TelemetryPolicy:
    return TelemetryPolicy.objects.select_for_update().get(site=site)


def _start_accounting(policy: TelemetryPolicy, now: dt.datetime) -> None:
    """First use of a site: accounting starts at the current interval (pre-telemetry
    history is not backfilled with unknowns); rollups start at the hour of its first poll."""
    current = window_start(now, policy.poll_interval_s)
    first_poll = (
        PollRun.objects.filter(site_id=policy.site_id, window_start__gte=current - DAY)
        .order_by("window_start")
        .values_list("window_start", flat=True)
        .first()
    )
    origin = hour_start(min(current, first_poll or current))
    policy.filled_until = current
    policy.hours_rolled_until = policy.hours_rolled_until or origin
    policy.days_rolled_until = policy.days_rolled_until or origin.date()
    policy.save(update_fields=["filled_until", "hours_rolled_until", "days_rolled_until"])


def _dt(at: dt.datetime):
    return connection.ops.adapt_datetimefield_value(at)


# --- Unknown windows ------------------------------------------------------------------------


def fill_unknown(site: Site, now: dt.datetime | None = None, *, grace_s: int | None = None) -> int:
    """Write an unknown window (reachable NULL) for every interval of the site that ended
    more than `grace_s` ago and is at or after `filled_until`, for every machine watched
    then that has no window for it; advance `filled_until`. Returns the unknowns written.

    A poll that wrote a window is never overwritten (ON CONFLICT DO NOTHING); a poll that
    writes later replaces the unknown (storage.write_windows upserts)."""
    now = now or timezone.now()
    grace_s = settings.TELEMETRY_UNKNOWN_GRACE_S if grace_s is None else grace_s
    policy_for(site)
    written = 0
    while True:
        with transaction.atomic():
            policy = _locked_policy(site)
            if policy.filled_until is None:
                _start_accounting(policy, now)
                return written
            step = dt.timedelta(seconds=policy.poll_interval_s)
            first = policy.filled_until
            if window_start(first, policy.poll_interval_s) != first:  # the interval changed since
                first = window_start(first, policy.poll_interval_s) + step
            starts = due_windows(first, now, policy.poll_interval_s, grace_s, INTERVALS_PER_TRANSACTION)
            if not starts:
                return written
            for start in starts:
                written += _write_unknown(site, start)
            policy.filled_until = starts[-1] + step
            policy.save(update_fields=["filled_until"])


def _write_unknown(site: Site, start: dt.datetime) -> int:
    """One interval's unknowns, in one INSERT … SELECT over the machines watched then."""
    machines = (
        Machine.objects.watched()
        .filter(slot__rack__site=site, status_changed_at__lte=start)
        .order_by()
        .values_list("pk", "contract_id", "status")
    )
    sql, params = machines.query.sql_with_params()
    insert = f"""
        INSERT INTO telemetry_window (start, site_id, machine_id, contract_id, machine_status, power_source, errors)
        SELECT %s, %s, m.*, '', '' FROM ({sql}) m WHERE 1 = 1
        ON CONFLICT (start, machine_id) DO NOTHING
    """  # noqa: S608 - the ORM's own SQL
    with connection.cursor() as cursor:
        cursor.execute(insert, [_dt(start), site.pk, *params])
        return cursor.rowcount


# --- Rollups --------------------------------------------------------------------------------


def _hour_of(column: str) -> str:
    if _postgres():
        return f"date_trunc('hour', {column}, 'UTC')"
    return f"strftime('%%Y-%%m-%%d %%H:00:00', {column})"  # Django's SQLite datetime text


def _day_of(column: str) -> str:
    return f"({column} AT TIME ZONE 'UTC')::date" if _postgres() else f"date({column})"


def _upsert_set(columns: list[str]) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in columns)


HOUR_COLUMNS = [
    "site_id", "contract_id", "windows", "windows_unknown", "windows_reachable", "windows_hashing",
    "hashrate_ths_avg", "power_w_avg", "energy_wh", "chip_temp_max_c",
]  # fmt: skip


def _roll_hours(site: Site, start: dt.datetime, end: dt.datetime, interval_s: int) -> int:
    """The machine-hours of [start, end) from the site's windows (the rules of rollups.roll_hour)."""
    known_w = "CASE WHEN reachable THEN power_w WHEN NOT reachable THEN 0.0 END"
    sql = f"""
        INSERT INTO telemetry_machinehour (hour, machine_id, {", ".join(HOUR_COLUMNS)})
        SELECT * FROM (
            SELECT {_hour_of("start")} AS hour, machine_id, %s AS site_id, MAX(contract_id),
                   COUNT(*),
                   SUM(CASE WHEN reachable IS NULL THEN 1 ELSE 0 END),
                   SUM(CASE WHEN reachable THEN 1 ELSE 0 END),
                   SUM(CASE WHEN hashing THEN 1 ELSE 0 END),
                   AVG(CASE WHEN reachable THEN COALESCE(hashrate_ths, 0.0) WHEN NOT reachable THEN 0.0 END),
                   AVG({known_w}),
                   COALESCE(SUM({known_w}), 0.0) * %s / 3600.0,
                   MAX(chip_temp_max_c)
            FROM telemetry_window
            WHERE site_id = %s AND start >= %s AND start < %s
            GROUP BY 1, 2
        ) AS rolled WHERE 1 = 1
        ON CONFLICT (hour, machine_id) DO UPDATE SET {_upsert_set(HOUR_COLUMNS)}
    """  # noqa: S608 - our own names
    with connection.cursor() as cursor:
        cursor.execute(sql, [site.pk, interval_s, site.pk, _dt(start), _dt(end)])
        return cursor.rowcount


DAY_COLUMNS = [
    "machines", "windows", "windows_unknown", "windows_reachable", "windows_hashing", "hashrate_ths_avg", "energy_wh",
]  # fmt: skip
CIRCUIT_DAY_COLUMNS = ["measured_w_peak", "measured_w_avg", "energy_wh"]


def _roll_days(site: Site, start: dt.datetime, end: dt.datetime, interval_s: int) -> int:
    """Contract-days and circuit-days of the hours in [start, end) (rollups.roll_day, roll_circuit_day)."""
    contract_days = f"""
        INSERT INTO telemetry_contractday (day, contract_id, {", ".join(DAY_COLUMNS)})
        SELECT * FROM (
            SELECT {_day_of("hour")} AS day, contract_id, COUNT(DISTINCT machine_id),
                   SUM(windows), SUM(windows_unknown), SUM(windows_reachable), SUM(windows_hashing),
                   SUM(hashrate_ths_avg)
                       / NULLIF(COUNT(DISTINCT CASE WHEN hashrate_ths_avg IS NOT NULL THEN hour END), 0),
                   SUM(energy_wh)
            FROM telemetry_machinehour
            WHERE site_id = %s AND hour >= %s AND hour < %s
            GROUP BY 1, 2
        ) AS rolled WHERE 1 = 1
        ON CONFLICT (contract_id, day) DO UPDATE SET {_upsert_set(DAY_COLUMNS)}
    """  # noqa: S608
    circuit_days = f"""
        INSERT INTO telemetry_circuitday (day, circuit_id, {", ".join(CIRCUIT_DAY_COLUMNS)})
        SELECT * FROM (
            SELECT {_day_of("start")} AS day, circuit_id, MAX(measured_w), AVG(measured_w),
                   COALESCE(SUM(measured_w), 0.0) * %s / 3600.0
            FROM telemetry_circuitwindow
            WHERE site_id = %s AND start >= %s AND start < %s
            GROUP BY 1, 2
        ) AS rolled WHERE 1 = 1
        ON CONFLICT (circuit_id, day) DO UPDATE SET {_upsert_set(CIRCUIT_DAY_COLUMNS)}
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(contract_days, [site.pk, _dt(start), _dt(end)])
        written = cursor.rowcount
        cursor.execute(circuit_days, [interval_s, site.pk, _dt(start), _dt(end)])
        return written + cursor.rowcount


def roll_up_hours(site: Site, until: dt.datetime | None = None) -> int:
    """Roll the site's complete hours into MachineHour: those before `until` (now) that
    accounting has closed (before `filled_until`: every window written or unknown).
    Moves `hours_rolled_until` forward; returns the machine-hours written."""
    until = until or timezone.now()
    policy_for(site)
    written = 0
    while True:
        with transaction.atomic():
            policy = _locked_policy(site)
            if policy.filled_until is None or policy.hours_rolled_until is None:
                return written  # accounting has not started: nothing is complete yet
            limit = hour_start(min(until, policy.filled_until))
            start = policy.hours_rolled_until
            if start >= limit:
                return written
            end = min(limit, start + HOURS_PER_TRANSACTION * HOUR)
            written += _roll_hours(site, start, end, policy.poll_interval_s)
            policy.hours_rolled_until = end
            policy.save(update_fields=["hours_rolled_until"])


def roll_up_days(site: Site, until: dt.datetime | None = None) -> int:
    """Roll the machine-hours (and circuit windows) rolled so far into ContractDay and
    CircuitDay. The day in progress is rolled too, as far as its hours are, and rolled again
    next time; `days_rolled_until` moves only past whole days. Returns the rows written."""
    until = until or timezone.now()
    policy_for(site)
    written = 0
    while True:
        with transaction.atomic():
            policy = _locked_policy(site)
            if policy.hours_rolled_until is None or policy.days_rolled_until is None:
                return written
            day = policy.days_rolled_until
            start = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
            limit = min(until, policy.hours_rolled_until)
            if start >= limit:
                return written
            end = min(limit, start + DAYS_PER_TRANSACTION * DAY)
            written += _roll_days(site, start, end, policy.poll_interval_s)
            complete = end.astimezone(UTC).date()  # the first day not wholly rolled
            if complete == day:
                return written  # only the day in progress: rolled, the pointer stays
            policy.days_rolled_until = complete
            policy.save(update_fields=["days_rolled_until"])
