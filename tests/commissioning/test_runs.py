"""Runs in the database: requested once, staggered, claimed by one attempt, one verdict."""

import datetime as dt

import pytest
from django.utils import timezone

from hosting import services
from hosting.commissioning import checks, pipeline, runs
from hosting.lifecycle import IllegalTransition, MachineStatus
from hosting.models import CheckResult, Machine, MachineEvent, Sample, SelfTestRun
from hosting.readings import Board, Reading
from tests.factories import MachineFactory, StaffFactory, racked

pytestmark = pytest.mark.django_db

S = SelfTestRun.Status


def test_requesting_puts_the_machine_under_test_and_records_who(floor, policy):
    (machine,) = racked(floor, 1)
    staff = StaffFactory()
    (run,) = runs.request([machine], by=staff)
    machine.refresh_from_db()
    assert (run.status, run.requested_by, machine.status) == (S.PENDING, staff, MachineStatus.TESTING)
    event = machine.events.latest("at")
    assert (event.to_status, event.by) == (MachineStatus.TESTING, staff)
    assert f"#{run.pk}" in event.reason


def test_asking_twice_makes_one_run(floor, policy):
    (machine,) = racked(floor, 1)
    first = runs.request([machine])
    second = runs.request([machine])
    assert first[0].pk == second[0].pk
    assert SelfTestRun.objects.count() == 1


def test_only_racked_failed_or_live_machines_can_be_tested_and_a_refusal_changes_nothing(floor, policy):
    ready = racked(floor, 1)
    announced = MachineFactory(contract=floor["contract"])
    with pytest.raises(IllegalTransition, match="from announced to testing"):
        runs.request([*ready, announced])
    assert not SelfTestRun.objects.exists()
    assert Machine.objects.get(pk=ready[0].pk).status == MachineStatus.RACKED


# --- the stagger ------------------------------------------------------------------------------


def dispatched_per_circuit():
    rows = SelfTestRun.objects.filter(status=S.DISPATCHED).values_list("machine__slot__circuit_id", flat=True)
    counts = {}
    for circuit in rows:
        counts[circuit] = counts.get(circuit, 0) + 1
    return counts


def test_dispatch_staggers_per_circuit_and_per_site(floor, policy):
    policy.max_tests_per_circuit = 2
    policy.max_concurrent_tests = 3
    policy.save()
    first_circuit = racked(floor, 5, circuit=0)
    second_circuit = racked(floor, 5, circuit=1)
    runs.request(first_circuit + second_circuit)
    assert runs.dispatch(floor["site"].pk) == 3
    per_circuit = dispatched_per_circuit()
    assert max(per_circuit.values()) <= 2
    assert sum(per_circuit.values()) == 3
    assert runs.dispatch(floor["site"].pk) == 0  # the site is at its cap
    # Two finish: two more go, still within each circuit's cap.
    for run in SelfTestRun.objects.filter(status=S.DISPATCHED)[:2]:
        run.status, run.finished_at = S.PASSED, timezone.now()
        run.save()
    assert runs.dispatch(floor["site"].pk) == 2
    assert max(dispatched_per_circuit().values()) <= 2


def test_a_circuit_whose_live_load_leaves_little_headroom_tests_one_at_a_time(floor, policy):
    # 54,628 W usable; 15 live S19s (48,750 W) leave room to power one more at a time.
    live = racked(floor, 15, circuit=0)
    Machine.objects.filter(pk__in=[m.pk for m in live]).update(status=MachineStatus.LIVE)
    waiting = racked(floor, 1, circuit=0)
    runs.request(waiting)
    caps = runs.circuit_caps(policy, [floor["circuits"][0].pk])
    assert caps == {floor["circuits"][0].pk: 1}
    assert runs.dispatch(floor["site"].pk) == 1


def test_dispatch_goes_oldest_first(floor, policy):
    policy.max_concurrent_tests = 1
    policy.save()
    older, newer = racked(floor, 2)
    runs.request([older], now=timezone.now() - dt.timedelta(minutes=5))
    runs.request([newer])
    runs.dispatch(floor["site"].pk)
    assert SelfTestRun.objects.get(status=S.DISPATCHED).machine_id == older.pk


# --- claim, finish, one verdict ---------------------------------------------------------------


def result_for(run, passed=True):
    outcomes = [checks.Outcome(name, passed, () if passed else ("bad",)) for name in ("identity", "power")]
    reading = Reading(timezone.now(), True, 110.0)
    return pipeline.Result(run.pk, outcomes, [reading])


@pytest.fixture
def dispatched(floor, policy):
    machines = racked(floor, 2)
    runs.request(machines)
    runs.dispatch(floor["site"].pk)
    return list(SelfTestRun.objects.filter(status=S.DISPATCHED).order_by("pk"))


def test_a_claimed_run_is_not_claimed_again_by_a_duplicate_message(dispatched):
    ids = [r.pk for r in dispatched]
    token, claimed = runs.claim(ids)
    assert {r.pk for r in claimed} == set(ids)
    assert runs.claim(ids)[1] == []  # the duplicate finds them running, heartbeat fresh
    assert {r.attempt for r in SelfTestRun.objects.all()} == {1}
    assert token


