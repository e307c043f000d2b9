"""Roles in the portal: owners run the account (tokens, members), operators the fleet (packing
lists, re-test/RMA requests, holding a quote's capacity), viewers read. What a role may not
do is neither offered (no form, no button) nor done when posted anyway (403, nothing
written); a user acting for several tenants has, for each object, its own tenant's role."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from hosting import quotes, services
from hosting.lifecycle import MachineStatus
from hosting.models import ApiToken, MachineRequest, Quote, Role, Shipment, SitePricing
from tests.factories import ContractFactory, MembershipFactory, PhaseFactory, racked

pytestmark = pytest.mark.django_db

ROLES = [Role.OWNER, Role.OPERATOR, Role.VIEWER]
LIST = b"serial,mac,model\nSN-R1,02:aa:00:00:01:01,antminer-s19-pro\n"


def url(name, *args):
    return reverse(f"portal:{name}", args=args)


def as_member(tenant, role: Role) -> Client:
    client = Client()
    client.force_login(MembershipFactory(tenant=tenant, role=role).user)
    return client


@pytest.fixture
def failed(floor):
    (machine,) = racked(floor, 1)
    machine = services.transition(machine, MachineStatus.TESTING)
    return services.transition(machine, MachineStatus.FAILED, reason="hashboard 2 not detected")


def upload(client, contract):
    return client.post(url("contract", contract.pk), {"file": SimpleUploadedFile("l.csv", LIST, "text/csv")})


@pytest.mark.parametrize("role", ROLES)
def test_packing_lists_are_for_owners_and_operators(signed, role):
    client = as_member(signed.tenant, role)
    page = client.get(url("contract", signed.pk)).content.decode()
    response = upload(client, signed)
    if role == Role.VIEWER:
        assert 'id="packing-list"' not in page
        assert 'id="no-packing-list"' in page
        assert response.status_code == 403
        assert "Not allowed" in response.content.decode()
        assert not Shipment.objects.exists()
    else:
        assert 'id="packing-list"' in page
        assert response.status_code == 302
        assert Shipment.objects.get().contract == signed


@pytest.mark.parametrize("role", ROLES)
def test_retest_and_rma_requests_are_for_owners_and_operators(failed, role):
    client = as_member(failed.contract.tenant, role)
    page = client.get(url("machine", failed.pk)).content.decode()
    response = client.post(url("machine-request", failed.pk), {"kind": "retest"})
    if role == Role.VIEWER:
        assert 'id="machine-request-form"' not in page
        assert 'id="no-request"' in page
        assert response.status_code == 403
        assert not MachineRequest.objects.exists()
    else:
        assert 'id="machine-request-form"' in page
        assert response.status_code == 302
        assert MachineRequest.objects.get().requested_by.memberships.get().role == role


def priced_quote(floor, requester):
    site = floor["site"]
    PhaseFactory(site=site, energized_on=dt.date.today() - dt.timedelta(days=30), mw=Decimal("5"))
    SitePricing.objects.get_or_create(site=site, defaults={"list_rate_usd_per_kwh": Decimal("0.05")})
    quote = quotes.request_quote(
        Quote(contact_email="a@example.com", it_kw=Decimal("10"), start_on=dt.date.today(), term_months=1,
              requester=requester)
    )  # fmt: skip
    assert quote.status == Quote.Status.PRICED
    return quote


@pytest.mark.parametrize("role", ROLES)
def test_holding_a_quotes_capacity_is_a_request_for_owners_and_operators(floor, role):
    tenant = floor["contract"].tenant
    member = MembershipFactory(tenant=tenant, role=role).user
    quote = priced_quote(floor, member)
    client = Client()
    client.force_login(member)
    page = client.get(url("quote", quote.pk)).content.decode()
    response = client.post(url("quote-accept", quote.pk), {"site": floor["site"].slug})
    quote.refresh_from_db()
    if role == Role.VIEWER:
        assert ">Hold</button>" not in page
        assert response.status_code == 403
        assert quote.status == Quote.Status.PRICED
    else:
        assert ">Hold</button>" in page
        assert response.status_code == 302
        assert (quote.status, quote.tenant) == (Quote.Status.ACCEPTED, tenant)


def test_a_user_holds_for_the_tenant_where_they_may_not_where_they_only_read(floor):
    """Viewer of one tenant, operator of another: the hold goes to the second, with no choosing."""
    viewer_of = floor["contract"].tenant
    operator = MembershipFactory(role=Role.OPERATOR)
    MembershipFactory(tenant=viewer_of, user=operator.user, role=Role.VIEWER)
    quote = priced_quote(floor, operator.user)
    client = Client()
    client.force_login(operator.user)
    page = client.get(url("quote", quote.pk)).content.decode()
    assert f'name="tenant" value="{operator.tenant.slug}"' in page
    assert "<select" not in page
    refused = client.post(url("quote-accept", quote.pk), {"site": floor["site"].slug, "tenant": viewer_of.slug})
    assert refused.status_code == 403
    client.post(url("quote-accept", quote.pk), {"site": floor["site"].slug, "tenant": operator.tenant.slug})
    quote.refresh_from_db()
    assert quote.tenant == operator.tenant


@pytest.mark.parametrize("role", ROLES)
def test_api_tokens_are_issued_and_revoked_by_owners_only(floor, role):
    membership = MembershipFactory(tenant=floor["contract"].tenant, role=role)
    client = Client()
    client.force_login(membership.user)
    token, _ = ApiToken.issue(membership.user, "made while an owner")
    page = client.get(url("tokens")).content.decode()
    issued = client.post(url("tokens"), {"name": "automation"})
    revoked = client.post(url("token-revoke", token.pk))
    token.refresh_from_db()
    if role == Role.OWNER:
        assert "Create a token" in page
        assert ">Revoke</button>" in page
        assert (issued.status_code, revoked.status_code) == (302, 302)
        assert ApiToken.objects.filter(user=membership.user).count() == 2
        assert token.revoked_at is not None
    else:
        assert "Create a token" not in page
        assert ">Revoke</button>" not in page
        assert 'id="no-tokens"' in page
        assert (issued.status_code, revoked.status_code) == (403, 403)
        assert ApiToken.objects.filter(user=membership.user).count() == 1
        assert token.revoked_at is None


@pytest.mark.parametrize("role", ROLES)
def test_the_members_page_is_for_owners_only(floor, role):
    client = as_member(floor["contract"].tenant, role)
    dashboard = client.get(url("dashboard")).content.decode()
    response = client.get(url("members"))
    if role == Role.OWNER:
        assert url("members") in dashboard
        assert response.status_code == 200
    else:
        assert url("members") not in dashboard
        assert response.status_code == 403


def test_each_object_is_judged_by_the_role_in_its_own_tenant(signed):
    """Operator of one tenant, viewer of another: ships for the first, only reads the second."""
    operator = MembershipFactory(tenant=signed.tenant, role=Role.OPERATOR)
    other = services.sign_contract(ContractFactory(site=signed.site, it_kw=Decimal("100")))
    MembershipFactory(tenant=other.tenant, user=operator.user, role=Role.VIEWER)
    client = Client()
    client.force_login(operator.user)
    assert 'id="packing-list"' in client.get(url("contract", signed.pk)).content.decode()
    assert 'id="no-packing-list"' in client.get(url("contract", other.pk)).content.decode()
    refused = upload(client, other)
    assert refused.status_code == 403
    assert other.tenant.name in refused.content.decode()  # says for which tenant, in which role
    assert upload(client, signed).status_code == 302
    assert list(Shipment.objects.values_list("contract", flat=True)) == [signed.pk]


def test_the_header_names_each_tenant_and_the_role_in_it(signed):
    operator = MembershipFactory(tenant=signed.tenant, role=Role.OPERATOR)
    other = MembershipFactory(user=operator.user, role=Role.VIEWER).tenant
    client = Client()
    client.force_login(operator.user)
    page = client.get(url("dashboard")).content.decode()
    header = page[page.index('id="tenants"') : page.index("</span></span>", page.index(other.name))]
    assert f"<strong>{signed.tenant.name}</strong>" in header
    assert "operator" in header
    assert f"<strong>{other.name}</strong>" in header
    assert "viewer" in header
