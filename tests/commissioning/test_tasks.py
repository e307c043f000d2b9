"""A worker process's commissioner, in process: verdicts are stored as they come, none is
lost when the worker stops, whatever the database thread is doing at that moment, and
what cannot finish is handed back."""

import time

import pytest

from capacity.models import Pdu
from hosting.commissioning import fleet, runs, tasks
from hosting.commissioning.emulator import INSTANT, Fleet, running
from hosting.models import CommissioningPolicy, Machine, MachineModel, SelfTestRun
from tests.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

S = SelfTestRun.Status


def world(floor, net: int):
    """A quick S19 (no burn-in) and a Whatsminer with a 2 s burn-in, on a metered PDU."""
    site = floor["site"]
    CommissioningPolicy.objects.create(site=site, burn_in_s=0, sample_interval_s=1, probe_timeout_s=2)
    MachineModel.objects.filter(slug="whatsminer-m30s-plus-plus").update(burn_in_s=2)
    circuit = floor["circuits"][0]
    circuit.pdu = Pdu.objects.create(site=site, name="PDU", host=f"127.{net}.1.1", port=16100 + net)
    circuit.save()
    from tests.factories import racked

    machines = []
    for n, model in enumerate(["antminer-s19-pro", "whatsminer-m30s-plus-plus"], start=1):
        (machine,) = racked(floor, 1, model=MachineModel.objects.get(slug=model))
        machine.ip = f"127.{net}.0.{n}"
        machine.save()
        machine.slot.outlet = n
        machine.slot.save()
        machines.append(machine)
    miners = fleet.miner_specs(Machine.objects.filter(pk__in=[m.pk for m in machines]).select_related("model"))
    return machines, Fleet(miners, web=True, latency=INSTANT), fleet.pdu_specs(Pdu.objects.filter(site=site))


def claimed_runs(machines):
    created = runs.request(machines)
    SelfTestRun.objects.filter(pk__in=[r.pk for r in created]).update(status=S.DISPATCHED)  # as if sent
    return runs.claim([r.pk for r in created])


def test_no_verdict_is_lost_when_the_worker_stops_during_a_slow_database_call(floor, monkeypatch):
    # The quick run's verdict is ready long before the first store (at 1 s), which then
    # waits for the database thread, busy with a slow call until ~4.3 s. The slow run ends
    # at ~2 s and the worker shuts down meanwhile: the store in flight is awaited, not
    # dropped, and the slow run's verdict is stored after it.
    monkeypatch.setattr(tasks, "FLUSH_EVERY_S", 1.0)
    machines, emulated, pdus = world(floor, net=86)
    token, claimed = claimed_runs(machines)
    assert len(claimed) == 2
    with running(emulated, pdus):
        commissioner = tasks.Commissioner(concurrency=8)
        assert commissioner.admit(claimed, token) == 2
        time.sleep(0.3)
        commissioner.database.submit(time.sleep, 4.0)  # a slow call in the database's one thread
        time.sleep(2.5)  # the slow run is done, the quick one's store still waits
        commissioner.close()
    statuses = dict(SelfTestRun.objects.filter(pk__in=[r.pk for r in claimed]).values_list("pk", "status"))
    assert set(statuses.values()) == {S.PASSED}, statuses
    assert set(SelfTestRun.objects.values_list("attempt", flat=True)) == {1}  # no second go needed


def test_a_worker_that_stops_hands_back_what_it_cannot_finish(floor):
    machines, emulated, pdus = world(floor, net=87)
    MachineModel.objects.filter(slug="whatsminer-m30s-plus-plus").update(burn_in_s=60)
    token, claimed = claimed_runs(machines)
    quick, slow = sorted(claimed, key=lambda r: r.machine.model.slug)  # the S19, the Whatsminer
    with running(emulated, pdus):
        commissioner = tasks.Commissioner(concurrency=8)
        commissioner.admit(claimed, token)
        wait_for(lambda: SelfTestRun.objects.filter(pk=quick.pk, status=S.PASSED).exists(), what="the quick verdict")
        commissioner.close(wait_s=0.5)
    # Not left running until its heartbeat goes stale: pending, for the sweep to send again.
    assert SelfTestRun.objects.get(pk=slow.pk).status == S.PENDING
    assert Machine.objects.get(pk=slow.machine_id).status == "testing"
