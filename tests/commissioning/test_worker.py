"""End to end: a real Celery worker (another process, on the configured broker — Redis in CI)
commissions machines of the database against the emulated fleet over real TCP and UDP."""

import os
import signal
import time
from decimal import Decimal

import pytest

from capacity.models import Pdu
from hosting import queues
from hosting.commissioning import fleet, runs
from hosting.commissioning.emulator import INSTANT, Fleet, running
from hosting.commissioning.tasks import commission_runs
from hosting.lifecycle import MachineStatus
from hosting.models import (
    CheckResult,
    CommissioningPolicy,
    Machine,
    MachineEvent,
    MachineModel,
    Sample,
    SelfTestRun,
)
from tests.factories import SiteFactory, racked
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

S = SelfTestRun.Status
STALE_S = 3
WORKER_ENV = {"COMMISSIONING_STALE_AFTER_S": str(STALE_S)}


@pytest.fixture(autouse=True)
def _fast_staleness(settings):
    settings.COMMISSIONING_STALE_AFTER_S = STALE_S
    settings.COMMISSIONING_HEARTBEAT_S = 1


def world(floor, cases, *, net: int, burn_in_s=3, interval_s="0.5"):
    """Machines racked on the floor, one per (model, fault), with IPs on 127.<net>.0.x,
    a metered PDU on their circuit, and a short self-test policy (a burn-in longer than
    a flapping miner's 2 s period, so that it is caught)."""
    site = floor["site"]
    CommissioningPolicy.objects.create(
        site=site, burn_in_s=burn_in_s, sample_interval_s=Decimal(interval_s), probe_timeout_s=2
    )
    circuit = floor["circuits"][0]
    circuit.pdu = Pdu.objects.create(site=site, name="PDU A", host=f"127.{net}.1.1", port=16100 + net)
    circuit.save()
    machines, faults = [], {}
    for n, (model, fault) in enumerate(cases, start=1):
        (machine,) = racked(floor, 1, model=MachineModel.objects.get(slug=model))
        machine.ip = f"127.{net}.0.{n}"
        machine.save()
        machine.slot.outlet = n
        machine.slot.save()
        faults[machine.serial] = {fault} if fault else set()
        machines.append(machine)
    miners = fleet.miner_specs(Machine.objects.filter(pk__in=[m.pk for m in machines]).select_related("model"), faults)
    return machines, Fleet(miners, web=True, latency=INSTANT), fleet.pdu_specs(Pdu.objects.filter(site=site))


def finished(run_ids, timeout_s=60):
    return wait_for(
        lambda: SelfTestRun.objects.filter(pk__in=run_ids, status__in=[S.PASSED, S.FAILED]).count() == len(run_ids),
        timeout_s=timeout_s,
        what=f"{len(run_ids)} run(s) to finish",
    )


CASES = [
    ("antminer-s19-pro", None),
    ("whatsminer-m30s-plus-plus", None),
    ("antminer-s19-pro", "dead_board"),
    ("antminer-s19-pro", "missing_chips"),
    ("antminer-s19-pro", "under_hashing"),
    ("antminer-s19-pro", "overheating"),
    ("antminer-s19-pro", "hot_outlet"),
    ("antminer-s19-pro", "stopped_fan"),
    ("whatsminer-m30s-plus-plus", "over_drawing"),
    ("antminer-s19-pro", "wrong_model"),
    ("antminer-s19-pro", "wrong_mac"),
    ("antminer-s19-pro", "unreachable"),
    ("antminer-s19-pro", "hung"),
    ("antminer-s19-pro", "flapping"),
]
EXPECTED_REASON = {
    "dead_board": "hashing: 1 of 3 hashboards missing",
    "missing_chips": "of 114 chips",
    "under_hashing": "hashing: averaged",
    "overheating": "thermal: chips reached",
    "hot_outlet": "thermal: chips reached",
    "stopped_fan": "thermal: only 3 of 4 fans",
    "over_drawing": "power: draws",
    "wrong_model": "identity: model is S19j Pro",
    "wrong_mac": "identity: MAC is",
    "unreachable": "identity: the miner does not answer",
    "hung": "identity: the miner does not answer",
    "flapping": "unreachable",
}


def test_every_fault_mode_through_a_real_worker(floor):
    machines, emulated, pdus = world(floor, CASES, net=81)
    site_queue = queues.queue_for(floor["site"].slug)
    with running(emulated, pdus), celery_worker(queues=(site_queue,), extra_env=WORKER_ENV):
        batch = runs.start_batch(machines, label="every fault")
        run_ids = list(batch.runs.values_list("pk", flat=True))
        finished(run_ids)
    for machine, (_, fault) in zip(machines, CASES, strict=True):
        machine.refresh_from_db()
        run = machine.self_tests.get()
        if fault is None:
            assert (run.status, machine.status) == (S.PASSED, MachineStatus.LIVE), run.reasons
            assert machine.events.latest("at").reason == f"self-test #{run.pk} passed"
        else:
            assert (run.status, machine.status) == (S.FAILED, MachineStatus.FAILED), fault
            assert any(EXPECTED_REASON[fault] in r for r in run.reasons), (fault, run.reasons)
        assert set(run.checks.values_list("name", flat=True)) == {"identity", "power", "hashing", "thermal"}
    assert runs.progress(batch.runs.all()) == {"total": 14, "queued": 0, "testing": 0, "passed": 2, "failed": 12}
    # The hung miner spent its timeouts on its own: the healthy ones' verdicts were stored first.
    finished_at = {fault: m.self_tests.get().finished_at for m, (_, fault) in zip(machines, CASES, strict=True)}
    assert finished_at[None] < finished_at["hung"]


