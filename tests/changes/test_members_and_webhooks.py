"""Who acts for a tenant and where its events go are in the change log: a member added,
re-roled and removed, an invitation made, replaced and revoked (never its token's digest), a
webhook subscription made, disabled and re-enabled (never its signing secret) — each with
before/after and who acted."""

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from changelog import context, present
from hosting import members
from hosting.models import Invitation, Role
from hosting.webhooks import services
from hosting.webhooks.models import EventType, Subscription
from tests.changes.conftest import entries_of, last_of
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
A, U, D = LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE


URL = "http://127.0.0.1:9/haven"  # never called: the delivery tasks are not sent


@pytest.fixture
def owner(db):
    return MembershipFactory(role=Role.OWNER).user


@pytest.fixture
def published(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(services, "publish", lambda ids: sent.extend(ids) or len(ids))
    return sent


def link_to(tokens: list[str]):
    """The invitation link, keeping each token as the e-mail would carry it."""

    def link(token: str) -> str:
        tokens.append(token)
        return f"https://haven.example.com/invitations/{token}/"

    return link


def everything_logged() -> str:
    """Every log entry's text, as the staff pages, the API and the admin could show it."""
    return "\n".join(
        f"{e.object_repr} {e.changes} {e.changes_text} {e.serialized_data} {e.additional_data}"
        for e in LogEntry.objects.all()
    )


def test_a_role_change_and_a_removal_record_before_after_and_the_owner_who_did_it(owner):
    tenant = owner.tenants.get()
    member = MembershipFactory(tenant=tenant, role=Role.VIEWER)
    with context.acting(user=owner) as acting:
        members.change_role(member, Role.OPERATOR, by=owner)
        members.remove(member, by=owner)
    created, changed, removed = entries_of(member)
    assert created.action == A
    assert created.changes["role"] == [None, "viewer"]
    assert (changed.action, changed.changes, changed.actor, changed.cid) == (
        U, {"role": ["viewer", "operator"]}, owner, acting.cid
    )  # fmt: skip
    assert (removed.action, removed.actor) == (D, owner)
    assert removed.changes["role"] == ["operator", None]


def test_accepting_an_invitation_records_the_membership_and_never_the_tokens_digest(owner):
    tenant = owner.tenants.get()
    tokens: list[str] = []
    with context.acting(user=owner):
        first = members.invite(tenant, "New@Example.com", Role.OPERATOR, by=owner, link_for=link_to(tokens))
        again = members.invite(tenant, "new@example.com", Role.VIEWER, by=owner, link_for=link_to(tokens))
    # Inviting again revokes the first (a bulk write): recorded, by the owner, saying which write.
    revoked = last_of(first)
    assert list(revoked.changes) == ["revoked_at"]
    assert revoked.changes["revoked_at"][0] is None
    assert (revoked.actor, revoked.additional_data["via"]) == (owner, "members.invite")
    joiner = UserFactory(email="new@example.com")
    with context.acting(user=joiner):
        membership = members.accept(tokens[-1], joiner)
    assert last_of(membership).changes["role"] == [None, "viewer"]
    accepted = last_of(again)
    assert (accepted.actor, set(accepted.changes)) == (joiner, {"accepted_at", "accepted_by"})
    assert "digest" not in entries_of(again)[0].changes
    digests = Invitation.objects.values_list("digest", flat=True)
    assert all(d not in everything_logged() for d in digests)


def test_a_subscription_edit_is_recorded_with_before_after_and_actor_never_its_secret(owner, published, client):
    tenant = owner.tenants.get()
    with context.acting(user=owner):
        subscription = services.subscribe(tenant=tenant, url=URL, events=[EventType.INVOICE_ISSUED], by=owner)
        services.disable(subscription, "receiver answered 410")
    created, disabled = entries_of(subscription)
    assert created.changes["url"] == [None, URL]
    assert created.changes["events"] == [None, ["invoice.issued"]]
    assert "secret" not in created.changes
    assert "consecutive_failures" not in created.changes
    assert disabled.changes["enabled"] == [True, False]
    assert disabled.changes["disabled_reason"] == ["", "receiver answered 410"]
    assert (disabled.actor, disabled.additional_data["via"]) == (owner, "webhooks.disable")

    # The owner re-enables it and rotates its secret through the portal: one request's changes.
    client.force_login(owner)
    client.post(reverse("portal:webhook-enable", args=[subscription.pk]), headers={"X-Request-ID": "fix-hook-1"})
    client.post(reverse("portal:webhook-rotate", args=[subscription.pk]), headers={"X-Request-ID": "fix-hook-2"})
    enabled = last_of(subscription)
    assert enabled.changes["enabled"] == [False, True]
    assert enabled.changes["disabled_reason"] == ["receiver answered 410", ""]
    assert (enabled.actor, enabled.cid) == (owner, "fix-hook-1")
    assert not LogEntry.objects.filter(cid="fix-hook-2").exists()  # a rotation changes only the secret
    rotated = Subscription.objects.get(pk=subscription.pk)
    assert rotated.secret != subscription.secret

    with context.acting(user=owner):
        rotated.delete()
    assert last_of(subscription).action == D
    logged = everything_logged()
    assert subscription.secret not in logged
    assert rotated.secret not in logged
    assert "whsec_" not in logged
    assert "secret" not in logged


def test_the_change_logs_filters_offer_them():
    keys = {key for key, _ in present.model_choices()}
    assert {"hosting.membership", "hosting.invitation", "webhooks.subscription"} <= keys
