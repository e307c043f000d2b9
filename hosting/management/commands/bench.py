"""`make bench`: seed the datasets on PostgreSQL, serve each with gunicorn, measure
side by side, print the figures and the ratios against their targets."""

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hosting import benchmark
from hosting.billing import benchmark as billing_benchmark

TARGETS = {
    "quote_p99_over_get_p99": 3.0,
    "quote_large_over_small": 1.3,
    "plan_1_5m_s": 30.0,
    "pipeline_s_over_sweep_s": 1.0,  # commissioning 10,000 miners takes no longer than reading them
    "poll_s_over_sweep_s": 0.5,  # a poll reads less than get_data and must show it
    "curtail_s": 60.0,  # issue 11: a signal to the last of 10,000 miners under its sleep draw (resume likewise)
}
# Telemetry storage (issue 9): floors and ceilings.
TELEMETRY_TARGETS = {
    "ingest_windows_per_s": 20_000,  # ≥: 4 × what 1.5 M machines every 5 minutes need
    "read_p99_ms": 50.0,  # ≤: a contract's month, a machine's 30-day chart, at 1 and at 30 days
}


class Command(BaseCommand):
    help = "Benchmark quotes and the planner at 2.5 GW scale on PostgreSQL (make bench)."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="fewer requests (the datasets stay full size)")
        parser.add_argument("--reseed", action="store_true", help="rebuild the datasets even if they exist")
        parser.add_argument("--requests", type=int, default=3000, help="requests per kind per dataset")
        parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
        parser.add_argument(
            "--only",
            choices=["quotes", "commissioning", "telemetry-poll", "telemetry-store", "billing", "curtailment"],
            help="run one part only",
        )
        parser.add_argument(
            "--telemetry-days", type=int, default=30, help="days of windows for 10,000 machines (telemetry-store)"
        )
        parser.add_argument("--machines", type=int, default=10_000, help="emulated miners to commission")
        parser.add_argument(
            "--stage",
            choices=[
                "seed",
                "planner",
                "seed-commissioning",
                "commission",
                "sweep",
                "poll",
                "reset-poll",
                "seed-telemetry-store",
                "telemetry-store",
                "seed-billing",
                "billing",
                "curtail",
                "bare-curtail",
                "reset-curtailment",
            ],
            help=argparse_hidden(),
        )
        parser.add_argument("--scale", choices=sorted(benchmark.SCALES), help=argparse_hidden())
        parser.add_argument("--shard", type=int, default=0, help=argparse_hidden())
        parser.add_argument("--shards", type=int, default=1, help=argparse_hidden())
        parser.add_argument("--poll", type=int, default=0, help=argparse_hidden())
        parser.add_argument("--concurrency", type=int, default=75, help=argparse_hidden())
        parser.add_argument("--barrier", help=argparse_hidden())
        parser.add_argument("--billing-size", choices=sorted(billing_benchmark.SIZES), help=argparse_hidden())

    def handle(self, *args, stage=None, scale=None, shard=0, shards=1, poll=0, billing_size=None, **options):
        # Stages run inside subprocesses whose DATABASE_URL is the dataset's.
        log = self.stdout.write
        ips = [benchmark.fleet_ip(i) for i in range(options["machines"])]
        stages = {
            "seed": lambda: benchmark.seed(benchmark.SCALES[scale], log=log),
            "planner": lambda: benchmark.measure_planner(log=log),
            "seed-commissioning": lambda: benchmark.seed_commissioning(options["machines"], log=log),
            "commission": lambda: benchmark.measure_commissioning(log=log),
            "poll": lambda: benchmark.measure_poll(poll, log=log),
            "reset-poll": benchmark.reset_poll,
            "curtail": lambda: benchmark.measure_curtailment(log=log),
            "reset-curtailment": benchmark.reset_curtailment,
            "seed-telemetry-store": lambda: benchmark.seed_telemetry_store(options["machines"], log=log),
            "telemetry-store": lambda: benchmark.measure_telemetry_store(
                options["machines"], options["telemetry_days"], log=log
            ),
            "seed-billing": lambda: billing_benchmark.seed_billing(billing_size, log=log),
            "billing": lambda: billing_benchmark.measure_billing(log=log),
            "sweep": lambda: benchmark.sweep(ips[shard::shards], concurrency=options["concurrency"]),
            "bare-curtail": lambda: benchmark.bare_curtail(
                ips[shard::shards], options["concurrency"], shard, shards, options["barrier"]
            ),
        }
        if stage:
            self.stdout.write("RESULT " + json.dumps(stages[stage]()))
            return
        Bench(self, **options).run()


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def run_manage(env: dict, *args: str) -> str:
    """manage.py `args` in a subprocess with `env` (a dataset's); its stdout, or CommandError."""
    result = subprocess.run(  # noqa: S603 - our own argv
        [sys.executable, "manage.py", *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise CommandError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def stage_result(stdout: str) -> dict:
    """What a `bench --stage` subprocess printed after RESULT."""
    return json.loads(stdout.split("RESULT ", 1)[1])


class Bench:
    def __init__(self, command, *, quick, reseed, requests, clients, only, machines, telemetry_days=30, **_):
        self.out = command.stdout
        self.style = command.style
        self.reseed = reseed
        self.requests = 300 if quick else requests
        self.clients = clients
        self.only = only
        self.quick = quick
        self.machines = 2_000 if quick else machines
        self.telemetry_days = 2 if quick else telemetry_days
        self.base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        # The datasets' database names start with this: another prefix keeps a second bench
        # (another checkout on the same PostgreSQL) off this one's databases.
        self.prefix = os.environ.get("BENCH_DB_PREFIX", "haven_bench")
        self.state = Path(settings.VAR_DIR) / "bench"
        self.state.mkdir(parents=True, exist_ok=True)

    def db(self, scale: str) -> str:
        return f"{self.prefix}_{scale}"

    def log(self, line: str) -> None:
        self.out.write(line)
        self.out.flush()

    def env(self, scale: str) -> dict:
        return {
            **os.environ,
            "DATABASE_URL": f"{self.base}/{self.db(scale)}",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-" + "x" * 50,
            "HTTPS": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "THROTTLE_QUOTE_TOKEN": "100000000/hour",
            "THROTTLE_USER": "100000000/hour",
            "LOG_LEVEL": "WARNING",
            "HAVEN_VAR_DIR": str(self.state / scale),
            "PYTHONUNBUFFERED": "1",
        }

    def manage(self, scale: str, *args: str) -> str:
        return run_manage(self.env(scale), *args)

    def psql(self, sql: str) -> None:
        subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-c",
                f"import psycopg; c=psycopg.connect({self.base + '/postgres'!r}, autocommit=True); c.execute({sql!r})",
            ],
            check=True,
        )

    def dataset(self, scale: str) -> dict:
        marker = self.state / f"{scale}.json"
        if marker.exists() and not self.reseed:
            self.log(f"dataset {scale}: reusing (--reseed rebuilds)")
            self.manage(scale, "migrate", "--noinput", "-v0")  # a kept dataset follows the schema
            return json.loads(marker.read_text())
        self.log(f"dataset {scale}: creating {self.db(scale)} on {self.base}")
        self.psql(f"DROP DATABASE IF EXISTS {self.db(scale)} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {self.db(scale)}")
        self.manage(scale, "migrate", "--noinput", "-v0")
        result = stage_result(self.manage(scale, "bench", "--stage", "seed", "--scale", scale))
        marker.write_text(json.dumps(result))
        self.log(
            f"dataset {scale}: {result['slots']:,} slots, {result['machines']:,} machines, "
            f"{result['reservations']:,} reservations in {result['seconds']} s"
        )
        return result

    def serve(self, scale: str, port: int) -> subprocess.Popen:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "hosting.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            env=self.env(scale),
        )
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return process
            except httpx.TransportError:
                time.sleep(0.2)
        process.kill()
        raise CommandError(f"gunicorn for {scale} did not start")

    def hammer(self, url: str, dataset: dict, kind: str, requests: int, seed: int) -> benchmark.Latencies:
        machines = tuple(dataset["quote_machines"])
        return benchmark.hammer(url, dataset["token"], kind, requests, self.clients, seed, machines)

    def run(self) -> None:
        if self.only in (None, "quotes"):
            self.quotes()
        if self.only in (None, "commissioning"):
            self.commissioning()
        if self.only in (None, "telemetry-poll"):
            self.telemetry_poll()
        if self.only in (None, "telemetry-store"):
            self.telemetry_store()
        if self.only in (None, "billing"):
            self.billing()
        if self.only in (None, "curtailment"):
            self.curtailment()

    def billing(self) -> None:
        part = billing_benchmark.BillingBench(self, quick=self.quick)
        result = part.run()
        (self.state / "billing-results.json").write_text(json.dumps(result, indent=2))
        part.report(result)

    def curtailment(self) -> None:
        result = CurtailmentBench(self).run()
        (self.state / "curtailment-results.json").write_text(json.dumps(result, indent=2))
        self.log("")
        self.log(
            f"curtail      {result['off_s']:>8} s  ({result['verified']:,} of {result['machines']:,} verified off)"
        )
        self.log(f"resume       {result['on_s']:>8} s  ({result['resumed']:,} resumed)   {result['cpu']}")
        bare = result["bare"]
        self.log(
            f"bare stop    {bare['stop_s']:>8} s  ({bare['stop_ok']:,} told, "
            f"{bare['stop_cpu_ms_per_miner']} ms CPU each)   bare resume {bare['resume_s']} s ({bare['resume_ok']:,})"
        )
        self.log(
            f"{'signal to off s ÷ bare stop s':28} {result['off_over_bare_stop']:8.2f}   "
            f"{'resume s ÷ bare resume s':26} {result['on_over_bare_resume']:.2f}   (shown, no target)"
        )
        target = TARGETS["curtail_s"]
        self.verdict(
            f"{'signal to last watt off s':28} {result['off_s']:8.1f}   target ≤ {target:<5}", result["off_s"] <= target
        )
        self.verdict(
            f"{'resume to last miner on s':28} {result['on_s']:8.1f}   target ≤ {target:<5}", result["on_s"] <= target
        )

    def telemetry_poll(self) -> None:
        result = TelemetryPollBench(self).run()
        (self.state / "telemetry-poll-results.json").write_text(json.dumps(result, indent=2))
        self.log("")
        self.log(f"bare sweep   {result['sweep_s']:>8} s  ({result['sweep_ok']:,} read)   {result['sweep_cpu']}")
        self.log(
            f"first poll   {result['first_poll_s']:>8} s  ({result['first_poll_answered']:,} answered, "
            "miner objects built)"
        )
        self.log(
            f"poll         {result['poll_s']:>8} s  ({result['poll_answered']:,} answered, "
            f"{result['poll_windows']:,} windows written)   {result['poll_cpu']}"
        )
        target = TARGETS["poll_s_over_sweep_s"]
        ok = result["ratio"] <= target
        self.verdict(f"{'poll s ÷ sweep s':28} {result['ratio']:8.2f}   target ≤ {target:<5}", ok)

    def telemetry_store(self) -> None:
        result = TelemetryStoreBench(self).run()
        (self.state / "telemetry-store-results.json").write_text(json.dumps(result, indent=2))
        self.log("")
        self.log(
            f"telemetry store: {result['machines']:,} machines, load {result['load_before']} → {result['load_after']}"
        )
        header = f"{'':34}" + "".join(f"{phase:>14}" for phase in result["phases"])
        self.log(header)
        rows = {
            "windows seeded": lambda p: f"{p['windows_seeded']:,}",
            "seed windows/s (generate_series)": lambda p: f"{p['seed_per_s']:,}",
            "rollup windows/s (hours)": lambda p: f"{p['rollup_windows_per_s'] or 0:,}",
            "ingest windows/s (write_windows)": lambda p: f"{p['ingest']['insert_per_s']:,}",
            "upsert windows/s (late polls)": lambda p: f"{p['ingest']['upsert_per_s']:,}",
            "unknowns/s (fill_unknown)": lambda p: f"{p['ingest']['unknown_per_s']:,}",
            "contract month p99 ms": lambda p: f"{p['reads']['contract_month']['p99_ms']}",
            "machine 30-day chart p99 ms": lambda p: f"{p['reads']['machine_chart_30d']['p99_ms']}",
            "machine 24 h (5 min) p99 ms": lambda p: f"{p['reads']['machine_chart_24h_5m']['p99_ms']}",
            "contract's 1,000 machines p99 ms": lambda p: f"{p['reads']['contract_machines_month']['p99_ms']}",
            "raw bytes per machine-day": lambda p: f"{p['bytes']['raw_per_machine_day']:,}",
            "rolled bytes per machine-day": lambda p: f"{p['bytes']['rolled_per_machine_day']:,}",
        }
        for label, cell in rows.items():
            self.log(f"{label:34}" + "".join(f"{cell(p):>14}" for p in result["phases"].values()))
        phases = list(result["phases"].values())
        ingest = min(p["ingest"]["insert_per_s"] for p in phases)
        read = max(p["reads"][k]["p99_ms"] for p in phases for k in ("contract_month", "machine_chart_30d"))
        for label, value, ok, target in (
            ("ingest windows/s (lowest)", ingest, ingest >= TELEMETRY_TARGETS["ingest_windows_per_s"], "≥ 20,000"),
            ("read p99 ms (highest)", read, read <= TELEMETRY_TARGETS["read_p99_ms"], "≤ 50"),
        ):
            self.verdict(f"{label:34} {value:>12,}   target {target:<8}", ok)

    def verdict(self, line: str, ok: bool) -> None:
        """A target's line, ending OK (green) or MISSED (red)."""
        self.log(self.style.SUCCESS(f"{line} OK") if ok else self.style.ERROR(f"{line} MISSED"))

    def commissioning(self) -> None:
        result = CommissioningBench(self).run()
        (self.state / "commissioning-results.json").write_text(json.dumps(result, indent=2))
        self.log("")
        self.log(
            f"bare sweep   {result['sweep_per_s']:>8} miners/s  ({result['sweep_ok']:,} read in {result['sweep_s']} s)"
            f"   {result['sweep_cpu']}"
        )
        self.log(
            f"pipeline     {result['pipeline_per_s']:>8} miners/s  ({result['pipeline_passed']:,} passed, "
            f"{result['pipeline_failed']:,} failed in {result['pipeline_s']} s)   {result['pipeline_cpu']}"
        )
        target = TARGETS["pipeline_s_over_sweep_s"]
        ok = result["ratio"] <= target
        self.verdict(f"{'pipeline s ÷ sweep s':28} {result['ratio']:8.2f}   target ≤ {target:<5}", ok)

    def quotes(self) -> None:
        data = {scale: self.dataset(scale) for scale in ("large", "small")}
        servers = {
            "large": ("http://127.0.0.1:8101", self.serve("large", 8101)),
            "small": ("http://127.0.0.1:8102", self.serve("small", 8102)),
        }
        try:
            for scale, (url, _) in servers.items():  # fill each worker's caches first
                for kind in ("quote", "get"):
                    self.hammer(url, data[scale], kind, 16 * self.clients, seed=99)
            results = {(scale, kind): benchmark.Latencies([]) for scale in servers for kind in ("get", "quote")}
            rounds = 6
            self.log(
                f"measuring {self.requests} requests per kind per dataset, {self.clients} clients, {rounds} rounds"
            )
            for n in range(rounds):  # interleaved, so drift hits every figure alike
                for scale, (url, _) in servers.items():
                    for kind in ("get", "quote"):
                        got = self.hammer(url, data[scale], kind, self.requests // rounds, seed=n)
                        results[(scale, kind)].samples_ms.extend(got.samples_ms)
                        results[(scale, kind)].errors += got.errors
                        results[(scale, kind)].options += got.options
        finally:
            for _, process in servers.values():
                process.terminate()
                process.wait(timeout=20)
        failed = {f"{s} {k}": v.errors for (s, k), v in results.items() if v.errors}
        if failed:
            raise CommandError(f"requests failed, so the figures mean nothing: {failed} (see the log above)")
        self.log("planner: 1.5 M machines …")
        planner_result = stage_result(self.manage("large", "bench", "--stage", "planner"))
        self.report(data, {f"{s}_{k}": v.summary() for (s, k), v in results.items()}, planner_result)

    def report(self, data: dict, latency: dict, planner_result: dict) -> None:
        ratios = {
            "quote_p99_over_get_p99": latency["large_quote"]["p99_ms"] / latency["large_get"]["p99_ms"],
            "quote_large_over_small": latency["large_quote"]["p99_ms"] / latency["small_quote"]["p99_ms"],
            "quote_large_over_small_p50": latency["large_quote"]["p50_ms"] / latency["small_quote"]["p50_ms"],
            "plan_1_5m_s": planner_result["plan_s"],
        }
        results = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}",
            "datasets": {k: {x: v[x] for x in v if x != "token"} for k, v in data.items()},
            "latency": latency,
            "planner": planner_result,
            "ratios": {k: round(v, 2) for k, v in ratios.items()},
        }
        (self.state / "results.json").write_text(json.dumps(results, indent=2))
        self.log("")
        self.log(f"{'':24}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'errors':>8}{'options':>9}")
        for name, r in latency.items():
            self.log(
                f"{name:24}{r['n']:>6}{r['p50_ms']:>10}{r['p99_ms']:>10}{r['mean_ms']:>10}{r['errors']:>8}"
                f"{r['options_per_quote'] if 'quote' in name else '':>9}"
            )
        self.log("")
        self.log(
            f"floors of the large dataset read in {planner_result['floors_load_s']} s "
            f"({planner_result['floors_circuits']:,} circuits)"
        )
        self.log(
            f"plan: {planner_result['plan_placed']:,} of {planner_result['plan_machines']:,} machines placed "
            f"on {planner_result['plan_circuits']:,} circuits / {planner_result['plan_slots']:,} slots "
            f"in {planner_result['plan_s']} s"
        )
        self.log("")
        for key, target in TARGETS.items():
            if key not in ratios:  # measured by the commissioning part
                continue
            value = ratios[key]
            ok = value <= target
            self.verdict(f"{key:28} {value:8.2f}   target ≤ {target:<5}", ok)
        self.log(
            f"\n(also: quote p50 large ÷ small = {ratios['quote_large_over_small_p50']:.2f}); "
            f"figures in {self.state / 'results.json'}"
        )


