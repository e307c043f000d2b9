"""The commissioning API: staff start self-tests and batches; tenants read their own evidence."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hosting.api.serializers import MAX_BATCH
from hosting.commissioning import checks, pipeline, runs
from hosting.lifecycle import AWAITING_COMMISSIONING, COMMISSIONABLE, OFF_FLOOR, IllegalTransition, MachineStatus
from hosting.models import CommissioningPolicy, SelfTestRun
from hosting.readings import Board, Reading
from tests.api.conftest import client_for
from tests.factories import ContractFactory, MachineFactory, MembershipFactory, StaffFactory, racked

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api():
    return client_for(StaffFactory())


@pytest.fixture
def owner_api(floor):
    return client_for(MembershipFactory(tenant=floor["contract"].tenant).user)


@pytest.fixture
def stranger_api():
    return client_for(MembershipFactory().user)


@pytest.fixture(autouse=True)
def _policy(floor):
    CommissioningPolicy.objects.create(site=floor["site"], burn_in_s=0, sample_interval_s=0, probe_timeout_s=1)


def test_staff_commission_a_machine_and_asking_again_joins_the_run(floor, staff_api):
    (machine,) = racked(floor, 1)
    first = staff_api.post(f"/api/v1/machines/{machine.pk}/commission/")
    assert first.status_code == 202, first.json()
    assert first.json()["status"] == "pending"
    again = staff_api.post(f"/api/v1/machines/{machine.pk}/commission/")
    assert again.json()["run"] == first.json()["run"]
    assert SelfTestRun.objects.count() == 1


def test_a_machine_not_ready_for_testing_is_refused_with_409(floor, staff_api):
    machine = MachineFactory(contract=floor["contract"])  # announced, not racked
    response = staff_api.post(f"/api/v1/machines/{machine.pk}/commission/")
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"


def test_tenants_cannot_start_a_self_test(floor, owner_api):
    (machine,) = racked(floor, 1)
    assert owner_api.post(f"/api/v1/machines/{machine.pk}/commission/").status_code == 403


def finished_run(machine, passed=False):
    (run,) = runs.request([machine])
    runs.dispatch(machine.contract.site_id)
    token, _ = runs.claim([run.pk])
    outcomes = [
        checks.Outcome("identity", True, (), {"model": "S19"}),
        checks.Outcome("hashing", passed, () if passed else ("1 of 3 hashboards missing",), {"boards_seen": 2}),
    ]
    reading = Reading(timezone.now(), True, 73.4, (Board(0, 36.7, 76, 70.0, 60.0),), (5400,) * 4)
    runs.finish([pipeline.Result(run.pk, outcomes, [reading])], token)
    return run


def test_a_tenant_reads_its_machines_evidence_and_nobody_elses(floor, owner_api, stranger_api):
    (machine,) = racked(floor, 1)
    run = finished_run(machine)
    response = owner_api.get(f"/api/v1/machines/{machine.pk}/self-tests/")
    assert response.status_code == 200
    (body,) = response.json()["results"]
    assert (body["id"], body["status"]) == (run.pk, "failed")
    assert body["reasons"] == ["hashing: 1 of 3 hashboards missing"]
    checks_by_name = {c["name"]: c for c in body["checks"]}
    assert checks_by_name["hashing"]["measurements"] == {"boards_seen": 2}
    assert body["samples"][0]["boards"][0]["chips"] == 76
    assert body["samples"][0]["hashrate_ths"] == "73.400"
    assert stranger_api.get(f"/api/v1/machines/{machine.pk}/self-tests/").status_code == 404


def test_staff_start_a_batch_for_a_contract_and_follow_its_progress(floor, staff_api, owner_api, stranger_api):
    machines = racked(floor, 3)
    response = staff_api.post("/api/v1/commissioning/batches/", {"contract": floor["contract"].pk}, format="json")
    assert response.status_code == 201, response.json()
    batch = response.json()
    assert batch["progress"] == {"total": 3, "queued": 3, "testing": 0, "passed": 0, "failed": 0}
    assert batch["tenant"] == floor["contract"].tenant.slug
    run = SelfTestRun.objects.filter(machine=machines[0]).get()
    runs.dispatch(floor["site"].pk)
    token, _ = runs.claim([run.pk])
    runs.finish(
        [pipeline.Result(run.pk, [checks.Outcome("identity", True)], [])], token
    )  # one passes, the others still queued
    progress = owner_api.get(f"/api/v1/commissioning/batches/{batch['id']}/").json()["progress"]
    assert progress == {"total": 3, "queued": 2, "testing": 0, "passed": 1, "failed": 0}
    assert stranger_api.get(f"/api/v1/commissioning/batches/{batch['id']}/").status_code == 404


def test_a_batch_of_chosen_machines(floor, staff_api):
    machines = racked(floor, 2)
    response = staff_api.post(
        "/api/v1/commissioning/batches/", {"machines": [m.pk for m in machines], "label": "bay 4"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["progress"]["total"] == 2
    assert response.json()["label"] == "bay 4"


@pytest.mark.parametrize(
    "body",
    [{}, {"machines": []}, {"machines": [999999]}, {"contract": 999999}],
)
def test_bad_batch_requests_are_field_errors(floor, staff_api, body):
    response = staff_api.post("/api/v1/commissioning/batches/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_both_machines_and_a_contract_is_refused(floor, staff_api):
    (machine,) = racked(floor, 1)
    body = {"machines": [machine.pk], "contract": floor["contract"].pk}
    assert staff_api.post("/api/v1/commissioning/batches/", body, format="json").status_code == 400


def test_a_contract_with_nothing_racked_is_refused(staff_api):
    contract = ContractFactory()
    response = staff_api.post("/api/v1/commissioning/batches/", {"contract": contract.pk}, format="json")
    assert response.status_code == 400
    assert "contract" in response.json()["errors"]


def test_tenants_cannot_start_batches(floor, owner_api):
    (machine,) = racked(floor, 1)
    assert (
        owner_api.post("/api/v1/commissioning/batches/", {"machines": [machine.pk]}, format="json").status_code == 403
    )


def test_a_contracts_batch_takes_the_machines_awaiting_commissioning_not_live_ones(floor, staff_api):
    """The API asks lifecycle which statuses a contract's batch takes; runs.request refuses
    every status that may not be tested at all."""
    slots = iter(floor["slots"])
    machines = {
        status: MachineFactory(
            contract=floor["contract"],
            status=status,
            slot=next(slots) if status not in OFF_FLOOR else None,
            ip=f"127.0.9.{n + 1}",
        )
        for n, status in enumerate(MachineStatus)
    }
    response = staff_api.post("/api/v1/commissioning/batches/", {"contract": floor["contract"].pk}, format="json")
    assert response.status_code == 201, response.json()
    batch = SelfTestRun.objects.filter(batch=response.json()["id"])
    assert set(batch.values_list("machine__status", flat=True)) == {MachineStatus.TESTING}  # all now under test…
    taken = {s for s, m in machines.items() if batch.filter(machine=m).exists()}
    assert taken == AWAITING_COMMISSIONING == {MachineStatus.RACKED, MachineStatus.FAILED}
    machines[MachineStatus.LIVE].refresh_from_db()
    assert machines[MachineStatus.LIVE].status == MachineStatus.LIVE  # a live machine stays live and billed
    for status in set(MachineStatus) - COMMISSIONABLE:  # …and runs.request refuses every other one
        with pytest.raises(IllegalTransition):
            runs.request([machines[status]])


def test_a_batch_loads_its_machines_in_one_query(floor, staff_api):
    few = [m.pk for m in racked(floor, 2, circuit=0)]
    many = [m.pk for m in racked(floor, 16, circuit=1)]

    def queries(ids):
        with CaptureQueriesContext(connection) as captured:
            response = staff_api.post("/api/v1/commissioning/batches/", {"machines": ids}, format="json")
        assert response.status_code == 201, response.json()
        return [q["sql"] for q in captured.captured_queries]

    staff_api.get("/api/v1/commissioning/batches/")  # the token's last use is written once a minute, here
    assert len(queries(few)) == len(queries(many))


def test_ids_that_name_no_machine_are_listed_in_one_error(floor, staff_api):
    (machine,) = racked(floor, 1)
    unknown = [10**9 + n for n in range(25)]
    response = staff_api.post("/api/v1/commissioning/batches/", {"machines": [machine.pk, *unknown]}, format="json")
    assert response.status_code == 400
    listed = ", ".join(str(pk) for pk in unknown[:20])
    assert response.json()["errors"] == {"machines": [f"No machine has the id {listed} and 5 more."]}
    assert not SelfTestRun.objects.exists()


def test_a_batch_past_the_limit_is_refused_before_anything_is_read(floor, staff_api, django_assert_max_num_queries):
    (machine,) = racked(floor, 1)
    ids = [machine.pk] * (MAX_BATCH + 1)
    with django_assert_max_num_queries(3):  # the token and its user, no machine
        response = staff_api.post("/api/v1/commissioning/batches/", {"machines": ids}, format="json")
    assert response.status_code == 400
    assert "machines" in response.json()["errors"]
