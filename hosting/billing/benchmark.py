"""`make bench --only billing`: a month invoiced from the machine-days at 2.5 GW.

Each dataset is the quotes bench's floor (`hosting.benchmark.seed`: sites, contracts of
200 live machines each in their slots), with machine models of the catalog mixed in, each
contract's terms (metered, nameplate or flat), last month's issued invoice stubbed (setup
fees already billed), and one machine-day per live machine per day of this month's period
— the rollup's rows, made by INSERT … SELECT inside PostgreSQL. `run_invoices` then invoices
and issues every contract, end to end, as the beat would on the billing day.

Invoicing reads MachineDay, never the windows: the same machine-days rolled from 60 s
windows (5 × as many) bill in the same time and to the same cent. The part that does read
windows — `roll_up_machine_days`, once a day per site — is timed on one site-day of real
`telemetry_window` rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from capacity.layout import HallLayout
from capacity.models import Site
from hosting import benchmark
from hosting.benchmark import Scale
from hosting.billing import rules, services
from hosting.billing.models import (
    ContractTerms,
    FlatFee,
    Invoice,
    InvoiceLine,
    InvoiceMachine,
    Levy,
    MachineDay,
    RollupCursor,
)
from hosting.models import Contract, Machine, MachineModel

# Machine models no hungrier than the S19 Pro the floors were built for: circuits stay in their limits.
MODELS = ("antminer-s19-pro", "antminer-s19", "antminer-s19j-pro", "antminer-s19-xp")
FLAT_FEES = {"antminer-s19-pro": "118.00", "antminer-s19": "112.00", "antminer-s19j-pro": "105.00",
             "antminer-s19-xp": "101.50"}  # fmt: skip
WINDOW_S = 300
TARGET_S = 60.0

SIZES = {
    # 200 machines a contract in the two full sizes: contracts × days grows 5 ×.
    "large": benchmark.SCALES["large"],  # 20 sites, 500,000 live machines, 2,500 current contracts
    "medium": Scale("medium", 20, Decimal(20), Decimal(5), HallLayout(feeds=11), 5_000, 25, 2, 2, (1, 8)),
    # --quick: 20 machines a contract.
    "quick": Scale("quick", 20, Decimal(2), Decimal("0.5"), HallLayout(feeds=1), 500, 25, 2, 1, (1, 8)),
    "small": benchmark.SCALES["small"],  # 2,000 machines, 100 contracts
    # The test suite's.
    "tiny": Scale(
        "tiny", 2, Decimal("0.4"), Decimal("0.1"), HallLayout(feeds=1, racks_per_feed=5), 100, 5, 2, 1, (1, 8)
    ),
}
PAIRS = {"full": ("medium", "large"), "quick": ("small", "quick")}


def billing_now(today: dt.date | None = None) -> dt.datetime:
    """The run's moment: 06:00 UTC on the 1st of this month (every site is in UTC)."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    return dt.datetime(today.year, today.month, 1, 6, tzinfo=dt.UTC)


def _period(now: dt.datetime) -> tuple[dt.date, dt.date]:
    return services.month_of(services.month_of(now.date())[0] - dt.timedelta(days=1))


