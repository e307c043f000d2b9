"""Roles in the API: a token acts with its user's role, in each tenant. Holding a quote's
capacity is a request (owners and operators; a viewer's token is refused 403 in the API's
error shape, nothing held); reads are everyone's, and only ever their own tenants'."""

import datetime as dt

import pytest

from hosting.models import Quote, Role
from tests.api.conftest import client_for
from tests.factories import ContractFactory, MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db

START = (dt.date.today() + dt.timedelta(days=12)).isoformat()


@pytest.fixture
def quote(anon, two_sites):
    body = {"machine_model": "antminer-s19", "quantity": 10, "start_on": START, "term_months": 12,
            "contact_email": "miner@example.com"}  # fmt: skip
    response = anon.post("/api/v1/quotes/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def accept(api, quote, **extra):
    return api.post(f"/api/v1/quotes/{quote['id']}/accept/", {"site": "siberia", **extra}, format="json")


@pytest.mark.parametrize("role", [Role.OWNER, Role.OPERATOR, Role.VIEWER])
def test_a_token_holds_capacity_with_its_users_role(quote, role):
    membership = MembershipFactory(tenant=TenantFactory(slug="northern"), role=role)
    response = accept(client_for(membership.user), quote)
    held = Quote.objects.get(pk=quote["id"])
    if role == Role.VIEWER:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
        assert "owner or an operator" in response.json()["message"]
        assert (held.status, held.tenant) == (Quote.Status.PRICED, None)
    else:
        assert response.status_code == 200, response.content
        assert (held.status, held.tenant) == (Quote.Status.ACCEPTED, membership.tenant)


def test_a_token_acts_with_the_role_the_user_has_now(quote):
    membership = MembershipFactory(tenant=TenantFactory(slug="northern"), role=Role.OWNER)
    api = client_for(membership.user)
    membership.role = Role.VIEWER  # an owner demoted after issuing the token
    membership.save()
    assert accept(api, quote).status_code == 403
    assert Quote.objects.get(pk=quote["id"]).status == Quote.Status.PRICED


def test_the_role_counted_is_the_one_in_the_tenant_named(quote):
    operator = MembershipFactory(tenant=TenantFactory(slug="northern"), role=Role.OPERATOR)
    MembershipFactory(tenant=TenantFactory(slug="southern"), user=operator.user, role=Role.VIEWER)
    api = client_for(operator.user)
    assert accept(api, quote, tenant="southern").status_code == 403
    response = accept(api, quote, tenant="northern")
    assert response.status_code == 200, response.content
    assert response.json()["tenant"] == "northern"


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_every_role_reads_its_tenants_contracts_and_no_others(db, role):
    mine = ContractFactory()
    ContractFactory()  # another tenant's
    api = client_for(MembershipFactory(tenant=mine.tenant, role=role).user)
    body = api.get("/api/v1/contracts/").json()
    assert [c["id"] for c in body["results"]] == [mine.pk]
    other = ContractFactory()
    assert api.get(f"/api/v1/contracts/{other.pk}/").status_code == 404
