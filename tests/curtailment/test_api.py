"""The QSE API: a staff token with the permission posts an event (idempotent by external_id),
ends it; refusals are clear 400s; tenants see only events that curtailed their machines and
only those machines; anonymous and unprivileged callers are refused."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from hosting.curtailment.models import (
    Event,
    EventMachine,
    EventStatus,
    Program,
    ProgramKind,
    SettlementPrice,
    SiteGrid,
)
from hosting.models import ApiToken
from tests.api.conftest import client_for
from tests.factories import ContractFactory, MachineFactory, MembershipFactory, SiteFactory, StaffFactory, UserFactory

URL = "/api/v1/curtailment/events/"


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def site(db):
    site = SiteFactory(slug="west", timezone="America/Chicago")
    Program.objects.create(site=site, kind=ProgramKind.ERS_10, name="ERS-10", response_minutes=10)
    Program.objects.create(site=site, kind=ProgramKind.ERS_30, name="ERS-30")  # the kind's 30 minutes
    return site


@pytest.fixture
def qse(db):
    """The QSE's service account: staff, not a superuser, allowed to add and change events."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="curtailment", codename__in=["add_event", "change_event"])
    )
    return client_for(user)


def body(**fields):
    start = timezone.now() + dt.timedelta(minutes=1)
    return {"site": "west", "program": "ers10", "target": "shed", "target_mw": "4.5", "starts_at": start, **fields}