class CommissioningBench:
    """10,000 emulated stock Antminers: commissioned by on-site workers, against a bare
    pyasic sweep of the same fleet, both using both cores, in the same run."""

    def __init__(self, bench: "Bench"):
        self.bench = bench
        self.n = bench.machines
        self.redis = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

    def env(self) -> dict:
        return {
            **self.bench.env("commissioning"),
            "REDIS_URL": self.redis,
            # The sweep's concurrency per process; BENCH_COMMISSIONING_CONCURRENCY tries another.
            "COMMISSIONING_CONCURRENCY": os.environ.get("BENCH_COMMISSIONING_CONCURRENCY", "75"),
            "COMMISSIONING_CHUNK": "100",
            "DB_CONN_MAX_AGE": "3600",  # one connection per process all along: its backend's CPU is measured
        }

    def stage(self, *args: str) -> dict:
        return stage_result(run_manage(self.env(), "bench", *args, "--machines", str(self.n)))

    def dataset(self) -> dict:
        marker = self.bench.state / "commissioning.json"
        kept = json.loads(marker.read_text()) if marker.exists() and not self.bench.reseed else None
        if kept is not None and kept["machines"] == self.n:
            run_manage(self.env(), "migrate", "--noinput", "-v0")  # a kept dataset follows the schema
            return kept
        self.bench.log(f"dataset commissioning: {self.n:,} racked machines")
        self.bench.psql(f"DROP DATABASE IF EXISTS {self.bench.db('commissioning')} WITH (FORCE)")
        self.bench.psql(f"CREATE DATABASE {self.bench.db('commissioning')}")
        run_manage(self.env(), "migrate", "--noinput", "-v0")
        result = self.stage("--stage", "seed-commissioning")
        marker.write_text(json.dumps(result))
        return result

    def spawn(self, *argv: str, log: str) -> subprocess.Popen:
        out = open(self.bench.state / log, "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(argv, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603

    def wait_listening(self, hosts_ports, timeout_s=120) -> None:
        import socket

        deadline = time.monotonic() + timeout_s
        for host, port in hosts_ports:
            while True:
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise CommandError(f"nothing listens on {host}:{port}") from None
                    time.sleep(0.2)

    def start_emulator(self) -> subprocess.Popen:
        cores = os.cpu_count() or 2
        emulator = self.spawn(sys.executable, "manage.py", "emulate_fleet", "--processes", str(cores), log="fleet.log")
        last = benchmark.fleet_ip(self.n - 1)
        try:
            self.wait_listening([(benchmark.fleet_ip(0), 4028), (last, 4028), (last, 80)])
        except BaseException:
            self.stop(emulator)
            raise
        return emulator

    def start_worker(
        self, log: str = "worker.log", queue: str = "site.bench", processes: int | None = None
    ) -> subprocess.Popen:
        """The site's worker: one process per core, as the README runs it (BENCH_WORKER_PROCESSES)."""
        processes = processes or int(os.environ.get("BENCH_WORKER_PROCESSES", "0")) or os.cpu_count() or 2
        worker = self.spawn(
            sys.executable, "-m", "celery", "-A", "hosting", "worker", "-Q", queue, "--concurrency",
            str(processes), "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip",
            log=log,
        )  # fmt: skip
        time.sleep(5)  # the worker connects and forks its pool
        return worker

    @staticmethod
    def stop(*processes: subprocess.Popen | None) -> None:
        for process in processes:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)

    def sweep(self, emulator: subprocess.Popen) -> tuple[float, int, benchmark.CpuMeter]:
        """A bare pyasic sweep of the whole fleet, one process per core: (seconds, read, CPU)."""
        cores = os.cpu_count() or 2
        self.bench.log(f"a bare pyasic sweep of {self.n:,} miners, {cores} processes …")
        with benchmark.CpuMeter({"emulator": emulator.pid}, children="sweep") as sweep_cpu:
            started = time.perf_counter()
            outputs = self.sharded("sweep")
            sweep_s = time.perf_counter() - started
        swept = sum(o["ok"] for o in outputs)
        self.bench.log(f"  swept {swept:,} of {self.n:,} in {sweep_s:.1f} s; {sweep_cpu.summary()}")
        return sweep_s, swept, sweep_cpu

    def sharded(self, stage: str, *args: str) -> list[dict]:
        """A bench stage over the fleet in one process per core, each its share; their results."""
        cores = os.cpu_count() or 2
        shards = [
            subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "bench", "--stage", stage, "--shard", str(i), "--shards", str(cores),
                 "--machines", str(self.n), *args],
                env=self.env(), stdout=subprocess.PIPE, text=True,
            )
            for i in range(cores)
        ]  # fmt: skip
        outputs = [p.communicate()[0] for p in shards]
        if any(p.returncode for p in shards):
            raise CommandError(f"a {stage} shard failed:\n" + "\n".join(outputs))
        return [stage_result(o) for o in outputs]

    def run(self) -> dict:
        self.dataset()
        cores = os.cpu_count() or 2
        emulator = self.start_emulator()
        worker = None
        try:
            sweep_s, swept, sweep_cpu = self.sweep(emulator)
            worker = self.start_worker()
            self.bench.log(f"commissioning: the pipeline, one on-site worker × {cores} processes …")
            groups = {"emulator": emulator.pid, "worker": worker.pid}
            titles = {"postgres": self.bench.db("commissioning")}  # its backends' process titles
            with benchmark.CpuMeter(groups, children="bench", titles=titles) as pipeline_cpu:
                pipeline = self.stage("--stage", "commission")
            self.bench.log(f"  {pipeline_cpu.summary()}")
        finally:
            self.stop(worker, emulator)
        sweep_rate = self.n / sweep_s
        pipeline_rate = pipeline["machines"] / pipeline["seconds"]
        return {
            "machines": self.n,
            "sweep_s": round(sweep_s, 1),
            "sweep_ok": swept,
            "sweep_per_s": round(sweep_rate, 1),
            "pipeline_s": pipeline["seconds"],
            "pipeline_passed": pipeline["passed"],
            "pipeline_failed": pipeline["failed"],
            "pipeline_per_s": round(pipeline_rate, 1),
            "ratio": round(sweep_rate / pipeline_rate, 2),  # = pipeline s ÷ sweep s
            "sweep_cpu": sweep_cpu.summary(),
            "pipeline_cpu": pipeline_cpu.summary(),
            "sweep_cpu_pct": sweep_cpu.figures,
            "pipeline_cpu_pct": pipeline_cpu.figures,
        }


