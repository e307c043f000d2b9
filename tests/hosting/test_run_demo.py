"""`make demo` (manage.py run_demo) on the embedded defaults, as the README promises: it
migrates and seeds, prints the logins, serves the portal, commissions the racked machines
against the emulated fleet through its Celery worker, and Ctrl-C stops everything."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hosting.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE", "HTTPS"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout_s: float, what: str, process: subprocess.Popen):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"run_demo exited ({process.returncode}) while waiting for {what}"
        result = predicate()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def log_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=True, timeout=30)
    page = client.get("/portal/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    client.post(
        "/portal/login/",
        data={"username": "tenant", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/portal/login/"},
    )
    return client


def test_make_demo_runs_embedded_commissions_the_fleet_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in SERVICES}
    env.update(DEBUG="true", HAVEN_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "run_demo", "--addrport", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:

        def healthy():
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout_s=300, what="the web server", process=demo)
        printed = log.read_text()
        assert f"staff / {DEMO_PASSWORD}" in printed
        assert f"tenant / {DEMO_PASSWORD}" in printed
        assert "sqlite3 · broker filesystem://" in printed
        assert (tmp_path / "haven.sqlite3").exists()

        portal = log_in(base)
        dashboard = portal.get("/portal/")
        assert dashboard.url.path == "/portal/"  # signed in
        assert "Siberia · Bratsk" in dashboard.text  # Northern Hash's contracts

        def batches_done():
            page = portal.get("/portal/").text
            states = re.findall(r'data-done="(true|false)"', page)
            return page if states and set(states) == {"true"} else None

        page = wait_until(batches_done, timeout_s=240, what="the commissioning batches to finish", process=demo)
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
        done = re.findall(r"(\d+) machines? · done queued 0 testing 0 passed (\d+) failed (\d+)", text)
        assert done, text
        for total, passed, failed in done:
            assert int(passed) + int(failed) == int(total) > 0

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        assert "Stopped." in log.read_text()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it and its children, however it went
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=30)
