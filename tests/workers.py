"""A real Celery worker in a subprocess, on the broker and database the tests use.

Tests that use it must commit their data (transactional tests): the worker is another
process with its own connection, exactly as an on-site worker is.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database the tests run on (the test database, once created)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: list[str]):
        self.process = process
        self.log = log

    def output(self) -> str:
        return "".join(self.log)


def purge(queues: Sequence[str]) -> None:
    """Drop messages a previous run left on these queues."""
    from hosting.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues:
            with contextlib.suppress(Exception):  # a queue that never existed has nothing to purge
                channel.queue_purge(queue)


@contextmanager
def celery_worker(
    queues: Sequence[str] = ("celery",),
    concurrency: int = 1,
    extra_env: dict[str, str] | None = None,
    purge_first: bool = False,
) -> Iterator[Worker]:
    if purge_first:
        purge(queues)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "hosting.settings",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "hosting", "worker",
        "--loglevel", "INFO", "--queues", ",".join(queues), "--concurrency", str(concurrency),
        "--without-heartbeat", "--without-mingle", "--without-gossip", "--hostname", f"test-{os.getpid()}@%h",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a test may kill the whole worker
    )
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(process.stdout.readline, "")), daemon=True).start()
    worker = Worker(process, log)
    deadline = time.monotonic() + 60
    while not any(" ready." in line for line in log):
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError("the Celery worker did not start:\n" + worker.output())
        time.sleep(0.1)
    try:
        yield worker
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate, timeout_s: float = 30, interval_s: float = 0.1, what: str = "condition"):
    """Poll until predicate() is truthy; return its value or fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