def test_a_duplicate_enqueue_makes_one_run_and_one_verdict(floor):
    machines, emulated, pdus = world(floor, [("antminer-s19-pro", None)], net=82)
    with running(emulated, pdus), celery_worker(queues=(queues.queue_for(floor["site"].slug),), extra_env=WORKER_ENV):
        (run,) = runs.request(machines)
        (again,) = runs.request(machines)  # a double click
        assert again.pk == run.pk
        # …and the same message published twice more, as a retrying client might.
        queue = queues.queue_for(floor["site"].slug)
        for _ in range(2):
            commission_runs.apply_async(args=[[run.pk]], queue=queue)
        finished([run.pk])
        time.sleep(1.5)  # let the duplicates arrive and be ignored
    run.refresh_from_db()
    assert (run.status, run.attempt) == (S.PASSED, 1)
    assert CheckResult.objects.filter(run=run).count() == 4
    assert MachineEvent.objects.filter(machine=machines[0], to_status=MachineStatus.LIVE).count() == 1


def test_runs_go_to_their_sites_queue_only(floor):
    machines, emulated, pdus = world(floor, [("antminer-s19-pro", None)], net=83)
    elsewhere = SiteFactory(slug="elsewhere")
    other_machine = racked_elsewhere(elsewhere)
    with running(emulated, pdus), celery_worker(queues=(queues.queue_for(floor["site"].slug),), extra_env=WORKER_ENV):
        (ours,) = runs.request(machines)
        (theirs,) = runs.request([other_machine])
        finished([ours.pk])
        time.sleep(1)
        assert SelfTestRun.objects.get(pk=theirs.pk).status == S.DISPATCHED  # nobody at that site took it
    with celery_worker(queues=(queues.queue_for("elsewhere"),), extra_env=WORKER_ENV):
        finished([theirs.pk])  # its own worker did (and failed it: nothing answers there)
    assert SelfTestRun.objects.get(pk=theirs.pk).reasons[0].startswith("identity: the miner does not answer")


def racked_elsewhere(site):
    from tests.factories import CircuitFactory, ContractFactory, RackFactory, SlotFactory

    rack = RackFactory(site=site)
    slot = SlotFactory(rack=rack, circuit=CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100))
    floor = {"slots": [slot], "circuits": [slot.circuit], "contract": ContractFactory(site=site)}
    (machine,) = racked(floor, 1)
    machine.ip = "127.83.9.9"  # on that site's network, where this test runs no fleet
    machine.save(update_fields=["ip"])
    return machine


def test_a_worker_killed_mid_test_leaves_exactly_one_verdict_after_restart(floor):
    machines, emulated, pdus = world(floor, [("antminer-s19-pro", None)], net=84, burn_in_s=6, interval_s="1")
    queue = queues.queue_for(floor["site"].slug)
    with running(emulated, pdus):
        with celery_worker(queues=(queue,), extra_env=WORKER_ENV) as worker:
            (run,) = runs.request(machines)
            wait_for(lambda: _running_a_while(run.pk), what="the test to run a while")
            os.killpg(worker.process.pid, signal.SIGKILL)  # the whole worker, mid burn-in
            worker.process.wait()
        run.refresh_from_db()
        assert run.status == S.RUNNING
        assert Machine.objects.get(pk=machines[0].pk).status == MachineStatus.TESTING  # not live unverified
        with celery_worker(queues=(queue,), extra_env=WORKER_ENV):
            time.sleep(STALE_S + 0.5)  # its heartbeat goes stale
            runs.sweep()  # what beat does every minute: hand the orphaned run out again
            finished([run.pk])
    run.refresh_from_db()
    assert run.status == S.PASSED
    assert run.attempt >= 2
    assert CheckResult.objects.filter(run=run).count() == 4  # one set: the dead attempt's are gone
    samples = list(Sample.objects.filter(run=run).values_list("seq", flat=True))
    assert samples == list(range(len(samples)))
    assert MachineEvent.objects.filter(machine=machines[0], to_status=MachineStatus.LIVE).count() == 1


def _running_a_while(run_id) -> bool:
    run = SelfTestRun.objects.get(pk=run_id)
    return run.status == S.RUNNING and run.started_at is not None and time.time() - run.started_at.timestamp() > 2


def test_a_slow_miner_does_not_hold_up_the_next_message(floor, settings):
    # One worker process, two messages of two runs. The hung miner takes its timeouts and
    # retries (~8 s); the second message's miners need not wait for it: no chunk barrier.
    settings.COMMISSIONING_CHUNK = 2
    cases = [("antminer-s19-pro", "hung"), ("antminer-s19-pro", None), ("antminer-s19-pro", None)]
    cases.append(("whatsminer-m30s-plus-plus", None))
    machines, emulated, pdus = world(floor, cases, net=85, burn_in_s=1, interval_s="1")
    with running(emulated, pdus), celery_worker(queues=(queues.queue_for(floor["site"].slug),), extra_env=WORKER_ENV):
        created = runs.request(machines)  # in order: [hung, healthy] then [healthy, healthy]
        finished([r.pk for r in created])
    finished_at = {r.machine_id: SelfTestRun.objects.get(pk=r.pk).finished_at for r in created}
    hung, *healthy = (finished_at[m.pk] for m in machines)
    assert all(at < hung for at in healthy), finished_at
