"""GET /api/v1/alerts/ and POST /api/v1/alerts/{id}/acknowledge/: tenant-scoped (another
tenant's alert is not found), staff see and acknowledge everything, filters, pages, and a
fixed number of queries whatever the number of alerts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hosting.telemetry.models import Alert, AlertKind
from tests.api.conftest import client_for
from tests.factories import MembershipFactory, StaffFactory
from tests.telemetry.alert_world import (
    at,
    live,
    open_alerts,
    other_tenants_machine,
    write,
    write_circuit,
)

pytestmark = pytest.mark.django_db

LIST = "/api/v1/alerts/"


def detail(alert) -> str:
    return f"/api/v1/alerts/{alert.pk}/"


def ack(alert) -> str:
    return f"/api/v1/alerts/{alert.pk}/acknowledge/"


@pytest.fixture
def world(floor, fleet):
    theirs = other_tenants_machine(floor)
    write([theirs], at(0), chip_temp_max_c=99.0)
    write_circuit(floor["circuits"][0], at(0), 60_000.0)
    open_alerts(floor, fleet)
    return {"ours": fleet, "theirs": theirs, "theirs_alert": Alert.objects.get(machine=theirs)}


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_tenant_lists_the_alerts_of_their_machines_only(tenant_user, world):
    api = client_for(tenant_user)
    mine = set(Alert.objects.filter(machine__in=world["ours"]).values_list("pk", flat=True))
    assert len(mine) == 2
    assert ids(api.get(LIST)) == mine
    row = api.get(LIST).json()["results"][0]
    assert row["kind"] == AlertKind.FANS_STOPPED
    assert row["state"] == "open"
    assert row["site"] == world["ours"][0].contract.site.slug
    assert row["values"]["fans_ok"] is False
    assert row["acknowledged_by"] is None


def test_another_tenants_alert_is_not_found_and_a_tenant_cannot_acknowledge(tenant_user, world):
    api = client_for(tenant_user)
    theirs = world["theirs_alert"]
    assert api.get(detail(theirs)).status_code == 404
    assert api.post(ack(theirs)).status_code == 404
    circuit_alert = Alert.objects.get(circuit__isnull=False)
    assert api.get(detail(circuit_alert)).status_code == 404  # circuits are the host's
    mine = Alert.objects.filter(machine=world["ours"][0]).get()
    assert api.get(detail(mine)).status_code == 200
    refused = api.post(ack(mine))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert not Alert.objects.filter(acknowledged_at__isnull=False).exists()


def test_anonymous_clients_are_refused(world):
    api = client_for()
    assert api.get(LIST).status_code == 401
    assert api.post(ack(world["theirs_alert"])).status_code == 401


def test_staff_see_every_alert_and_acknowledge_once(world):
    staff = StaffFactory()
    api = client_for(staff)
    assert ids(api.get(LIST)) == set(Alert.objects.values_list("pk", flat=True))
    alert = world["theirs_alert"]
    done = api.post(ack(alert))
    assert done.status_code == 200
    assert done.json()["acknowledged_by"] == staff.username
    first = done.json()["acknowledged_at"]
    again = client_for(StaffFactory()).post(ack(alert))
    assert again.json()["acknowledged_by"] == staff.username
    assert again.json()["acknowledged_at"] == first


def test_filters_open_kind_site_machine(floor, world):
    api = client_for(StaffFactory())
    write(world["ours"], at(1))  # the fans turn again: resolved
    from hosting.telemetry import alerting

    alerting.evaluate(floor["site"].pk, at(1), now=at(1))
    resolved = set(Alert.objects.filter(kind=AlertKind.FANS_STOPPED).values_list("pk", flat=True))
    assert ids(api.get(LIST, {"open": "false"})) == resolved
    assert ids(api.get(LIST, {"open": "true"})) == set(Alert.objects.open().values_list("pk", flat=True))
    assert ids(api.get(LIST, {"kind": AlertKind.CIRCUIT_HOT})) == {Alert.objects.get(circuit__isnull=False).pk}
    two_kinds = api.get(LIST, {"kind": [AlertKind.CIRCUIT_HOT, AlertKind.CHIP_HOT]})
    assert len(ids(two_kinds)) == 2
    assert ids(api.get(LIST, {"machine": world["theirs"].pk})) == {world["theirs_alert"].pk}
    assert len(ids(api.get(LIST, {"site": floor["site"].slug}))) == 4
    assert ids(api.get(LIST, {"site": "elsewhere"})) == set()
    for bad in ({"open": "maybe"}, {"kind": "meltdown"}, {"machine": "x"}, {"open": ""}):
        assert api.get(LIST, bad).status_code == 400, bad


def test_the_list_is_paged(world):
    api = client_for(StaffFactory())
    page = api.get(LIST, {"page_size": 1}).json()
    assert page["count"] == 4
    assert len(page["results"]) == 1
    assert page["next"]


def list_queries(api) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(LIST).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["tenant", "staff"])
def test_the_list_costs_the_same_queries_for_few_alerts_and_many(floor, site_policy, who):
    few = live(floor, 2)
    user = StaffFactory() if who == "staff" else MembershipFactory(tenant=few[0].tenant).user
    api = client_for(user)
    open_alerts(floor, few, 0)
    alert = Alert.objects.first()
    client_for(StaffFactory()).post(ack(alert))
    api.get(LIST)  # a token's first use is recorded once
    cost_few = list_queries(api)
    open_alerts(floor, few + live(floor, 12, circuit=1), 1, fans_ok=False, chip_temp_max_c=99.0)
    assert Alert.objects.count() == 28
    assert list_queries(api) == cost_few
