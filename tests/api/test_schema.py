"""The published OpenAPI schema says what the API answers: generated without warnings, and
every answer to the requests Schemathesis makes from it (valid and invalid ones) has a
documented status code, content type and body — errors included — and never a 5xx."""

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.specs.openapi import checks as openapi_checks

from hosting import quotes, services
from hosting.commissioning import checks, pipeline, runs
from hosting.models import ApiToken, Quote
from hosting.readings import Board, Reading
from hosting.telemetry.models import Alert, AlertKind
from tests.api.conftest import priced_site
from tests.factories import (
    CircuitFactory,
    ContractFactory,
    MachineFactory,
    MembershipFactory,
    RackFactory,
    SlotFactory,
    StaffFactory,
    TenantFactory,
)

ROOT = Path(__file__).resolve().parents[2]

# What every answer is checked for (not only "no 5xx"): Schemathesis's response conformance
# checks, plus that invalid input is refused and an undocumented method answers 405.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.unsupported_method,
]


def test_the_schema_generates_without_warnings(tmp_path):
    env = {**os.environ, "DEBUG": "true", "HAVEN_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    schema = (tmp_path / "s.yml").read_text()
    paths = ("/api/v1/quotes/", "/api/v1/quotes/{id}/accept/", "/api/v1/sites/", "/api/v1/machines/")
    for path in (*paths, "/api/v1/alerts/", "/api/v1/alerts/{id}/acknowledge/", "/api/v1/changes/"):
        assert f"{path}:" in schema


@pytest.mark.django_db
def test_the_schema_and_docs_are_served_from_haven_itself(client):
    assert client.get("/api/v1/schema/").status_code == 200
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert '<script src="/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js">' in page
    assert "cdn.jsdelivr.net" not in page
    assert '"validatorUrl": null' in page  # no badge from swagger.io (tests/browser/test_api_docs.py: nothing else)


schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


def operation(method: str, path: str):
    return schema[f"/api/v1{path}"][method]


@pytest.mark.django_db
def test_the_schema_documents_errors_nullable_fields_and_paged_self_tests():
    """What a client generator reads: the error shape as a component, the errors each
    operation can give, the fields that may be null, the self-tests as a page."""
    raw = schema.raw_schema
    assert set(raw["components"]["schemas"]["Error"]["required"]) == {"code", "message"}
    responses = {
        (method.upper(), path): set(op["responses"]) for path, ops in raw["paths"].items() for method, op in ops.items()
    }
    assert responses["GET", "/api/v1/sites/"] == {"200", "400", "401", "404", "429"}
    assert responses["GET", "/api/v1/quotes/{id}/"] == {"200", "400", "401", "404", "429"}
    assert responses["POST", "/api/v1/quotes/"] == {"201", "400", "401", "403", "409", "429"}
    assert responses["POST", "/api/v1/machines/{id}/commission/"] == {"202", "400", "401", "403", "404", "409", "429"}
    error = raw["paths"]["/api/v1/quotes/{id}/accept/"]["post"]["responses"]["404"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/Error"}
    components = raw["components"]["schemas"]
    for component, field in [("Quote", "machine_model"), ("Quote", "site"), ("Quote", "tenant"), ("Machine", "slot")]:
        assert components[component]["properties"][field]["nullable"] is True, (component, field)
    self_tests = raw["paths"]["/api/v1/machines/{id}/self-tests/"]["get"]
    page = self_tests["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/PaginatedSelfTestRunList"}
    assert {p["name"] for p in self_tests["parameters"]} == {"id", "page", "page_size"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("sites/?cooling=", 400),  # a choice
        ("machine-models/?vendor=", 400),
        ("machines/?status=", 400),  # a list of choices
        ("machines/?contract=", 400),  # a number
        ("machines/?page=", 404),  # as ?page=x: no such page
        ("machines/?page_size=", 400),
        ("machines/?page_size=501", 400),
        ("sites/?region=", 200),  # free text: empty matches all
        ("machines/?site=", 200),
    ],
)
def test_an_empty_or_out_of_range_parameter_is_refused_unless_it_is_free_text(world, query, status):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {world['key']}")
    response = api.get(f"/api/v1/{query}")
    assert response.status_code == status, response.content
    if status == 400:
        assert list(response.json()["errors"]) == [query.split("?")[1].split("=")[0]]


def run_that_failed(machine):
    (run,) = runs.request([machine])
    runs.dispatch(machine.contract.site_id)
    token, _ = runs.claim([run.pk])
    outcomes = [checks.Outcome("identity", True, (), {"model": "S19"}), checks.Outcome("hashing", False, ("slow",))]
    reading = Reading(timezone.now(), True, 73.4, (Board(0, 36.7, 76, 70.0, 60.0),), (5400,) * 4)
    runs.finish([pipeline.Result(run.pk, outcomes, [reading])], token)
    return run


@pytest.fixture
def world(db):
    """Something behind every endpoint, with every nullable field both set and null: priced
    sites with a floor, a tenant with a token, machines on and off the floor with a failed
    self-test, quotes asked in machines and in kW, one of them held."""
    texas = priced_site("texas", mw="10", slots=16)
    priced_site("siberia", mw="20", rate="0.04500", country="RU")
    tenant = TenantFactory()
    user = MembershipFactory(tenant=tenant).user
    contract = ContractFactory(tenant=tenant, site=texas, it_kw=Decimal("10"), starts_on=dt.date.today(), ends_on=None)
    MachineFactory(contract=contract)  # announced: no slot, no IP
    rack = RackFactory(site=texas)
    circuit = CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100)
    racked = services.rack_machine(
        MachineFactory(contract=contract, status="received", ip="127.0.0.9"),
        SlotFactory(rack=rack, circuit=circuit, position=1),
        commission=False,
    )
    run_that_failed(racked)
    runs.start_batch(
        [MachineFactory(contract=contract, status="racked", ip="127.0.0.10", slot=SlotFactory(rack=rack, position=2))]
    )
    start = dt.date.today() + dt.timedelta(days=30)
    for ask in ({"it_kw": Decimal("50")}, {"machine_model": racked.model, "quantity": 10}):
        ask["it_kw"] = quotes.requested_kw(ask.get("machine_model"), ask.get("quantity"), ask.get("it_kw"))
        request = {"start_on": start, "term_months": 12, **ask}
        quotes.request_quote(quotes.new_request(request, requester=user, contact_email="a@example.com", client_ip=None))
    held = Quote.objects.filter(machine_model__isnull=False).get()
    quotes.accept(held, site_slug=held.options[0]["site"], tenant=tenant)
    now = timezone.now()
    alert = Alert.objects.create(
        kind=AlertKind.FANS_STOPPED, site=texas, machine=racked, tenant=tenant, opened_at=now, last_seen_at=now,
        message="A fan has stopped", values={"fans_ok": False},
    )  # fmt: skip
    _, key = ApiToken.issue(user, "schemathesis")
    _, staff_key = ApiToken.issue(StaffFactory(), "schemathesis")
    return {"key": key, "staff_key": staff_key, "machine": racked, "quote": held, "alert": alert}


