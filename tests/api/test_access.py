"""Who may call what: tokens, sessions, CSRF, throttling, and tenants kept apart."""

import datetime as dt

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from hosting import services
from hosting.models import ApiToken
from tests.api.conftest import TODAY, client_for
from tests.factories import ContractFactory, MachineFactory, MembershipFactory, StaffFactory, TenantFactory

pytestmark = pytest.mark.django_db

START = (TODAY + dt.timedelta(days=30)).isoformat()


# --- tokens ------------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_shown_once(tenant_user):
    token, key = ApiToken.issue(tenant_user, "automation")
    assert key not in (token.digest, token.prefix)
    assert token.digest == ApiToken.digest_of(key)
    assert key.startswith(token.prefix)


def test_a_revoked_or_wrong_token_is_refused(tenant_user):
    token, key = ApiToken.issue(tenant_user, "automation")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/machines/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=token.created_at)
    refused = api.get("/api/v1/machines/")
    assert refused.status_code == 401
    assert refused.json() == {"code": "authentication_failed", "message": "Invalid or revoked token."}
    api.credentials(HTTP_AUTHORIZATION="Token nonsense")
    assert api.get("/api/v1/machines/").status_code == 401


def test_a_token_of_a_deactivated_user_is_refused(tenant_user):
    api = client_for(tenant_user)
    tenant_user.is_active = False
    tenant_user.save()
    assert api.get("/api/v1/machines/").status_code == 401


def test_sessions_work_for_the_browsable_api_and_need_csrf_for_writes(tenant_user, two_sites):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(tenant_user)
    assert browser.get("/api/v1/machines/").status_code == 200
    body = f'{{"it_kw": "10", "start_on": "{START}", "term_months": 12}}'
    refused = browser.post("/api/v1/quotes/", body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]


# --- throttling ------------------------------------------------------------------------------------


def test_quote_requests_are_throttled_per_client_ip_and_a_token_raises_the_limit(monkeypatch, two_sites, tenant_user):
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "quote_anon": "3/hour", "quote_token": "5/hour"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    body = {"it_kw": "10", "start_on": START, "term_months": 12, "contact_email": "a@example.com"}
    first_ip, other_ip = APIClient(REMOTE_ADDR="10.0.0.1"), APIClient(REMOTE_ADDR="10.0.0.2")
    codes = [first_ip.post("/api/v1/quotes/", body, format="json").status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    throttled = first_ip.post("/api/v1/quotes/", body, format="json")
    assert throttled.json()["code"] == "throttled"
    assert throttled.json()["retry_after_s"] > 0
    assert other_ip.post("/api/v1/quotes/", body, format="json").status_code == 201  # per IP
    with_token = client_for(tenant_user)
    with_token.defaults["REMOTE_ADDR"] = "10.0.0.1"  # the throttled address, but with a token
    codes = [with_token.post("/api/v1/quotes/", body, format="json").status_code for _ in range(6)]
    assert codes == [201] * 5 + [429]
    assert first_ip.get("/api/v1/sites/").status_code == 200  # other endpoints are not held up


# --- tenants kept apart -------------------------------------------------------------------------------


@pytest.fixture
def two_tenants():
    ours, theirs = TenantFactory(slug="ours"), TenantFactory(slug="theirs")
    our_contract = ContractFactory(tenant=ours)
    their_contract = ContractFactory(tenant=theirs)
    return {
        "user": MembershipFactory(tenant=ours).user,
        "our_contract": our_contract,
        "their_contract": their_contract,
        "our_machine": MachineFactory(contract=our_contract),
        "their_machine": MachineFactory(contract=their_contract),
    }


@pytest.mark.parametrize("kind", ["contract", "machine"])
def test_a_tenant_sees_only_its_own_and_others_ids_answer_404(two_tenants, kind):
    api = client_for(two_tenants["user"])
    url = f"/api/v1/{kind}s/"
    listed = api.get(url).json()
    assert [row["id"] for row in listed["results"]] == [two_tenants[f"our_{kind}"].pk]
    assert api.get(f"{url}{two_tenants[f'our_{kind}'].pk}/").status_code == 200
    foreign = api.get(f"{url}{two_tenants[f'their_{kind}'].pk}/")
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "not_found"


def test_staff_see_every_tenant(two_tenants):
    api = client_for(StaffFactory())
    assert api.get("/api/v1/machines/").json()["count"] == 2
    assert api.get("/api/v1/contracts/").json()["count"] == 2


def test_anonymous_clients_get_401_on_tenant_data(anon, two_tenants):
    for url in ("/api/v1/contracts/", "/api/v1/machines/", f"/api/v1/machines/{two_tenants['our_machine'].pk}/"):
        response = anon.get(url)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_machine_lists_filter_and_search(two_tenants):
    machine = two_tenants["our_machine"]
    services.transition(machine, "in_transit")
    api = client_for(two_tenants["user"])
    assert api.get("/api/v1/machines/?status=in_transit").json()["count"] == 1
    assert api.get("/api/v1/machines/?status=live").json()["count"] == 0
    assert api.get(f"/api/v1/machines/?search={machine.serial}").json()["count"] == 1
    assert api.get("/api/v1/machines/?status=bogus").status_code == 400


def test_lists_are_paginated(two_tenants):
    contract = two_tenants["our_contract"]
    for _ in range(7):
        MachineFactory(contract=contract)
    api = client_for(two_tenants["user"])
    page = api.get("/api/v1/machines/?page_size=5").json()
    assert (page["count"], len(page["results"])) == (8, 5)
    assert page["next"] is not None
    assert len(api.get(page["next"]).json()["results"]) == 3


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/sites/%00x/",
        "/api/v1/machine-models/?search=%00ab",
        "/api/v1/machine-models/?ordering=%00",
        "/api/v1/sites/?region=%00",
        "/api/v1/machines/?site=%00",
        "/api/v1/machines/?search=a%00b",
    ],
)
def test_nul_bytes_anywhere_are_a_client_error_not_a_crash(tenant_api, url):
    assert 400 <= tenant_api.get(url).status_code < 500


def test_a_nul_byte_in_a_slug_of_a_quote_is_a_field_error(anon, two_sites):
    body = {"it_kw": "10", "start_on": START, "term_months": 12, "contact_email": "a@example.com", "site": "x\x00"}
    response = anon.post("/api/v1/quotes/", body, format="json")
    assert response.status_code == 400
    assert "site" in response.json()["errors"]