def _sql(sql: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _one(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


# --- Seeding ----------------------------------------------------------------------------------


def seed_billing(size: str, log=print) -> dict:
    """The dataset of `size` from an empty, migrated database."""
    started = time.perf_counter()
    built = benchmark.seed(SIZES[size], log=log)
    now = billing_now()
    period_start, period_end = _period(now)
    models = {m.slug: m for m in MachineModel.objects.filter(slug__in=MODELS)}
    ids = [models[slug].pk for slug in MODELS]
    # A model per contract, and a second one on half the machines of every fourth contract.
    _sql(
        "UPDATE hosting_machine SET model_id = (%s::bigint[])"
        "[(contract_id + CASE WHEN contract_id %% 4 = 0 AND id %% 2 = 0 THEN 1 ELSE 0 END) %% 4 + 1]",
        [ids],
    )
    _sql(
        "UPDATE capacity_slot s SET allocated_w = mm.nameplate_power_w FROM hosting_machine m "
        "JOIN hosting_machinemodel mm ON mm.id = m.model_id WHERE m.slot_id = s.id"
    )
    contracts = list(Contract.objects.filter(status="active").order_by("pk"))
    _terms(contracts, period_start, models)
    for site in Site.objects.order_by("pk")[:2]:  # a levy on the energy at two sites
        Levy.objects.create(
            site=site, name="Mining power tax", currency="KZT", per_kwh=Decimal(1),
            to_billing_currency=Decimal("0.0019"), effective_from=dt.date(2022, 1, 1),
        )  # fmt: skip
    _previous_invoices(contracts, period_start)
    days = _seed_machine_days(period_start, period_end)
    log(f"  billing: {days:,} machine-days in {time.perf_counter() - started:.0f} s")
    _policies(period_end)
    _sql("ANALYZE")
    return {
        "size": size, "machines": built["machines"], "contracts": len(contracts), "sites": built["sites"],
        "machine_days": days, "period": f"{period_start:%Y-%m}", "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip


def _terms(contracts: list[Contract], period_start: dt.date, models: dict[str, MachineModel]) -> None:
    """6 in 10 metered, 2 nameplate, 2 flat; one in five curtailable for 10 h a month; a
    deposit and the list setup fee for contracts that began in the period (their first invoice)."""
    terms = []
    for c in contracts:
        mode = ("metered",) * 6 + ("nameplate",) * 2 + ("flat",) * 2
        first = c.starts_on >= period_start
        terms.append(
            ContractTerms(
                contract=c, billing_mode=mode[c.pk % 10], deposit_months=Decimal(1) if first else Decimal(0),
                setup_fee_per_machine=None if first else Decimal(0),
                curtailment_priority=1 if c.pk % 5 == 0 else None, max_curtailed_hours_month=10,
                sla_basis="hashing" if c.pk % 3 else "reachable",
            )
        )  # fmt: skip
    ContractTerms.objects.bulk_create(terms, batch_size=5000)
    FlatFee.objects.bulk_create(
        FlatFee(terms=t, machine_model=models[slug], fee_per_month=Decimal(fee))
        for t in terms
        if t.billing_mode == "flat"
        for slug, fee in FLAT_FEES.items()
    )


def _previous_invoices(contracts: list[Contract], period_start: dt.date) -> None:
    """Last month's invoice, issued, for every contract that began before the period, and
    its machines' setup charges: this month's invoice is a contract's usual one."""
    before = period_start - dt.timedelta(days=1)
    start, end = services.month_of(before)
    older = [c for c in contracts if c.starts_on < period_start]
    issued = timezone.now() - dt.timedelta(days=25)
    invoices = Invoice.objects.bulk_create(
        (
            Invoice(
                contract=c, tenant_id=c.tenant_id, site_id=c.site_id, period_start=start, period_end=end,
                currency="USD", status="paid", number=f"PREV-{c.pk:06d}", issued_at=issued, paid_at=issued,
                hosting_amount=Decimal(1000), total_amount=Decimal(1000),
            )
            for c in older
        ),
        batch_size=5000,
    )  # fmt: skip
    of_contract = {i.contract_id: i.pk for i in invoices}
    benchmark._copy(
        "billing_setupcharge",
        ["machine_id", "invoice_id"],
        (
            (pk, of_contract[contract_id])
            for pk, contract_id in Machine.objects.filter(contract_id__in=of_contract).values_list("pk", "contract_id")
        ),
    )


# One machine-day per live machine per day of the period, from its contract's start (and for
# one machine in 50, from the 15th): a few unknown and unreachable windows most days, a
# machine in 33 down a whole day now and then, curtailable contracts curtailed 4 h every
# 7th day, one machine in 1,000 in RMA for 3 days; PDU energy, miner-reported for 1 in 10.
MACHINE_DAYS = """
INSERT INTO billing_machineday (day, machine_id, contract_id, site_id, window_s, windows, windows_curtailed,
    windows_rma, windows_maintenance, windows_unknown, windows_reachable, windows_hashing,
    energy_wh_pdu, energy_wh_miner, energy_wh_nameplate)
SELECT d.day, m.id, m.contract_id, c.site_id, %(window_s)s, n.per_day, x.curtailed, x.rma, 0, x.unknown,
       x.counted - x.unknown - x.down, GREATEST(x.counted - x.unknown - x.down - h.v %% 3, 0),
       CASE WHEN m.id %% 10 <> 0 THEN x.wh ELSE 0 END, CASE WHEN m.id %% 10 = 0 THEN x.wh ELSE 0 END, 0
FROM hosting_machine m
JOIN hosting_contract c ON c.id = m.contract_id
JOIN hosting_machinemodel mm ON mm.id = m.model_id
JOIN billing_contractterms t ON t.contract_id = c.id
CROSS JOIN generate_series(%(start)s::date, %(end)s::date - 1, interval '1 day') AS g(ts)
CROSS JOIN LATERAL (SELECT g.ts::date AS day, (extract(day FROM g.ts))::int AS n) d
CROSS JOIN LATERAL (SELECT 86400 / %(window_s)s AS per_day, 300 / %(window_s)s AS k) n
CROSS JOIN LATERAL (SELECT ((m.id * 7919 + d.n * 104729) %% 1000)::int AS v) h
CROSS JOIN LATERAL (
    SELECT curtailed, rma, unknown, down, counted,
           (counted - unknown - down) * mm.nameplate_power_w * %(window_s)s / 3600.0 * (0.95 + (h.v %% 7) / 100.0)
           AS wh
    FROM (
        SELECT curtailed, rma,
               CASE WHEN rma > 0 THEN 0 WHEN h.v %% 7 = 0 THEN (h.v %% 5 + 1) * n.k ELSE 0 END AS unknown,
               CASE WHEN rma > 0 THEN 0
                    WHEN h.v < 30 AND m.id %% 33 = 0 THEN n.per_day - curtailed - (h.v %% 5 + 1) * n.k
                    ELSE (h.v %% 4) * n.k END AS down,
               n.per_day - curtailed - rma AS counted
        FROM (
            SELECT CASE WHEN in_rma THEN 0 WHEN t.curtailment_priority IS NOT NULL AND d.n %% 7 = 3 THEN 48 * n.k
                        ELSE 0 END AS curtailed,
                   CASE WHEN in_rma THEN n.per_day ELSE 0 END AS rma
            FROM (SELECT m.id %% 1000 = 1 AND d.n BETWEEN 10 AND 12 AS in_rma) r
        ) s0
    ) s1
) x
WHERE m.status = 'live' AND d.day >= c.starts_on AND (m.id %% 50 <> 0 OR d.n >= 15)
"""


def _seed_machine_days(start: dt.date, end: dt.date) -> int:
    rows = _sql(MACHINE_DAYS, {"window_s": WINDOW_S, "start": start, "end": end})
    _sql("ANALYZE billing_machineday")
    return rows


def _policies(rolled_until: dt.date) -> None:
    """Telemetry accounted and billing rolled through the period at every site."""
    from hosting.telemetry.models import TelemetryPolicy

    until = dt.datetime.combine(rolled_until, dt.time(), dt.UTC)
    for site in Site.objects.all():
        TelemetryPolicy.objects.update_or_create(
            site=site, defaults={"poll_interval_s": WINDOW_S, "filled_until": until}
        )
        RollupCursor.objects.update_or_create(site=site, defaults={"rolled_until": rolled_until})


# --- Measuring --------------------------------------------------------------------------------


class Cpu:
    """CPU seconds of this process and of its PostgreSQL backend over a `with` block: what the
    run costs whatever else shares the machine (the wall clock pays for that too)."""

    def __enter__(self) -> Cpu:
        self.backend = _one("SELECT pg_backend_pid()") if connection.vendor == "postgresql" else None
        self.start = (time.process_time(), self._backend_s())
        return self

    def _backend_s(self) -> float:
        try:
            with open(f"/proc/{self.backend}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not on this host's /proc
            return 0.0
        return (int(fields[11]) + int(fields[12])) * benchmark._TICK_S

    def __exit__(self, *exc) -> None:
        self.python_s = round(time.process_time() - self.start[0], 1)
        self.postgres_s = round(self._backend_s() - self.start[1], 1)


def _reset(period_start: dt.date) -> None:
    """Back to no invoice of the period (a kept dataset measures the same work again)."""
    period = "SELECT id FROM billing_invoice WHERE period_start >= %s"
    for table in ("billing_setupcharge", "billing_invoicemachine", "billing_invoiceline"):
        _sql(f"DELETE FROM {table} WHERE invoice_id IN ({period})", [period_start])  # noqa: S608
    _sql("DELETE FROM billing_invoice WHERE period_start >= %s", [period_start])
    _sql("DELETE FROM billing_invoicerun")
    _sql("DELETE FROM billing_invoicecounter")


def _invoice_site(contracts: list[Contract], period_start: dt.date) -> tuple[float, Decimal]:
    """Seconds to invoice (draft) the contracts for the period, and their total."""
    started = time.perf_counter()
    total = sum((services.invoice_month(c, period_start).invoice.total_amount for c in contracts), Decimal(0))
    return time.perf_counter() - started, total


def _scale_windows(contracts: list[Contract], period_start: dt.date, period_end: dt.date, k, window_s: int) -> None:
    """The contracts' machine-days as rolled from windows of `window_s`: counts × k (5 for 60 s, 1/5 back)."""
    op = f"* {k}" if k >= 1 else f"/ {round(1 / k)}"
    counts = ("windows", "windows_curtailed", "windows_rma", "windows_maintenance", "windows_unknown",
              "windows_reachable", "windows_hashing")  # fmt: skip
    _sql(
        f"UPDATE billing_machineday SET window_s = %s, {', '.join(f'{c} = {c} {op}' for c in counts)} "  # noqa: S608
        "WHERE contract_id = ANY(%s) AND day >= %s AND day < %s",
        [window_s, [c.pk for c in contracts], period_start, period_end],
    )


def measure_windows(period_start: dt.date, period_end: dt.date, log=print) -> dict:
    """Ten contracts' month invoiced from machine-days rolled from 300 s windows, then from
    the same machine-days rolled from 60 s windows: the same rows, the same time, the same total."""
    site = Site.objects.order_by("pk").first()
    assert site is not None
    contracts = list(services.billable(site, period_start)[:10])
    days = MachineDay.objects.filter(contract__in=contracts, day__gte=period_start, day__lt=period_end).count()
    figures: dict[int, list[tuple[float, Decimal]]] = {}
    for window_s in (300, 60, 300, 60):
        if window_s == 60:
            _scale_windows(contracts, period_start, period_end, 5, 60)
        seconds, total = _invoice_site(contracts, period_start)
        if window_s == 60:
            _scale_windows(contracts, period_start, period_end, 1 / 5, 300)
        _reset(period_start)
        figures.setdefault(window_s, []).append((seconds, total))
    best = {w: min(s for s, _ in runs) for w, runs in figures.items()}
    totals = {w: {str(t) for _, t in runs} for w, runs in figures.items()}
    log(
        f"  {len(contracts)} contracts ({days:,} machine-days): 300 s windows {best[300]:.2f} s, "
        f"60 s windows {best[60]:.2f} s"
    )
    return {
        "contracts": len(contracts),
        "machine_days": days,
        "s_300": round(best[300], 2),
        "s_60": round(best[60], 2),
        "ratio_60_over_300": round(best[60] / best[300], 2),
        "same_total": totals[300] == totals[60] and len(totals[300]) == 1,
        "total": sorted(totals[300])[0],
    }


WINDOWS = """
INSERT INTO telemetry_window (start, machine_id, site_id, contract_id, machine_status, reachable, hashing,
    hashrate_ths, hashrate_pct, boards_seen, chips_seen, chip_temp_max_c, board_temp_max_c, inlet_temp_c,
    fans_ok, power_w, power_source, uptime_s, errors)
SELECT ts, m.id, %(site)s, m.contract_id, m.state, m.up, m.up AND m.v <> 7,
       CASE WHEN m.up THEN 95 + m.v %% 10 END, CASE WHEN m.up THEN 96 + m.v %% 5 END, CASE WHEN m.up THEN 3 END,
       CASE WHEN m.up THEN 342 END, CASE WHEN m.up THEN 65 + m.v %% 15 END, CASE WHEN m.up THEN 60 + m.v %% 9 END,
       22 + m.v %% 6, m.up, CASE WHEN m.up AND m.state = 'live' THEN 3000 + m.v %% 200 WHEN m.up THEN 40 END,
       CASE WHEN NOT m.up OR m.up IS NULL THEN '' WHEN m.id %% 10 = 0 THEN 'miner' ELSE 'pdu' END,
       CASE WHEN m.up THEN 86400 END, ''
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '5 minutes', interval '5 minutes') ts
CROSS JOIN LATERAL (
    SELECT id, contract_id, v,
           CASE WHEN v < 5 THEN NULL ELSE v >= 15 END AS up,
           CASE WHEN curtailable AND extract(hour FROM ts) BETWEEN 2 AND 5 THEN 'curtailed' ELSE 'live' END AS state
    FROM (
        SELECT m.id, m.contract_id, ((m.id * 7919 + extract(epoch FROM ts)::bigint / 300) %% 1000)::int AS v,
               t.curtailment_priority IS NOT NULL AS curtailable
        FROM hosting_machine m JOIN hosting_contract c ON c.id = m.contract_id
        JOIN billing_contractterms t ON t.contract_id = c.id
        WHERE c.site_id = %(site)s AND m.status = 'live'
    ) w
) m
"""


def measure_rollup(day: dt.date, log=print) -> dict:
    """`roll_up_machine_days` for one site-day of 5-minute windows (0.5 % unknown, 1 %
    unreachable, curtailable contracts curtailed 4 h), the once-a-day part that reads windows."""
    from hosting.telemetry.models import TelemetryPolicy
    from hosting.telemetry.services_store import ensure_partitions

    site = Site.objects.order_by("pk").first()
    assert site is not None
    start, end = services.day_bounds(site, day)
    _sql("TRUNCATE telemetry_window")
    ensure_partitions(0, now=start)
    started = time.perf_counter()
    windows = _sql(WINDOWS, {"site": site.pk, "start": start, "end": end})
    _sql("ANALYZE telemetry_window")
    seed_s = time.perf_counter() - started
    MachineDay.objects.filter(site_id=site.pk, day__gte=day).delete()
    RollupCursor.objects.filter(site=site).update(rolled_until=day)
    TelemetryPolicy.objects.filter(site=site).update(filled_until=end)
    started = time.perf_counter()
    rolled = services.roll_up_machine_days(site, now=end + dt.timedelta(hours=1))
    seconds = time.perf_counter() - started
    machines = Machine.objects.filter(contract__site=site, status="live").count()
    log(f"  rollup: {windows:,} windows of {machines:,} machines seeded in {seed_s:.0f} s, "
        f"rolled into {rolled:,} machine-days in {seconds:.1f} s")  # fmt: skip
    # Back as the invoicing found it: rolled through the period, no windows kept.
    MachineDay.objects.filter(site_id=site.pk, day__gte=day).delete()
    RollupCursor.objects.filter(site=site).update(rolled_until=day)
    TelemetryPolicy.objects.filter(site=site).update(filled_until=start)
    _sql("TRUNCATE telemetry_window")
    return {
        "machines": machines,
        "windows": windows,
        "machine_days": rolled,
        "seconds": round(seconds, 2),
        "windows_per_s": round(windows / seconds) if seconds else None,
    }


def measure_billing(log=print, now: dt.datetime | None = None, rollup: bool = True) -> dict:
    """The whole run on the billing day: every contract invoiced for last month and issued."""
    now = now or billing_now()
    period_start, period_end = _period(now)
    _reset(period_start)
    windows = measure_windows(period_start, period_end, log=log)
    machine_days = MachineDay.objects.filter(day__gte=period_start, day__lt=period_end).count()
    contracts = Contract.objects.filter(status="active").count()
    _sql("CHECKPOINT")  # the seeding's and the windows' writes are not flushed during the run
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    with Cpu() as cpu:
        run = services.run_invoices(now=now, auto_issue=True)
    seconds = time.perf_counter() - started
    invoices = Invoice.objects.filter(period_start=period_start)
    lines = InvoiceLine.objects.filter(invoice__in=invoices).count()
    evidence = InvoiceMachine.objects.filter(invoice__in=invoices).count()
    issued = invoices.filter(status="issued").count()
    days = rules.days_in(period_start)
    log(
        f"  run_invoices: {run.created:,} invoices ({issued:,} issued, {run.failed} failed) of {contracts:,} "
        f"contracts, {lines:,} lines, {evidence:,} invoice machines from {machine_days:,} machine-days "
        f"in {seconds:.1f} s (CPU: Python {cpu.python_s} s, PostgreSQL {cpu.postgres_s} s; "
        f"load {load_before[0]} → {os.getloadavg()[0]:.2f})"
    )
    result = {
        "machines": Machine.objects.filter(status="live").count(),
        "contracts": contracts,
        "days": days,
        "contract_days": contracts * days,
        "machine_days": machine_days,
        "seconds": round(seconds, 2),
        "cpu_python_s": cpu.python_s,
        "cpu_postgres_s": cpu.postgres_s,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "invoices": run.created,
        "issued": issued,
        "failed": run.failed,
        "lines": lines,
        "invoice_machines": evidence,
        "machine_days_per_s": round(machine_days / seconds),
        "ms_per_contract": round(1000 * seconds / max(contracts, 1), 2),
        "windows": windows,
    }
    if rollup:
        result["rollup"] = measure_rollup(period_end, log=log)
    return result


# --- The bench's part -------------------------------------------------------------------------


class BillingBench:
    """Two datasets (`PAIRS`), each in its own database, kept between runs (`--reseed`
    rebuilds); a dataset's invoices are deleted before each measurement."""

    def __init__(self, bench, quick: bool):
        self.bench = bench
        self.sizes = PAIRS["quick" if quick else "full"]

    def name(self, size: str) -> str:
        return f"billing_{size}"

    def env(self, size: str) -> dict:
        mail = self.bench.state / "billing-mail"  # one file per invoice mailed, as an SMTP relay takes them
        return {**self.bench.env(self.name(size)), "DB_CONN_MAX_AGE": "3600", "EMAIL_FILE_PATH": str(mail)}

    def stream(self, size: str, *args: str) -> dict:
        """manage.py bench `args` on the dataset, echoing its progress; what it printed after RESULT."""
        process = subprocess.Popen(  # noqa: S603 - our own argv
            [sys.executable, "manage.py", "bench", *args, "--billing-size", size],
            env=self.env(size),
            stdout=subprocess.PIPE,
            text=True,
        )
        result = None
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line.removeprefix("RESULT "))
            else:
                self.bench.log(line.rstrip("\n"))
        if process.wait() or result is None:
            raise RuntimeError(f"manage.py bench {' '.join(args)} failed on {size}")
        return result

    def migrate(self, size: str) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=self.env(size), check=True)

    def dataset(self, size: str) -> dict:
        marker = self.bench.state / f"{self.name(size)}.json"
        period = f"{_period(billing_now())[0]:%Y-%m}"
        if marker.exists() and not self.bench.reseed:
            kept = json.loads(marker.read_text())
            if kept.get("period") == period:
                self.bench.log(f"dataset {self.name(size)}: reusing (--reseed rebuilds)")
                self.migrate(size)
                return kept
        database = self.bench.db(self.name(size))
        self.bench.log(f"dataset {self.name(size)}: creating {database}")
        self.bench.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self.bench.psql(f"CREATE DATABASE {database}")
        self.migrate(size)
        result = self.stream(size, "--stage", "seed-billing")
        marker.write_text(json.dumps(result))
        return result

    def run(self) -> dict:
        results = {}
        for size in self.sizes:
            data = self.dataset(size)
            self.bench.log(
                f"billing {size}: invoicing {data['contracts']:,} contracts, {data['machines']:,} machines …"
            )
            results[size] = {"dataset": data, **self.stream(size, "--stage", "billing")}
        small, large = (results[s] for s in self.sizes)
        work = large["contract_days"] / small["contract_days"]
        seconds = large["seconds"] / small["seconds"]
        results["ratio"] = {
            "contract_days": round(work, 2),
            "seconds": round(seconds, 2),
            "per_contract_day": round(seconds / work, 2),
        }
        return results

    def report(self, results: dict) -> None:
        log = self.bench.log
        log("")
        sizes = self.sizes
        log(f"{'billing: one month invoiced':36}" + "".join(f"{s:>16}" for s in sizes))
        rows = {
            "live machines": lambda r: f"{r['machines']:,}",
            "contracts (invoices)": lambda r: f"{r['contracts']:,} ({r['invoices']:,})",
            "machine-days read": lambda r: f"{r['machine_days']:,}",
            "run_invoices s": lambda r: f"{r['seconds']}",
            "CPU s: Python + PostgreSQL": lambda r: f"{r['cpu_python_s']} + {r['cpu_postgres_s']}",
            "load average before → after": lambda r: f"{r['load_before'][0]} → {r['load_after'][0]}",
            "ms per contract": lambda r: f"{r['ms_per_contract']}",
            "machine-days read/s": lambda r: f"{r['machine_days_per_s']:,}",
            "lines": lambda r: f"{r['lines']:,}",
            "invoice-machine rows": lambda r: f"{r['invoice_machines']:,}",
            "10 contracts, 300 s windows, s": lambda r: f"{r['windows']['s_300']}",
            "10 contracts, 60 s windows, s": lambda r: f"{r['windows']['s_60']}",
            "rollup of a site-day, windows": lambda r: f"{r['rollup']['windows']:,}",
            "rollup of a site-day, s": lambda r: f"{r['rollup']['seconds']}",
            "rollup windows/s": lambda r: f"{r['rollup']['windows_per_s']:,}",
        }
        for label, cell in rows.items():
            log(f"{label:36}" + "".join(f"{cell(results[s]):>16}" for s in sizes))
        ratio = results["ratio"]
        large = results[sizes[1]]
        log(
            f"{sizes[1]} ÷ {sizes[0]}: contracts × days {ratio['contract_days']} ×, seconds {ratio['seconds']} ×, "
            f"seconds per contract-day {ratio['per_contract_day']} ×"
        )
        self.bench.verdict(
            f"{'invoice a month, ' + format(large['machines'], ',') + ' machines':36} {large['seconds']:>8} s"
            f"   target ≤ {TARGET_S:.0f} s",
            large["seconds"] <= TARGET_S and not large["failed"],
        )
        self.bench.verdict(
            f"{'s per contract-day, ' + sizes[1] + ' ÷ ' + sizes[0]:36} {ratio['per_contract_day']:>8}   target ≤ 1.3",
            ratio["per_contract_day"] <= 1.3,
        )
        windows = large["windows"]
        self.bench.verdict(
            f"{'60 s ÷ 300 s windows (same total)':36} {windows['ratio_60_over_300']:>8}   target ≤ 1.2",
            windows["ratio_60_over_300"] <= 1.2 and windows["same_total"],
        )
