"""The members page: an owner sees each tenant they own with its members and roles, changes
a role, removes a member — never the tenant's last owner away, not even when two owners
demote each other at the same moment (PostgreSQL, real concurrent transactions). Another
tenant's member is not found (404); a member who is not an owner is refused (403)."""

import pytest
from django.test import Client
from django.urls import reverse

from hosting import members
from hosting.models import Membership, Role
from tests.factories import MembershipFactory, TenantFactory
from tests.races import Concurrent, race, run_after

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"portal:{name}", args=args)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def team():
    """Northern Hash: an owner, an operator and a viewer."""
    tenant = TenantFactory(name="Northern Hash Ltd", slug="northern")
    return {role: MembershipFactory(tenant=tenant, role=role) for role in Role}


def test_an_owner_sees_the_members_and_their_roles(team):
    page = logged_in(team[Role.OWNER].user).get(url("members")).content.decode()
    assert "Northern Hash Ltd" in page
    for role, membership in team.items():
        row = page[page.index(f'id="member-{membership.pk}"') :]
        row = row[: row.index("</tr>")]
        assert membership.user.username in row
        assert f'<option value="{role.value}" selected>' in row


def test_an_owner_changes_a_role_and_removes_a_member(team):
    owner = logged_in(team[Role.OWNER].user)
    response = owner.post(url("member-role", team[Role.VIEWER].pk), {"role": "operator"}, follow=True)
    assert "is now operator of Northern Hash Ltd" in response.content.decode()
    team[Role.VIEWER].refresh_from_db()
    assert team[Role.VIEWER].role == Role.OPERATOR
    response = owner.post(url("member-remove", team[Role.OPERATOR].pk), follow=True)
    assert "no longer acts for Northern Hash Ltd" in response.content.decode()
    assert not Membership.objects.filter(pk=team[Role.OPERATOR].pk).exists()
    # the removed login no longer sees the tenant
    assert logged_in(team[Role.OPERATOR].user).get(url("dashboard")).status_code == 403


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_members_who_are_not_owners_change_nothing(team, role):
    client = logged_in(team[role].user)
    target = team[Role.OWNER]
    assert client.post(url("member-role", target.pk), {"role": "viewer"}).status_code == 403
    assert client.post(url("member-remove", target.pk)).status_code == 403
    assert (
        client.post(url("invite"), {"tenant": "northern", "email": "x@example.com", "role": "owner"}).status_code == 403
    )
    target.refresh_from_db()
    assert target.role == Role.OWNER


def test_another_tenants_members_are_not_found(team):
    stranger = MembershipFactory(role=Role.OWNER)
    client = logged_in(stranger.user)
    for name in ("member-role", "member-remove"):
        assert client.post(url(name, team[Role.VIEWER].pk), {"role": "owner"}).status_code == 404
    assert (
        client.post(url("invite"), {"tenant": "northern", "email": "x@example.com", "role": "owner"}).status_code == 404
    )
    page = client.get(url("members")).content.decode()
    assert "Northern Hash Ltd" not in page
    assert team[Role.VIEWER].user.username not in page
    team[Role.VIEWER].refresh_from_db()
    assert team[Role.VIEWER].role == Role.VIEWER


def test_an_owner_of_one_tenant_is_refused_in_another_where_they_only_read(team):
    elsewhere = MembershipFactory(role=Role.OWNER)
    MembershipFactory(tenant=team[Role.OWNER].tenant, user=elsewhere.user, role=Role.VIEWER)
    client = logged_in(elsewhere.user)
    assert client.post(url("member-role", team[Role.OPERATOR].pk), {"role": "viewer"}).status_code == 403
    page = client.get(url("members")).content.decode()
    assert elsewhere.tenant.name in page
    assert "Northern Hash Ltd</h2>" not in page


def test_the_last_owner_can_neither_be_demoted_nor_removed(team):
    owner = team[Role.OWNER]
    client = logged_in(owner.user)
    response = client.post(url("member-role", owner.pk), {"role": "viewer"}, follow=True)
    assert "last owner of Northern Hash Ltd" in response.content.decode()
    response = client.post(url("member-remove", owner.pk), follow=True)
    assert "last owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    # with a second owner, the first may step down
    client.post(url("member-role", team[Role.OPERATOR].pk), {"role": "owner"})
    client.post(url("member-role", owner.pk), {"role": "viewer"})
    owner.refresh_from_db()
    assert owner.role == Role.VIEWER