def test_finishing_writes_one_verdict_and_moves_the_machines(dispatched):
    token, claimed = runs.claim([r.pk for r in dispatched])
    passed, failed = claimed
    finished = runs.finish([result_for(passed, True), result_for(failed, False)], token)
    assert len(finished) == 2
    passed.refresh_from_db()
    failed.refresh_from_db()
    assert (passed.status, failed.status) == (S.PASSED, S.FAILED)
    assert failed.reasons == ["identity: bad", "power: bad"]
    assert Machine.objects.get(pk=passed.machine_id).status == MachineStatus.LIVE
    assert Machine.objects.get(pk=failed.machine_id).status == MachineStatus.FAILED
    assert MachineEvent.objects.filter(to_status=MachineStatus.FAILED).get().reason == "identity: bad; power: bad"
    assert CheckResult.objects.count() == 4
    assert Sample.objects.count() == 2
    # The same results again (a retried finish) change nothing.
    assert runs.finish([result_for(passed, False)], token) == []
    assert SelfTestRun.objects.get(pk=passed.pk).status == S.PASSED


def test_every_sensor_of_every_board_is_stored_with_the_sample(dispatched):
    token, (run, _) = runs.claim([r.pk for r in dispatched])
    board = Board(0, 36.7, 114, 98.0, 92.0, chip_temps_c=(83, 83, 98, 98), pcb_temps_c=(77, 77, 92, 92))
    reading = Reading(timezone.now(), True, 110.0, (board,))
    runs.finish([pipeline.Result(run.pk, [checks.Outcome("identity", True)], [reading])], token)
    (stored,) = Sample.objects.get(run=run).boards
    assert (stored["chip_temps_c"], stored["pcb_temps_c"]) == ([83, 83, 98, 98], [77, 77, 92, 92])
    assert (stored["chip_temp_c"], stored["board_temp_c"]) == (98.0, 92.0)  # the hottest, as shown


def test_a_worker_that_lost_its_run_cannot_write_a_verdict(dispatched, settings):
    ids = [r.pk for r in dispatched]
    old_token, _ = runs.claim(ids)
    # Its heartbeat goes stale (the worker was killed); another attempt takes over.
    SelfTestRun.objects.update(
        heartbeat_at=timezone.now() - dt.timedelta(seconds=settings.COMMISSIONING_STALE_AFTER_S + 1)
    )
    new_token, claimed = runs.claim(ids)
    assert len(claimed) == 2
    assert {r.attempt for r in SelfTestRun.objects.all()} == {2}
    assert runs.finish([result_for(r, False) for r in claimed], old_token) == []  # the zombie's verdict
    assert len(runs.finish([result_for(r, True) for r in claimed], new_token)) == 2
    assert set(SelfTestRun.objects.values_list("status", flat=True)) == {S.PASSED}
    assert Machine.objects.filter(status=MachineStatus.LIVE).count() == 2


def test_the_sweep_hands_out_runs_whose_worker_died_and_resends_lost_messages(dispatched, settings):
    stale = timezone.now() - dt.timedelta(seconds=settings.COMMISSIONING_STALE_AFTER_S + 1)
    running, lost = dispatched
    runs.claim([running.pk])
    SelfTestRun.objects.filter(pk=running.pk).update(heartbeat_at=stale)
    SelfTestRun.objects.filter(pk=lost.pk).update(dispatched_at=stale)
    outcome = runs.sweep()
    assert (outcome["orphaned"], outcome["lost"], outcome["sent"]) == (1, 1, 2)
    assert set(SelfTestRun.objects.values_list("status", flat=True)) == {S.DISPATCHED}
    assert Machine.objects.filter(status=MachineStatus.TESTING).count() == 2  # never live unverified


def test_progress_counts_for_the_bar(floor, policy):
    machines = racked(floor, 4)
    batch = runs.start_batch(machines, label="packing list 7")
    runs.dispatch(floor["site"].pk)
    token, claimed = runs.claim([r.pk for r in SelfTestRun.objects.filter(status=S.DISPATCHED)][:3])
    runs.finish([result_for(claimed[0], True), result_for(claimed[1], False)], token)
    assert runs.progress(batch.runs.all()) == {"total": 4, "queued": 1, "testing": 1, "passed": 1, "failed": 1}


def test_a_machine_is_commissioned_when_racked_if_the_site_says_so(floor, policy, django_capture_on_commit_callbacks):
    machine = MachineFactory(contract=floor["contract"], status=MachineStatus.RECEIVED)
    with django_capture_on_commit_callbacks(execute=True):
        services.rack_machine(machine, floor["slots"][0], ip="10.9.0.1")  # on the network: ready
    assert SelfTestRun.objects.get(machine=machine).status in (S.PENDING, S.DISPATCHED)
    assert Machine.objects.get(pk=machine.pk).status == MachineStatus.TESTING
    policy.commission_when_racked = False
    policy.save()
    other = MachineFactory(contract=floor["contract"], status=MachineStatus.RECEIVED)
    with django_capture_on_commit_callbacks(execute=True):
        services.rack_machine(other, floor["slots"][1], ip="10.9.0.2")
    assert Machine.objects.get(pk=other.pk).status == MachineStatus.RACKED