@pytest.mark.django_db
@pytest.mark.usefixtures("keep_the_test_connection")
@pytest.mark.parametrize("who", ["key", "staff_key"])
def test_the_worlds_own_objects_are_answered_as_the_schema_says(world, who):
    """Generated ids rarely name a real object: read each of the world's, as a tenant and as staff."""
    machine, quote = world["machine"], world["quote"]
    reads = [
        ("/sites/", {}),
        ("/sites/{slug}/", {"slug": "texas"}),
        ("/machine-models/{slug}/", {"slug": machine.model.slug}),
        ("/quotes/", {}),
        ("/quotes/{id}/", {"id": str(quote.pk)}),
        ("/contracts/", {}),
        ("/contracts/{id}/", {"id": machine.contract_id}),
        ("/machines/", {}),
        ("/machines/{id}/", {"id": machine.pk}),
        ("/machines/{id}/self-tests/", {"id": machine.pk}),
        ("/machines/{id}/telemetry/", {"id": machine.pk}),
        ("/contracts/{id}/uptime/", {"id": machine.contract_id}),
        ("/commissioning/batches/", {}),
        ("/alerts/", {}),
        ("/alerts/{id}/", {"id": world["alert"].pk}),
    ]
    for path, parameters in reads:
        case = operation("GET", path).Case(path_parameters=parameters, headers={"Authorization": f"Token {world[who]}"})
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == 200, (path, response.text)
        if path == "/quotes/":
            assert {q["machine_model"] for q in response.json()["results"]} == {None, machine.model.slug}
    # The change log is staff's: as the schema says, 200 with the world's changes, or 403.
    changes = operation("GET", "/changes/").Case(headers={"Authorization": f"Token {world[who]}"})
    response = changes.call_and_validate(checks=CHECKS)
    assert response.status_code == (200 if who == "staff_key" else 403), response.text
    if who == "staff_key":
        assert response.json()["count"] > 0
        one = response.json()["results"][0]["id"]
        read = operation("GET", "/changes/{id}/").Case(path_parameters={"id": one}, headers=changes.headers)
        assert read.call_and_validate(checks=CHECKS).status_code == 200


@pytest.fixture
def keep_the_test_connection():
    """A plain WSGI call closes "old" connections after each request, which would close
    the test's open transaction; Django's own test client unhooks the same signals."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.usefixtures("keep_the_test_connection")
@schema.parametrize()
# Derandomized: the same cases on every run and machine, so whatever fails here fails again.
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_answer_to_what_the_schema_allows_or_forbids_is_documented(case, world, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "allow_request", lambda self, request, view: True)
    case.headers = {**(case.headers or {}), "Authorization": f"Token {world['key']}"}
    case.call_and_validate(checks=CHECKS)
