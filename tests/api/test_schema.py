"""The published OpenAPI schema: generated without warnings, and no request it allows
makes the server fail (Schemathesis generates them from the schema)."""

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
from hypothesis import HealthCheck, settings

from hosting.models import ApiToken
from tests.api.conftest import priced_site
from tests.factories import ContractFactory, MachineFactory, MembershipFactory, TenantFactory

ROOT = Path(__file__).resolve().parents[2]


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
    for path in ("/api/v1/quotes/", "/api/v1/quotes/{id}/accept/", "/api/v1/sites/", "/api/v1/machines/"):
        assert f"{path}:" in schema


@pytest.mark.django_db
def test_the_schema_and_docs_are_served(client):
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


@pytest.fixture
def world(db):
    """Something behind every endpoint: priced sites with a floor, a tenant with a token."""
    priced_site("texas", mw="10", slots=16)
    priced_site("siberia", mw="20", rate="0.04500", country="RU")
    tenant = TenantFactory()
    user = MembershipFactory(tenant=tenant).user
    contract = ContractFactory(tenant=tenant, it_kw=Decimal("10"), starts_on=dt.date.today(), ends_on=None)
    MachineFactory(contract=contract)
    _, key = ApiToken.issue(user, "schemathesis")
    return key


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
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_allows_makes_the_server_fail(case, world, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "allow_request", lambda self, request, view: True)
    case.headers = {**(case.headers or {}), "Authorization": f"Token {world}"}
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])