def test_the_qse_posts_an_event_and_the_same_id_again_answers_the_same_event(site, qse):
    first = qse.post(URL, body(external_id="QSE-1"), format="json")
    assert first.status_code == 201, first.content
    event = Event.objects.get()
    assert (event.source, event.external_id, event.target_mw, event.program.kind) == (
        "qse",
        "QSE-1",
        Decimal("4.5"),
        "ers10",
    )
    assert event.deadline_at == event.starts_at + dt.timedelta(minutes=10)
    assert first.json()["id"] == event.pk
    assert first.json()["deadline_at"] is not None
    again = qse.post(URL, body(external_id="QSE-1", target_mw="9"), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == event.pk
    assert Event.objects.count() == 1


def test_ers30_deadline_comes_from_its_kind_and_an_explicit_one_is_kept(site, qse):
    start = timezone.now() + dt.timedelta(minutes=5)
    response = qse.post(URL, body(program="ers30", starts_at=start), format="json")
    assert response.status_code == 201
    assert Event.objects.get().deadline_at == start + dt.timedelta(minutes=30)
    deadline = start + dt.timedelta(minutes=7)
    response = qse.post(URL, body(starts_at=start, deadline_at=deadline, target="reach", target_mw="0"), format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get(pk=response.json()["id"]).deadline_at == deadline


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"site": "nowhere"}, "site", "No site 'nowhere'"),
        ({"program": "price"}, "program", "not a valid choice"),
        ({"program": "rrs"}, "program", "takes part in no active rrs program"),
        ({"target_mw": "-1"}, "target_mw", "greater than or equal to 0"),
        ({"target_mw": "0"}, "target_mw", "Shedding 0 MW is no event"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at", "Must be after starts_at"),
        ({"starts_at": "2020-01-01T00:00:00Z"}, "deadline_at", "Is in the past"),
        ({"deadline_at": "2020-01-01T00:00:00Z"}, "deadline_at", "Must not be before starts_at"),
        ({"starts_at": "tomorrow"}, "starts_at", "Datetime has wrong format"),
    ],
)
def test_bad_input_gets_a_clear_400(site, qse, fields, field, words):
    response = qse.post(URL, body(**fields), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert words in " ".join(response.json()["errors"][field])
    assert not Event.objects.exists()


def test_a_deadline_already_past_is_refused(site, qse):
    past = timezone.now() - dt.timedelta(minutes=1)
    response = qse.post(URL, body(starts_at=past - dt.timedelta(minutes=5), deadline_at=past), format="json")
    assert response.status_code == 400
    assert "Is in the past" in response.json()["errors"]["deadline_at"][0]


def test_ending_an_event_is_idempotent(site, qse):
    event_id = qse.post(URL, body(starts_at=timezone.now()), format="json").json()["id"]
    ended = qse.post(f"{URL}{event_id}/end/")
    assert ended.status_code == 200, ended.content
    assert ended.json()["ends_at"] is not None
    first_end = Event.objects.get().ends_at
    assert qse.post(f"{URL}{event_id}/end/").status_code == 200
    assert Event.objects.get().ends_at == first_end
    assert qse.post(f"{URL}999999/end/").status_code == 404


def test_ending_an_event_that_has_not_started_cancels_it(site, qse):
    event_id = qse.post(URL, body(starts_at=timezone.now() + dt.timedelta(hours=1)), format="json").json()["id"]
    assert qse.post(f"{URL}{event_id}/end/").json()["status"] == EventStatus.CANCELLED


def test_who_may_post_and_end(site, anon):
    assert anon.post(URL, body(), format="json").status_code == 401
    assert anon.get(URL).status_code == 401
    tenant = client_for(MembershipFactory().user)
    assert tenant.post(URL, body(), format="json").status_code == 403
    staff_without_the_permission = client_for(UserFactory(is_staff=True))
    assert staff_without_the_permission.post(URL, body(), format="json").status_code == 403
    not_staff_with_it = UserFactory(is_staff=False)
    not_staff_with_it.user_permissions.add(
        Permission.objects.get(content_type__app_label="curtailment", codename="add_event")
    )
    assert client_for(not_staff_with_it).post(URL, body(), format="json").status_code == 403
    assert not Event.objects.exists()
    superuser = client_for(StaffFactory())
    event_id = superuser.post(URL, body(), format="json").json()["id"]
    assert anon.post(f"{URL}{event_id}/end/").status_code == 401
    assert tenant.post(f"{URL}{event_id}/end/").status_code == 403
    assert Event.objects.get().ends_at is None


@pytest.fixture
def curtailed(site):
    """An event that curtailed two tenants' machines: north's two, south's one."""
    event = Event.objects.create(
        site=site, program=site.curtailment_programs.get(kind="ers10"), source="qse", external_id="Q-7",
        target_mw=Decimal("3"), starts_at=timezone.now(), deadline_at=timezone.now(), planned_mw=Decimal("2.5"),
    )  # fmt: skip
    tenants = {}
    for name, count in (("north", 2), ("south", 1)):
        contract = ContractFactory(site=site, tenant__slug=name)
        tenants[name] = MembershipFactory(tenant=contract.tenant).user
        for rank in range(count):
            machine = MachineFactory(contract=contract)
            EventMachine.objects.create(
                event=event, machine=machine, contract=contract, rank=rank + 10 * len(tenants), expected_shed_w=3000
            )
    Event.objects.create(site=site, source="staff", target_mw=1, starts_at=timezone.now(), deadline_at=timezone.now())
    return event, tenants


def test_tenants_see_only_events_on_their_machines_and_only_their_machines(curtailed):
    event, tenants = curtailed
    north = client_for(tenants["north"]).get(URL)
    assert north.status_code == 200
    (shown,) = north.json()["results"]
    assert shown["id"] == event.pk
    north_machines = set(EventMachine.objects.filter(contract__tenant__slug="north").values_list("machine", flat=True))
    assert shown["machine_count"] == 2
    listed = client_for(tenants["north"]).get(f"{URL}{event.pk}/machines/").json()["results"]
    assert {m["machine"] for m in listed} == north_machines
    assert (shown["external_id"], shown["planned_mw"], shown["shortfall_mw"]) == (None, None, None)
    south = client_for(tenants["south"]).get(URL).json()["results"]
    assert south[0]["machine_count"] == 1
    assert client_for(tenants["south"]).get(f"{URL}{event.pk}/machines/").json()["count"] == 1
    bystander = client_for(MembershipFactory().user)
    assert bystander.get(URL).json()["results"] == []
    assert bystander.get(f"{URL}{event.pk}/").status_code == 404
    assert bystander.get(f"{URL}{event.pk}/machines/").status_code == 404
    assert client_for(tenants["south"]).get(f"{URL}{event.pk}/").status_code == 200


def test_staff_see_every_event_with_every_machine_paginated(curtailed):
    event, _ = curtailed
    staff = client_for(StaffFactory())
    page = staff.get(URL, {"page_size": 1}).json()
    assert page["count"] == 2
    assert len(page["results"]) == 1
    full = staff.get(f"{URL}{event.pk}/").json()
    assert full["machine_count"] == 3
    assert (full["external_id"], full["planned_mw"]) == ("Q-7", "2.500")
    machines = staff.get(f"{URL}{event.pk}/machines/", {"page_size": 2}).json()
    assert machines["count"] == 3
    assert [m["machine"] for m in machines["results"]] == list(
        EventMachine.objects.filter(event=event).order_by("rank").values_list("machine", flat=True)[:2]
    )
    assert staff.get(f"{URL}{event.pk}/machines/", {"status": "chosen"}).json()["count"] == 3
    assert staff.get(f"{URL}{event.pk}/machines/", {"status": "verified"}).json()["count"] == 0
    assert staff.get(f"{URL}{event.pk}/machines/", {"status": "nonsense"}).status_code == 400


def test_the_qse_endpoints_are_throttled(site, qse, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "3/min"})
    codes = [qse.post(URL, body(external_id="same"), format="json").status_code for _ in range(3)]
    codes.append(qse.get(URL).status_code)
    assert codes == [201, 200, 200, 429]
    assert Event.objects.count() == 1


PRICES = "/api/v1/curtailment/prices/"


