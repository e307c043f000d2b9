"""Invitations: an owner invites an address in a role; the e-mail carries a link whose token
only the recipient has (the database keeps its SHA-256); a logged-in user accepts it, someone
new picks a username and a password. A link works once, until it expires or is withdrawn —
each refusal says which — and two acceptances at once make one member (PostgreSQL)."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hosting import members
from hosting.models import Invitation, Membership, Role
from tests.factories import PASSWORD, MembershipFactory, StaffFactory, TenantFactory, UserFactory
from tests.races import Concurrent, race, run_before

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/portal/invitations/[\w-]+/)")


def url(name, *args):
    return reverse(f"portal:{name}", args=args)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner():
    return MembershipFactory(tenant=TenantFactory(name="Northern Hash Ltd", slug="northern"), role=Role.OWNER)


def invite(owner, email="new.hire@example.com", role="operator") -> str:
    """Invite through the portal; the path of the link the e-mail carries."""
    mail.outbox.clear()
    client = logged_in(owner.user)
    response = client.post(url("invite"), {"tenant": owner.tenant.slug, "email": email, "role": role}, follow=True)
    assert f"Invitation e-mailed to {email.lower()}" in response.content.decode()
    (message,) = mail.outbox
    assert message.to == [email.lower()]
    return LINK.search(message.body).group(1)


def test_an_owner_invites_by_e_mail_and_only_the_digest_is_kept(owner):
    path = invite(owner, "New.Hire@Example.com")
    message = mail.outbox[0]
    assert "Northern Hash Ltd" in message.subject
    assert "as operator" in message.body
    invitation = Invitation.objects.get()
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.hire@example.com",
        "operator",
        owner.user,
    )
    assert invitation.digest == Invitation.digest_of(token)
    assert token not in invitation.digest
    page = logged_in(owner.user).get(url("members")).content.decode()
    assert 'class="invitation"' in page
    assert "new.hire@example.com" in page


def test_a_logged_in_user_accepts_and_acts_in_the_invited_role(owner):
    path = invite(owner, role="viewer")
    user = UserFactory()
    client = logged_in(user)
    page = client.get(path).content.decode()
    assert "Join Northern Hash Ltd" in page
    assert f"Accept as {user.username}" in page
    response = client.post(path, follow=True)
    assert "Welcome to Northern Hash Ltd: you act for it as viewer." in response.content.decode()
    assert Membership.objects.get(user=user).role == Role.VIEWER
    invitation = Invitation.objects.get()
    assert (invitation.accepted_by, invitation.state()) == (user, "accepted")


def test_someone_new_picks_a_username_and_a_password_and_is_logged_in(owner):
    path = invite(owner)
    client = Client()
    weak = client.post(path, {"username": "newhire", "password1": "123", "password2": "123"})
    assert weak.status_code == 200
    assert "too short" in weak.content.decode()
    taken = client.post(path, {"username": owner.user.username, "password1": PASSWORD, "password2": PASSWORD})
    assert "That username is taken" in taken.content.decode()
    assert not Membership.objects.filter(user__username="newhire").exists()
    good = {"username": "newhire", "password1": "rack-and-stack-2021", "password2": "rack-and-stack-2021"}
    response = client.post(path, good, follow=True)
    assert "you act for it as operator" in response.content.decode()
    user = get_user_model().objects.get(username="newhire")
    assert user.email == "new.hire@example.com"
    assert user.check_password("rack-and-stack-2021")
    assert Membership.objects.get(user=user).role == Role.OPERATOR
    assert client.get(url("dashboard")).status_code == 200  # logged in


def test_a_link_works_once(owner):
    path = invite(owner)
    logged_in(UserFactory()).post(path)
    again = logged_in(UserFactory()).get(path)
    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    assert logged_in(UserFactory()).post(path).status_code == 410
    assert Membership.objects.filter(tenant=owner.tenant).count() == 2  # the owner and the first


def test_an_expired_link_is_refused_saying_so(owner):
    path = invite(owner)
    week_ago = timezone.now() - dt.timedelta(days=7, minutes=1)
    Invitation.objects.update(created_at=week_ago, expires_at=week_ago + dt.timedelta(days=7))
    response = logged_in(UserFactory()).post(path)
    assert response.status_code == 410
    assert "Invitation expired" in response.content.decode()
    assert Membership.objects.filter(tenant=owner.tenant).count() == 1


def test_a_withdrawn_link_is_refused_and_inviting_again_replaces_the_old_link(owner):
    first = invite(owner)
    second = invite(owner)  # the same address again: a new link, the old one withdrawn
    assert Client().get(first).status_code == 410
    assert Client().get(second).status_code == 200
    pending = Invitation.objects.pending().get()
    logged_in(owner.user).post(url("invitation-revoke", pending.pk))
    response = Client().get(second)
    assert response.status_code == 410
    assert "Invitation withdrawn" in response.content.decode()


def test_a_made_up_link_is_not_found():
    response = Client().get(url("invitation", "not-a-real-token"))
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_members_and_staff_cannot_accept_twice_or_at_all(owner):
    path = invite(owner)
    response = logged_in(owner.user).post(path)  # already a member
    assert response.status_code == 409
    assert "already a member" in response.content.decode()
    assert logged_in(StaffFactory()).post(path).status_code == 409
    assert Invitation.objects.get().state() == "pending"  # still there for the right person


def test_an_address_already_a_member_is_not_invited(owner):
    client = logged_in(owner.user)
    response = client.post(
        url("invite"), {"tenant": "northern", "email": owner.user.email, "role": "viewer"}, follow=True
    )
    assert "already a member" in response.content.decode()
    assert not Invitation.objects.exists()
    assert not mail.outbox


def test_another_tenants_invitations_are_not_found_nor_withdrawn(owner):
    invite(owner)
    invitation = Invitation.objects.get()
    stranger = logged_in(MembershipFactory(role=Role.OWNER).user)
    assert stranger.post(url("invitation-revoke", invitation.pk)).status_code == 404
    assert "new.hire@example.com" not in stranger.get(url("members")).content.decode()
    viewer = logged_in(MembershipFactory(tenant=owner.tenant, role=Role.VIEWER).user)
    assert viewer.post(url("invitation-revoke", invitation.pk)).status_code == 403
    invitation.refresh_from_db()
    assert invitation.state() == "pending"


def test_staff_invite_from_the_admin(owner, client):
    client.force_login(StaffFactory())
    add = reverse("admin:hosting_invitation_add")
    response = client.post(add, {"tenant": owner.tenant.pk, "email": "cfo@example.com", "role": "viewer"})
    assert response.status_code == 302, response.content.decode()[:2000]
    (message,) = mail.outbox
    assert LINK.search(message.body)
    assert Invitation.objects.get().email == "cfo@example.com"
    refused = client.post(add, {"tenant": owner.tenant.pk, "email": owner.user.email, "role": "viewer"})
    assert refused.status_code == 200
    assert "already a member" in refused.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_acceptance_waits_for_the_first_and_is_refused():
    """A chosen interleaving: the second acceptance starts while the first holds the link."""
    owner = MembershipFactory(role=Role.OWNER)
    path = invite(owner)
    token = path.rstrip("/").rsplit("/", 1)[1]
    first, second = UserFactory(), UserFactory()
    other: dict = {}

    def meanwhile(locked, user, now):
        if not other:
            other["call"] = Concurrent(lambda: members.accept(token, second))
            other["call"].wait_until_blocked()

    with run_before("hosting.members._join", meanwhile):
        members.accept(token, first)
    with pytest.raises(members.MemberRefused) as refused:
        other["call"].result()
    assert refused.value.code == "invitation_used"
    assert list(Membership.objects.filter(tenant=owner.tenant).exclude(pk=owner.pk).values_list("user", flat=True)) == [
        first.pk
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_link_accepted_by_several_at_once_makes_one_member():
    owner = MembershipFactory(role=Role.OWNER)
    path = invite(owner)
    clients = [logged_in(UserFactory()) for _ in range(4)]
    codes, _ = race(4, lambda i: clients[i].post(path).status_code)
    # one joins; the others are told it is used — 409 when they had read it unused and waited
    # for its lock, 410 when they came after (which of them is down to the scheduler)
    assert sorted(codes)[0] == 302
    assert set(sorted(codes)[1:]) <= {409, 410}
    assert Membership.objects.filter(tenant=owner.tenant).count() == 2