class TelemetryPollBench(CommissioningBench):
    """One poll of the same 10,000 emulated stock Antminers (live now) by the on-site worker
    — its miner objects already built, as every poll after the first finds them — against a
    bare pyasic sweep of the same fleet in the same run. The first poll (detection) is shown too."""

    def env(self) -> dict:
        return {
            **super().env(),
            "TELEMETRY_CONCURRENCY": os.environ.get("BENCH_TELEMETRY_CONCURRENCY", "100"),
            "TELEMETRY_CHUNK": os.environ.get("BENCH_TELEMETRY_CHUNK", "500"),
            "TELEMETRY_SPREAD_PCT": "0",  # all at once: the poll's cost, not the interval's length
        }

    def run(self) -> dict:
        self.dataset()
        cores = os.cpu_count() or 2
        emulator = self.start_emulator()
        worker = None
        try:
            sweep_s, swept, sweep_cpu = self.sweep(emulator)
            worker = self.start_worker(log="poll-worker.log")
            self.bench.log(f"telemetry: the first poll (miner objects built), one on-site worker × {cores} …")
            first = self.stage("--stage", "poll", "--poll", "0")
            self.bench.log(f"  {first['answered']:,} answered of {first['machines']:,} in {first['seconds']} s")
            self.bench.log("telemetry: the next poll (miner objects reused) …")
            groups = {"emulator": emulator.pid, "worker": worker.pid}
            titles = {"postgres": self.bench.db("commissioning")}
            with benchmark.CpuMeter(groups, children="bench", titles=titles) as poll_cpu:
                poll = self.stage("--stage", "poll", "--poll", "1")
            self.bench.log(f"  {poll_cpu.summary()}")
        finally:
            self.stop(worker, emulator)
            run_manage(self.env(), "bench", "--stage", "reset-poll")
        return {
            "machines": self.n,
            "sweep_s": round(sweep_s, 1),
            "sweep_ok": swept,
            "first_poll_s": first["seconds"],
            "first_poll_answered": first["answered"],
            "poll_s": poll["seconds"],
            "poll_answered": poll["answered"],
            "poll_windows": poll["windows"],
            "ratio": round(poll["seconds"] / sweep_s, 2),
            "sweep_cpu": sweep_cpu.summary(),
            "poll_cpu": poll_cpu.summary(),
            "sweep_cpu_pct": sweep_cpu.figures,
            "poll_cpu_pct": poll_cpu.figures,
        }


