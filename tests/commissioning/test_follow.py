"""The demo's path end to end: the emulated fleet (manage.py emulate_fleet --follow) is already
running when a received machine is racked in the admin with its IP; the fleet picks it up, a
real Celery worker commissions it, and it passes."""

import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from decimal import Decimal

import pytest

from capacity.models import Pdu
from hosting import queues
from hosting.lifecycle import MachineStatus
from hosting.models import CommissioningPolicy, Machine, MachineModel, SelfTestRun
from tests.factories import MachineFactory, UserFactory
from tests.workers import ROOT, celery_worker, database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

S = SelfTestRun.Status


def _answers(ip: str) -> bool:
    try:
        socket.create_connection((ip, 4028), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def emulate_fleet(site: str):
    """`manage.py emulate_fleet --follow` in its own process on the test database."""
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "manage.py", "emulate_fleet", "--site", site, "--follow", "--follow-every", "0.3",
            "--latency", "instant"]  # fmt: skip
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("Emulating 0 miner(s)"), first
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_a_machine_racked_in_the_admin_is_served_by_the_running_fleet_and_passes(floor, client):
    site = floor["site"]
    CommissioningPolicy.objects.create(
        site=site, burn_in_s=2, sample_interval_s=Decimal("0.5"), probe_timeout_s=3, commission_when_racked=True
    )
    pdu = Pdu.objects.create(site=site, name="PDU A", host="127.86.1.1", port=16186)
    for circuit in floor["circuits"]:
        circuit.pdu = pdu
        circuit.save()
    for slot in floor["slots"]:  # every slot metered: wherever the planner puts it
        slot.outlet = slot.position
        slot.save()
    s19_pro = MachineModel.objects.get(slug="antminer-s19-pro")
    machine = MachineFactory(contract=floor["contract"], status=MachineStatus.RECEIVED, model=s19_pro)
    assert machine.ip is None  # received machines have no address yet
    client.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))
    with emulate_fleet(site.slug):
        selected = {"action": "rack", "_selected_action": [machine.pk]}
        asked = client.post("/admin/hosting/machine/", {**selected, "index": "0"})
        assert f'name="ip_{machine.pk}"' in asked.content.decode()
        racked = client.post(
            "/admin/hosting/machine/",
            {**selected, "apply": "1", f"ip_{machine.pk}": "127.86.0.7"},
        )
        assert racked.status_code == 302
        assert SelfTestRun.objects.get(machine=machine).status == S.DISPATCHED  # racked with an IP: sent
        # The site's worker comes up once the fleet has picked the machine up (as a miner boots
        # before it answers), so the test does not race the fleet's next look at the database.
        wait_for(lambda: _answers("127.86.0.7"), timeout_s=20, what="the fleet to serve the racked machine")
        with celery_worker(queues=(queues.queue_for(site.slug),)):
            run = wait_for(
                lambda: SelfTestRun.objects.filter(machine=machine, status__in=[S.PASSED, S.FAILED]).first(),
                timeout_s=60,
                what="the self-test's verdict",
            )
    assert run.status == S.PASSED, run.reasons
    assert Machine.objects.get(pk=machine.pk).status == MachineStatus.LIVE
    power = run.checks.get(name="power")
    assert power.measurements["source"] == "pdu_outlet"  # the PDU agent followed the rewiring too