def test_a_role_change_by_a_member_demoted_meanwhile_is_refused(team):
    """The service asks the actor's role again under the lock, not only the view before it."""
    second = MembershipFactory(tenant=team[Role.OWNER].tenant, role=Role.OWNER)
    members.change_role(second, Role.VIEWER, by=team[Role.OWNER].user)
    with pytest.raises(members.MemberRefused) as refused:
        members.change_role(team[Role.OPERATOR], Role.OWNER, by=second.user)
    assert refused.value.code == "not_allowed"


def test_the_page_reads_in_a_constant_number_of_queries(team, django_assert_max_num_queries):
    client = logged_in(team[Role.OWNER].user)
    client.get(url("members"))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url("members"))
    for _ in range(5):
        MembershipFactory(tenant=team[Role.OWNER].tenant, role=Role.VIEWER)
    second = TenantFactory()
    MembershipFactory(tenant=second, user=team[Role.OWNER].user, role=Role.OWNER)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url("members")).content.decode()
    assert page.count('class="member"') == 3 + 5 + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_owner_demoting_the_other_while_the_other_demotes_them_waits_and_is_refused():
    """A chosen interleaving: B's demotion of A starts while A's of B holds the tenant's lock
    (having counted the owners); it waits for it, then finds B no longer an owner."""
    tenant = TenantFactory()
    a, b = (MembershipFactory(tenant=tenant, role=Role.OWNER) for _ in range(2))
    second: dict = {}

    def meanwhile(result, *args):
        if not second:
            second["call"] = Concurrent(lambda: members.change_role(a, Role.VIEWER, by=b.user))
            second["call"].wait_until_blocked()

    with run_after("hosting.members._other_owners", meanwhile):
        members.change_role(b, Role.VIEWER, by=a.user)
    with pytest.raises(members.MemberRefused) as refused:
        second["call"].result()
    assert refused.value.code == "not_allowed"
    assert list(Membership.objects.filter(tenant=tenant, role=Role.OWNER)) == [a]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    for _ in range(6):
        tenant = TenantFactory()
        a, b = (MembershipFactory(tenant=tenant, role=Role.OWNER) for _ in range(2))
        pairs = [(a, b), (b, a)]

        def demote(i, pairs=pairs):
            actor, target = pairs[i]
            return members.change_role(target, Role.VIEWER, by=actor.user)

        wins, losses = race(2, demote)
        assert len(wins) == 1
        assert len(losses) == 1
        assert losses[0].code in ("last_owner", "not_allowed")
        assert Membership.objects.filter(tenant=tenant, role=Role.OWNER).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_owners_removing_each_other_at_once_leave_one_owner_through_the_portal():
    tenant = TenantFactory()
    a, b = (MembershipFactory(tenant=tenant, role=Role.OWNER) for _ in range(2))
    clients = [logged_in(a.user), logged_in(b.user)]
    targets = [b, a]

    def remove(i):
        return clients[i].post(url("member-remove", targets[i].pk)).status_code

    codes, _ = race(2, remove)
    assert sorted(codes) == [302, 302]  # one removed, one told why not (both redirect with a message)
    assert list(Membership.objects.filter(tenant=tenant).values_list("role", flat=True)) == [Role.OWNER]


def test_staff_cannot_leave_a_tenant_without_an_owner_in_the_admin(team):
    from tests.factories import StaffFactory

    client = logged_in(StaffFactory())
    owner = team[Role.OWNER]
    change = reverse("admin:hosting_membership_change", args=[owner.pk])
    assert client.get(reverse("admin:hosting_membership_delete", args=[owner.pk])).status_code == 403
    response = client.post(change, {"role": "viewer"}, follow=True)
    assert "last owner of Northern Hash Ltd" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    client.post(reverse("admin:hosting_membership_change", args=[team[Role.VIEWER].pk]), {"role": "owner"})
    team[Role.VIEWER].refresh_from_db()
    assert team[Role.VIEWER].role == Role.OWNER
    assert client.get(reverse("admin:hosting_membership_delete", args=[owner.pk])).status_code == 200