class CurtailmentBench(TelemetryPollBench):
    """Curtailing the same 10,000 emulated stock Antminers (live, polled once so that their
    pyasic classes are known, as in service): one event with no ramp, from `start_event` to the
    last outlet read under its sleep draw by the on-site worker; then resuming them."""

    def env(self) -> dict:
        env = {**super().env(), "CURTAILMENT_CIRCUIT_GAP_MS": "0", "CURTAILMENT_SETTLE_MS": "1000"}
        for name in ("CURTAILMENT_CONCURRENCY", "CURTAILMENT_CHUNK"):  # the defaults unless asked
            if f"BENCH_{name}" in os.environ:
                env[name] = os.environ[f"BENCH_{name}"]
        return env

    def run(self) -> dict:
        self.dataset()
        emulator = self.start_emulator()
        worker = None
        try:
            poller = self.start_worker(log="curtail-poll-worker.log")
            try:
                self.bench.log("curtailment: a first poll (the miners' classes learned) …")
                self.stage("--stage", "poll", "--poll", "0")
            finally:
                self.stop(poller)
            # The site's control worker, as the README runs it: four processes per core.
            processes = int(os.environ.get("BENCH_CONTROL_PROCESSES", "0")) or 4 * (os.cpu_count() or 2)
            bare = self.bare(processes)
            worker = self.start_worker(log="curtail-worker.log", queue="site.bench.control", processes=processes)
            self.bench.log(f"curtailment: {self.n:,} miners off, then on again, one control worker × {processes} …")
            groups = {"emulator": emulator.pid, "worker": worker.pid}
            with benchmark.CpuMeter(groups, children="bench") as cpu:
                result = self.stage("--stage", "curtail")
        finally:
            self.stop(worker, emulator)
            run_manage(self.env(), "bench", "--stage", "reset-curtailment")
        return {
            **result,
            "cpu": cpu.summary(),
            "cpu_pct": cpu.figures,
            "bare": bare,
            "off_over_bare_stop": round(result["off_s"] / bare["stop_s"], 2),
            "on_over_bare_resume": round(result["on_s"] / bare["resume_s"], 2),
        }

    def bare(self, processes: int) -> dict:
        """The calibration, in the same run: a bare pyasic stop, then resume, of the same fleet
        from one process per core, with as many miners in flight as the control worker has."""
        import tempfile

        cores = os.cpu_count() or 2
        env = self.env()
        in_flight = processes * int(env.get("CURTAILMENT_CONCURRENCY", settings.CURTAILMENT_CONCURRENCY))
        self.bench.log(f"curtailment: a bare pyasic stop and resume of {self.n:,}, {cores} × {in_flight // cores} …")
        with tempfile.TemporaryDirectory(prefix="bench-barrier-") as barrier:
            shards = self.sharded("bare-curtail", "--concurrency", str(in_flight // cores), "--barrier", barrier)
        figures: dict = {"built": sum(s["built"] for s in shards), "in_flight": in_flight}
        for name in ("stop", "resume"):
            passes = [s[name] for s in shards]
            ok = sum(p["ok"] for p in passes)
            figures[f"{name}_s"] = round(max(p["ended"] for p in passes) - min(p["started"] for p in passes), 2)
            figures[f"{name}_ok"] = ok
            figures[f"{name}_cpu_ms_per_miner"] = round(1000 * sum(p["cpu_s"] for p in passes) / max(ok, 1), 2)
        self.bench.log(f"  {figures}")
        return figures


class TelemetryStoreBench:
    """Telemetry storage on its own database (haven_bench_telemetry_store), rebuilt each run:
    windows for 10,000 machines seeded by generate_series for 1 day and then 30, ingest
    through the real write path, reads from the rollups, bytes on disk. The database is
    dropped at the end (30 days of raw windows is ~20 GB)."""

    NAME = "telemetry_store"

    def __init__(self, bench: "Bench"):
        self.bench = bench

    def env(self) -> dict:
        return {**self.bench.env(self.NAME), "DB_CONN_MAX_AGE": "3600"}

    def stream(self, *args: str) -> dict:
        """manage.py bench `args`, echoing its progress; what it printed after RESULT."""
        process = subprocess.Popen(  # noqa: S603 - our own argv
            [sys.executable, "manage.py", "bench", *args], env=self.env(), stdout=subprocess.PIPE, text=True
        )
        result = None
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line.removeprefix("RESULT "))
            else:
                self.bench.log(line.rstrip("\n"))
        if process.wait() or result is None:
            raise CommandError(f"manage.py bench {' '.join(args)} failed")
        return result

    def run(self) -> dict:
        database = f"haven_bench_{self.NAME}"
        self.bench.log(f"telemetry store: creating {database}")
        self.bench.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self.bench.psql(f"CREATE DATABASE {database}")
        try:
            run_manage(self.env(), "migrate", "--noinput", "-v0")
            machines = ["--machines", str(self.bench.machines)]
            self.stream("--stage", "seed-telemetry-store", *machines)
            return self.stream(
                "--stage", "telemetry-store", *machines, "--telemetry-days", str(self.bench.telemetry_days)
            )
        finally:
            self.bench.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