def test_staff_see_a_sites_latest_prices_against_its_strike(site, anon):
    SiteGrid.objects.create(site=site, settlement_point="LZ_WEST")
    Program.objects.create(site=site, kind=ProgramKind.PRICE, name="p", strike_usd_per_mwh=Decimal("150"))
    start = dt.datetime(2026, 7, 15, 21, 0, tzinfo=dt.UTC)
    for i, usd in enumerate(["90", "210.5"]):
        SettlementPrice.objects.create(
            settlement_point="LZ_WEST", interval_start=start + i * dt.timedelta(minutes=15), price_usd_per_mwh=usd
        )
    SettlementPrice.objects.create(settlement_point="LZ_SOUTH", interval_start=start, price_usd_per_mwh="999")
    staff = client_for(StaffFactory())
    rows = staff.get(PRICES, {"site": "west"}).json()["results"]
    assert [(r["price_usd_per_mwh"], r["strike_usd_per_mwh"], r["above_strike"]) for r in rows] == [
        ("210.50", "150.00", True),
        ("90.00", "150.00", False),
    ]
    assert staff.get(PRICES, {"site": "nowhere"}).json()["errors"]["site"] == ["No site 'nowhere'."]
    assert staff.get(PRICES).status_code == 400
    assert client_for(MembershipFactory().user).get(PRICES, {"site": "west"}).status_code == 403
    assert anon.get(PRICES, {"site": "west"}).status_code == 401


@pytest.mark.usefixtures("keep_the_test_connection")
def test_the_answers_to_staff_and_the_qse_are_as_the_schema_says(curtailed):
    """Schemathesis's conformance checks on real objects (generated ids rarely name one)."""
    from tests.api.test_schema import CHECKS, operation

    event, tenants = curtailed
    SiteGrid.objects.create(site=event.site, settlement_point="LZ_WEST")
    Program.objects.create(site=event.site, kind=ProgramKind.PRICE, name="p", strike_usd_per_mwh=Decimal("150"))
    SettlementPrice.objects.create(
        settlement_point="LZ_WEST", interval_start=timezone.now(), price_usd_per_mwh=Decimal("12.34")
    )
    _, key = ApiToken.issue(StaffFactory(), "schema")
    staff = {"Authorization": f"Token {key}"}
    _, tenant_key = ApiToken.issue(tenants["north"], "schema")
    later = "2099-01-01T00:00:00Z"
    calls = [
        ("GET", "/curtailment/events/", {}, {}, None, staff, 200),
        ("GET", "/curtailment/events/", {}, {}, None, {"Authorization": f"Token {tenant_key}"}, 200),
        ("GET", "/curtailment/events/{id}/", {"id": event.pk}, {}, None, staff, 200),
        ("GET", "/curtailment/events/{id}/machines/", {"id": event.pk}, {}, None, staff, 200),
        ("GET", "/curtailment/prices/", {}, {"site": "west"}, None, staff, 200),
        ("POST", "/curtailment/events/", {}, {}, {**body(external_id="S-1"), "starts_at": later}, staff, 201),
        ("POST", "/curtailment/events/", {}, {}, {**body(external_id="S-1"), "starts_at": later}, staff, 200),
        ("POST", "/curtailment/events/", {}, {}, {**body(), "target_mw": "-1", "starts_at": later}, staff, 400),
        ("POST", "/curtailment/events/{id}/end/", {"id": event.pk}, {}, None, staff, 200),
    ]
    for method, path, parameters, query, payload, headers, expected in calls:
        extra = {} if payload is None else {"body": payload, "media_type": "application/json"}
        case = operation(method, path).Case(path_parameters=parameters, query=query, headers=headers, **extra)
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == expected, (method, path, response.text)


@pytest.fixture
def keep_the_test_connection():
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_list_takes_the_same_queries_for_more_events(curtailed, django_assert_max_num_queries):
    event, _ = curtailed
    staff = client_for(StaffFactory())
    staff.get(URL)  # warm: the token's last use is written once a minute
    with django_assert_max_num_queries(6) as few:
        staff.get(URL)
    for _ in range(5):
        copy = Event.objects.create(
            site=event.site, source="staff", target_mw=1, starts_at=timezone.now(), deadline_at=timezone.now()
        )
        EventMachine.objects.create(
            event=copy, machine=event.machines.first().machine, contract=event.machines.first().contract, rank=1,
            expected_shed_w=1,
        )  # fmt: skip
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert staff.get(URL).json()["count"] == 7


def test_the_qse_finds_its_events_by_id_status_and_whether_they_are_open(curtailed, qse):
    event, _ = curtailed
    assert [e["id"] for e in qse.get(URL, {"external_id": "Q-7"}).json()["results"]] == [event.pk]
    assert qse.get(URL, {"open": "true"}).json()["count"] == 2
    qse.post(f"{URL}{event.pk}/end/")
    assert [e["id"] for e in qse.get(URL, {"open": "false"}).json()["results"]] == [event.pk]
    assert qse.get(URL, {"source": ["qse", "staff"], "site": "west"}).json()["count"] == 2
    assert qse.get(URL, {"status": "bogus"}).status_code == 400
    assert qse.get(URL, {"open": ""}).status_code == 400
