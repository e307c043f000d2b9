"""The broker is down: a commissioning request loses nothing. The run waits in the runs table
(the outbox) and goes out, and through, once a broker is back — all real processes: a
web server and a worker on a Redis of their own that this test stops and starts."""

import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from capacity.models import Pdu
from hosting import queues
from hosting.commissioning import fleet
from hosting.commissioning.emulator import INSTANT, Fleet, running
from hosting.lifecycle import MachineStatus
from hosting.models import ApiToken, CommissioningPolicy, Machine, SelfTestRun
from tests.factories import StaffFactory, racked
from tests.workers import celery_worker, database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server(port: int):
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (Debian package redis-server)"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: _answers(port), what="redis-server to listen")
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@contextmanager
def web_server(env: dict):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _answers(port), what="the web server to listen")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_request_made_while_the_broker_is_down_is_kept_and_sent_when_it_is_back(floor):

    broker_port = free_port()  # nothing listens there yet: the broker is down
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": f"redis://127.0.0.1:{broker_port}/0",
        "COMMISSIONING_STALE_AFTER_S": "3",
    }
    site = floor["site"]
    CommissioningPolicy.objects.create(site=site, burn_in_s=1, sample_interval_s=1, probe_timeout_s=2)
    circuit = floor["circuits"][0]
    circuit.pdu = Pdu.objects.create(site=site, name="PDU", host="127.85.1.1", port=16185)
    circuit.save()
    (machine,) = racked(floor, 1)
    machine.ip = "127.85.0.1"
    machine.save()
    machine.slot.outlet = 1
    machine.slot.save()
    _, key = ApiToken.issue(StaffFactory(), "ops")

    with web_server(env) as url:
        response = httpx.post(
            f"{url}/api/v1/machines/{machine.pk}/commission/", headers={"Authorization": f"Token {key}"}, timeout=30
        )
    assert response.status_code == 202, response.text
    run = SelfTestRun.objects.get(pk=response.json()["run"])
    assert run.status == SelfTestRun.Status.PENDING  # in the outbox, not lost, not half-sent
    assert Machine.objects.get(pk=machine.pk).status == MachineStatus.TESTING

    emulated = Fleet(fleet.miner_specs([machine]), web=True, latency=INSTANT)
    with (
        running(emulated, fleet.pdu_specs(Pdu.objects.filter(site=site))),
        redis_server(broker_port),
        celery_worker(queues=(queues.queue_for(site.slug),), extra_env=env),
    ):
        # What beat runs every minute, against the broker that is now back.
        subprocess.run([sys.executable, "manage.py", "sweep_commissioning"], cwd=ROOT, env=env, check=True)
        wait_for(
            lambda: SelfTestRun.objects.filter(pk=run.pk, status=SelfTestRun.Status.PASSED).exists(),
            timeout_s=60,
            what="the kept run to pass",
        )
    assert Machine.objects.get(pk=machine.pk).status == MachineStatus.LIVE


def test_a_request_never_waits_on_a_broker_that_is_down(floor, monkeypatch, settings):
    """One short attempt per request, no retries: the runs wait in the outbox, the answer
    comes at once and says that dispatch is delayed."""
    from rest_framework.test import APIClient

    from hosting.celery import app
    from hosting.commissioning import tasks

    port = free_port()
    with redis_server(port):
        pass  # a Redis of our own, now stopped: its port refuses connections
    monkeypatch.setattr(app.conf, "broker_write_url", f"redis://127.0.0.1:{port}/0")
    settings.COMMISSIONING_CHUNK = 1  # five messages for the batch below: one attempt in all
    attempts = []
    publish = tasks.commission_runs.apply_async

    def counted(*args, **kwargs):
        attempts.append(kwargs.get("connection"))
        return publish(*args, **kwargs)

    monkeypatch.setattr(tasks.commission_runs, "apply_async", counted)
    CommissioningPolicy.objects.create(site=floor["site"], burn_in_s=1, sample_interval_s=1, probe_timeout_s=2)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(StaffFactory(), 'ops')[1]}")
    machines = racked(floor, 6)

    batch = api.post("/api/v1/commissioning/batches/", {"machines": [m.pk for m in machines[:5]]}, format="json")
    assert batch.status_code == 201, batch.content
    assert batch.json()["dispatch"] == "delayed"
    assert len(attempts) == 1  # not one per message, and not retried
    (connection,) = attempts
    assert connection.connect_timeout <= settings.COMMISSIONING_PUBLISH_TIMEOUT_MS / 1000
    assert connection.transport_options["max_retries"] == 0

    one = api.post(f"/api/v1/machines/{machines[5].pk}/commission/")
    assert one.status_code == 202, one.content
    assert (one.json()["status"], one.json()["dispatch"]) == ("pending", "delayed")
    assert len(attempts) == 2
    assert set(SelfTestRun.objects.values_list("status", flat=True)) == {SelfTestRun.Status.PENDING}
    assert SelfTestRun.objects.count() == 6
