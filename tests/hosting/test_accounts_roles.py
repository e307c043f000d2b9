"""The one table of roles: owners run the account, operators the fleet, viewers read; staff
anything; strangers nothing."""

import pytest

from hosting.accounts import Action, may, role_in, tenants_where
from hosting.models import Role
from tests.factories import MembershipFactory, StaffFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def member(role: Role):
    membership = MembershipFactory(role=role)
    return membership.user, membership.tenant


def test_an_owner_may_do_everything_for_its_tenant():
    user, tenant = member(Role.OWNER)
    assert all(may(user, tenant, action) for action in Action)


def test_an_operator_ships_and_requests_but_runs_no_account():
    user, tenant = member(Role.OPERATOR)
    assert may(user, tenant, Action.SHIP)
    assert may(user, tenant, Action.REQUEST)
    assert may(user, tenant, Action.VIEW)
    for action in (Action.MANAGE_MEMBERS, Action.MANAGE_TOKENS, Action.MANAGE_WEBHOOKS):
        assert not may(user, tenant, action)


def test_a_viewer_only_reads():
    user, tenant = member(Role.VIEWER)
    assert [a for a in Action if may(user, tenant, a)] == [Action.VIEW]


def test_a_role_is_for_one_tenant_only():
    user, tenant = member(Role.OWNER)
    other = TenantFactory()
    MembershipFactory(user=user, tenant=other, role=Role.VIEWER)
    assert role_in(user, tenant) == Role.OWNER
    assert role_in(user, other.pk) == Role.VIEWER
    assert not may(user, other, Action.SHIP)
    assert tenants_where(user, Action.SHIP) == [tenant.pk]
    assert not may(user, TenantFactory(), Action.VIEW)


def test_staff_may_anything_and_strangers_nothing():
    tenant = TenantFactory()
    assert may(StaffFactory(), tenant, Action.MANAGE_MEMBERS)
    assert role_in(UserFactory(), tenant) is None
    assert not may(UserFactory(), tenant, Action.VIEW)
