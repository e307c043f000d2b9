"""The task's own bookkeeping, in process: verdicts are stored as they come, none is lost
at the end, whatever the database thread is doing at that moment."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from capacity.models import Pdu
from hosting.commissioning import fleet, runs, tasks
from hosting.commissioning.emulator import Fleet, running
from hosting.models import CommissioningPolicy, Machine, MachineModel, SelfTestRun

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
    return machines, Fleet(miners, web=True), fleet.pdu_specs(Pdu.objects.filter(site=site))


def test_no_verdict_is_lost_when_the_task_ends_during_a_slow_database_call(floor, monkeypatch):
    # The quick run's verdict is ready long before the flusher's first round (1 s), which
    # takes it and waits for the database thread — busy with a slow call until 4.3 s. The
    # slow run ends at ~2 s, while that store is still waiting: it must not be dropped.
    monkeypatch.setattr(tasks, "FLUSH_EVERY_S", 1.0)
    machines, emulated, pdus = world(floor, net=86)
    created = runs.request(machines)
    SelfTestRun.objects.filter(pk__in=[r.pk for r in created]).update(status=S.DISPATCHED)
    token, claimed = runs.claim([r.pk for r in created])
    assert len(claimed) == 2

    async def scenario() -> int:
        async def slow_database_call() -> None:
            await asyncio.sleep(0.3)
            await sync_to_async(time.sleep)(4.0)  # the same thread the task stores verdicts in

        slow = asyncio.create_task(slow_database_call())
        stored = await tasks._commission(claimed, token)
        await slow
        return stored

    with running(emulated, pdus):
        stored = asyncio.run(scenario())
    assert stored == 2
    statuses = dict(SelfTestRun.objects.filter(pk__in=[r.pk for r in claimed]).values_list("pk", "status"))
    assert set(statuses.values()) == {S.PASSED}, statuses
