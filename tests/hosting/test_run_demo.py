"""`make demo` (manage.py run_demo) on the embedded defaults, as the README promises: it
migrates and seeds, prints the logins, serves the portal, commissions the racked machines
against the emulated fleet through its Celery worker, polls the live machines (windows every
15 s), and Ctrl-C stops everything — every
process it started, their children too, even in the middle of a burn-in."""

import contextlib
import os
import re
import signal
import socket
import sqlite3
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


def _stat(pid: int) -> tuple[int, int, int, int] | None:
    """(parent pid, process group, session, start time) of a process, from /proc; None once gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    if fields[0] == "Z":  # a zombie has exited; only its parent has not reaped it yet
        return None
    return int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


class ProcessTree:
    """Every process a demo has started, seen while it runs: its descendants by parent, and
    anything in a process group or session one of them leads. Remembered by start time, so a
    recycled pid is not mistaken for a survivor."""

    def __init__(self, root: int):
        self.root = root
        self.seen: dict[int, int] = {}  # pid → start time
        self.groups: set[int] = {root}

    def look(self) -> None:
        stats = {pid: st for pid in _all_pids() if (st := _stat(pid)) is not None}
        family = {self.root} | set(self.seen)
        changed = True
        while changed:
            changed = False
            for pid, (ppid, pgid, sid, _) in stats.items():
                if pid not in family and (ppid in family or pgid in self.groups or sid in self.groups):
                    family.add(pid)
                    changed = True
        for pid in family:
            if pid in stats:
                self.seen.setdefault(pid, stats[pid][3])
                self.groups.update(g for g in stats[pid][1:3] if g in family)

    def survivors(self) -> list[str]:
        left = []
        for pid in _all_pids():
            st = _stat(pid)
            if st is None:
                continue
            if self.seen.get(pid) == st[3] or st[1] in self.groups or st[2] in self.groups:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                left.append(f"{pid}: {cmdline.strip()}")
        return left


def start_demo(tmp_path: Path, port: int, *args: str) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICES}
    env.update(DEBUG="true", HAVEN_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    log = tmp_path / "demo.log"
    with log.open("a") as out:
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "run_demo", "--addrport", f"127.0.0.1:{port}", *args],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return demo, log


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


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
    demo, log = start_demo(tmp_path, port)
    try:
        wait_until(lambda: healthy(base), timeout_s=300, what="the web server", process=demo)
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

        # The live machines are polled every 15 s (the demo's telemetry policy): windows fill in.
        def polled_windows():
            with contextlib.closing(sqlite3.connect(tmp_path / "haven.sqlite3", timeout=10)) as db:
                count, starts, hashing = db.execute(
                    "SELECT count(*), count(DISTINCT start), sum(hashing) FROM telemetry_window "
                    "WHERE reachable IS NOT NULL"
                ).fetchone()
            return (count, hashing) if starts >= 2 else None

        count, hashing = wait_until(polled_windows, timeout_s=120, what="two polls' windows", process=demo)
        assert count > 0
        assert hashing > 0

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        assert "Stopped." in log.read_text()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it and its children, however it went
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=30)


def test_ctrl_c_in_the_middle_of_a_burn_in_leaves_no_process_of_the_demo(tmp_path):
    """The worker is busy with a 20 s burn-in and beat is queueing the sweep: Ctrl-C must still
    stop every process the demo started — the worker's pool and its beat too, not only the
    worker's main process — so nothing keeps queueing tasks after the demo has gone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo, log = start_demo(tmp_path, port)
    tree = ProcessTree(demo.pid)
    try:

        def testing():
            tree.look()
            if not healthy(base):
                return None
            page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get("/portal/").text))
            return any(int(n) > 0 for n in re.findall(r"testing (\d+)", page))

        wait_until(lambda: healthy(base), timeout_s=300, what="the web server", process=demo)
        client = log_in(base)
        wait_until(testing, timeout_s=120, what="a self-test to be running", process=demo)
        for _ in range(3):  # the worker's pool and beat are up by now; see them all
            tree.look()
            time.sleep(1)
        assert any("celery" in line and "beat" in line for line in tree.survivors()), tree.survivors()

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=90) == 0, log.read_text()[-3000:]
        deadline = time.monotonic() + 30  # orphans reparented to init are reaped by it, not at once
        while (left := tree.survivors()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, "still running after Ctrl-C:\n" + "\n".join(left)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        for line in tree.survivors():  # never leave a stray demo behind, whatever went wrong
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
        demo.wait(timeout=30)


def test_a_second_demo_on_a_busy_port_says_so_in_one_line_and_touches_nothing(tmp_path):
    with socket.socket() as other:  # the first `make demo`, say
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        demo, log = start_demo(tmp_path, port)
        assert demo.wait(timeout=120) != 0
    printed = log.read_text().strip()
    assert printed.splitlines() == [
        f"CommandError: 127.0.0.1:{port} is already in use — is another `make demo` running? "
        "Stop it, or pass --addrport HOST:PORT."
    ], printed
    assert not (tmp_path / "haven.sqlite3").exists()  # refused before migrating or seeding
