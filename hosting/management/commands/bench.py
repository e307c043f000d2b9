"""`make bench`: seed the datasets on PostgreSQL, serve each with gunicorn, measure
side by side, print the figures and the ratios against their targets."""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hosting import benchmark

TARGETS = {
    "quote_p99_over_get_p99": 3.0,
    "quote_large_over_small": 1.3,
    "plan_1_5m_s": 30.0,
}


class Command(BaseCommand):
    help = "Benchmark quotes and the planner at 2.5 GW scale on PostgreSQL (make bench)."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="fewer requests (the datasets stay full size)")
        parser.add_argument("--reseed", action="store_true", help="rebuild the datasets even if they exist")
        parser.add_argument("--requests", type=int, default=3000, help="requests per kind per dataset")
        parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
        parser.add_argument("--stage", choices=["seed", "planner"], help=argparse_hidden())
        parser.add_argument("--scale", choices=sorted(benchmark.SCALES), help=argparse_hidden())

    def handle(self, *args, stage=None, scale=None, **options):
        if stage == "seed":  # inside a subprocess whose DATABASE_URL is the dataset's
            result = benchmark.seed(benchmark.SCALES[scale], log=self.stdout.write)
            self.stdout.write("RESULT " + json.dumps(result))
            return
        if stage == "planner":
            self.stdout.write("RESULT " + json.dumps(benchmark.measure_planner(log=self.stdout.write)))
            return
        Bench(self, **options).run()


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


class Bench:
    def __init__(self, command, *, quick, reseed, requests, clients, **_):
        self.out = command.stdout
        self.style = command.style
        self.reseed = reseed
        self.requests = 300 if quick else requests
        self.clients = clients
        self.base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        self.state = Path(settings.VAR_DIR) / "bench"
        self.state.mkdir(parents=True, exist_ok=True)

    def log(self, line: str) -> None:
        self.out.write(line)
        self.out.flush()

    def env(self, scale: str) -> dict:
        return {
            **os.environ,
            "DATABASE_URL": f"{self.base}/haven_bench_{scale}",
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
        result = subprocess.run(  # noqa: S603 - our own argv
            [sys.executable, "manage.py", *args],
            env=self.env(scale),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise CommandError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

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
            return json.loads(marker.read_text())
        self.log(f"dataset {scale}: creating haven_bench_{scale} on {self.base}")
        self.psql(f"DROP DATABASE IF EXISTS haven_bench_{scale} WITH (FORCE)")
        self.psql(f"CREATE DATABASE haven_bench_{scale}")
        self.manage(scale, "migrate", "--noinput", "-v0")
        output = self.manage(scale, "bench", "--stage", "seed", "--scale", scale)
        result = json.loads(output.split("RESULT ", 1)[1])
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
        self.log("planner: 1.5 M machines …")
        planner_result = json.loads(self.manage("large", "bench", "--stage", "planner").split("RESULT ", 1)[1])
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
            value = ratios[key]
            ok = value <= target
            line = f"{key:28} {value:8.2f}   target ≤ {target:<5} {'OK' if ok else 'MISSED'}"
            self.log(self.style.SUCCESS(line) if ok else self.style.ERROR(line))
        self.log(
            f"\n(also: quote p50 large ÷ small = {ratios['quote_large_over_small_p50']:.2f}); "
            f"figures in {self.state / 'results.json'}"
        )
