"""GET /api/v1/machines/{id}/telemetry/ and /api/v1/contracts/{id}/uptime/: the tenant's
own only (another's is 404), paged, bad input refused in the API's error shape."""

import datetime as dt

import pytest

from tests.api.conftest import client_for
from tests.factories import MembershipFactory, StaffFactory
from tests.telemetry.views_data import NOW, live, roll_day, roll_hours, write_day

pytestmark = pytest.mark.django_db

FROM, TO = (NOW - dt.timedelta(hours=24)).isoformat(), NOW.isoformat()


@pytest.fixture
def fleet(floor):
    machines = live(floor, 2)
    write_day(machines, state=lambda m, i: "unreachable" if m == machines[1] and i >= 276 else "hashing",
              unknown=set(range(240, 264)))  # fmt: skip
    roll_hours(machines)
    roll_day(floor["contract"].pk, (NOW - dt.timedelta(days=1)).date())
    owner = MembershipFactory(tenant=floor["contract"].tenant).user
    return {**floor, "machines": machines, "api": client_for(owner)}


def test_a_machines_five_minute_windows_are_paged(fleet):
    machine = fleet["machines"][1]
    url = f"/api/v1/machines/{machine.pk}/telemetry/"
    body = fleet["api"].get(url, {"from": FROM, "to": TO, "page_size": 500}).json()
    assert body["count"] == 288
    assert len(body["results"]) == 288
    last = body["results"][-1]
    assert last["reachable"] is False
    assert last["hashrate_ths"] == 0.0
    assert body["results"][250]["reachable"] is None  # unknown, not down
    page = fleet["api"].get(url, {"from": FROM, "to": TO}).json()
    assert len(page["results"]) == 50
    assert page["next"]


def test_hourly_and_daily_series(fleet):
    url = f"/api/v1/machines/{fleet['machines'][0].pk}/telemetry/"
    hours = fleet["api"].get(url, {"from": FROM, "to": TO, "resolution": "1h"}).json()
    assert hours["count"] == 24
    assert hours["results"][0]["hashrate_ths"] == pytest.approx(95.0)
    assert hours["results"][0]["windows"] == 12
    assert hours["results"][0]["reachable"] is None
    days = fleet["api"].get(url, {"resolution": "1d", "to": TO}).json()  # from: 30 days before `to`
    assert [d["start"] for d in days["results"]] == ["2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"resolution": "2m"}, "resolution"),
        ({"from": TO, "to": FROM}, "to"),
        ({"from": "2026-01-01T00:00:00Z", "to": TO}, "from"),  # over 31 days at 5m
        ({"from": "yesterday"}, "from"),
        ({"page_size": "0"}, "page_size"),
    ],
)
def test_bad_telemetry_parameters_are_refused(fleet, query, field):
    response = fleet["api"].get(f"/api/v1/machines/{fleet['machines'][0].pk}/telemetry/", query)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [field]


def test_a_contracts_month_of_uptime_per_day(fleet):
    body = fleet["api"].get(f"/api/v1/contracts/{fleet['contract'].pk}/uptime/", {"month": "2026-03"}).json()
    assert body["contract"] == fleet["contract"].pk
    assert body["month"] == "2026-03"
    assert (body["windows"], body["unknown"], body["reachable"], body["hashing"]) == (576, 48, 516, 516)
    assert body["hashing_pct"] == pytest.approx(100 * 516 / 528)
    assert [d["day"] for d in body["days"]] == ["2026-03-14", "2026-03-15"]
    assert body["days"][1]["unknown"] == 48
    assert body["days"][1]["unknown_pct"] == pytest.approx(100 * 48 / 288)
    assert body["kwh"] == pytest.approx(3.25 * 516 / 12)
    empty = fleet["api"].get(f"/api/v1/contracts/{fleet['contract'].pk}/uptime/", {"month": "2026-02"}).json()
    assert empty["windows"] == 0
    assert empty["hashing_pct"] is None
    assert empty["days"] == []


@pytest.mark.parametrize("month", ["2026-13", "2026-3", "1999-12", "march"])
def test_a_bad_month_is_refused(fleet, month):
    response = fleet["api"].get(f"/api/v1/contracts/{fleet['contract'].pk}/uptime/", {"month": month})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["month"]


def test_another_tenants_machine_and_contract_are_not_found(fleet):
    stranger = client_for(MembershipFactory().user)
    for url in (
        f"/api/v1/machines/{fleet['machines'][0].pk}/telemetry/",
        f"/api/v1/contracts/{fleet['contract'].pk}/uptime/",
    ):
        response = stranger.get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert client_for().get(url).status_code == 401
        assert client_for(StaffFactory()).get(url).status_code == 200  # staff see every tenant's
