"""A tenant's members and invitations: every write, under the tenant's row lock where it
checks something another request could change.

- A tenant never loses its last owner: a role change or a removal locks the tenant row,
  re-reads who acts (their role may have changed while they waited) and counts the owners
  that would remain — two owners demoting each other at once leave one owner.
- An invitation is an e-mailed link whose token is a secret (only its SHA-256 is kept); it
  works once, until it expires or an owner revokes it: accepting locks its row, so two
  acceptances of one link make one membership.

Who may do it is `hosting.accounts.may(by, tenant, Action.MANAGE_MEMBERS)`, asked again
here under the lock (the views ask first, to answer 403 before reading a form).
"""

from __future__ import annotations

import datetime as dt
import secrets
import smtplib
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from changelog import record as changes
from hosting import services
from hosting.accounts import Action, may
from hosting.models import Invitation, Membership, Role, Tenant


class MemberRefused(services.ServiceError):
    """A change to a tenant's members or invitations that the rules refuse; `code` says which."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def _check_may_manage(by, tenant_id: int) -> None:
    if not may(by, tenant_id, Action.MANAGE_MEMBERS):
        raise MemberRefused("not_allowed", "Only the tenant's owners manage its members.")


def _lock_tenant(tenant_id: int) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant_id)


def _other_owners(membership: Membership) -> int:
    return Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.OWNER).exclude(pk=membership.pk).count()


def is_last_owner(membership: Membership) -> bool:
    """Whether the member is its tenant's only owner (advisory: the writes check again under the lock)."""
    return membership.role == Role.OWNER and not _other_owners(membership)


def _locked_member(membership_id: int) -> Membership:
    locked = Membership.objects.select_for_update().select_related("user", "tenant").filter(pk=membership_id).first()
    if locked is None:
        raise MemberRefused("member_gone", "This member has already been removed.")
    return locked


def change_role(membership: Membership, role: Role | str, *, by) -> Membership:
    """Give a member another role; never the tenant's last owner away."""
    role = Role(role)
    with transaction.atomic():
        _lock_tenant(membership.tenant_id)
        _check_may_manage(by, membership.tenant_id)
        locked = _locked_member(membership.pk)
        if locked.role == Role.OWNER and role != Role.OWNER and not _other_owners(locked):
            raise MemberRefused(
                "last_owner", f"{locked.user} is the last owner of {locked.tenant}: make another member owner first."
            )
        locked.role = role
        locked.save(update_fields=["role"])
    return locked


def remove(membership: Membership, *, by) -> None:
    """Take a member off the tenant (their login stays; it no longer sees the tenant's data)."""
    with transaction.atomic():
        _lock_tenant(membership.tenant_id)
        _check_may_manage(by, membership.tenant_id)
        locked = _locked_member(membership.pk)
        if locked.role == Role.OWNER and not _other_owners(locked):
            raise MemberRefused(
                "last_owner", f"{locked.user} is the last owner of {locked.tenant}: make another member owner first."
            )
        locked.delete()


# --- invitations -----------------------------------------------------------------------------


def check_invitable(tenant: Tenant, email: str) -> None:
    """Refuse an address one of the tenant's members already has."""
    email = email.strip().lower()
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise MemberRefused("already_member", f"{email} is already a member of {tenant}.")


def invite(
    tenant: Tenant,
    email: str,
    role: Role | str,
    *,
    by,
    link_for: Callable[[str], str],
    now: dt.datetime | None = None,
) -> Invitation:
    """Invite `email` to join the tenant in `role` and e-mail the link (`link_for(token)`).
    Inviting the same address again replaces its pending invitation (the old link stops
    working). A mail server that refuses leaves no working invitation behind."""
    now = now or timezone.now()
    email = email.strip().lower()
    role = Role(role)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        _lock_tenant(tenant.pk)
        _check_may_manage(by, tenant.pk)
        check_invitable(tenant, email)
        changes.update(tenant.invitations.pending(now).filter(email=email), via="members.invite", revoked_at=now)
        invitation = Invitation.objects.create(
            tenant=tenant, email=email, role=role, digest=Invitation.digest_of(token), invited_by=by,
            created_at=now, expires_at=now + dt.timedelta(days=settings.INVITATION_DAYS),
        )  # fmt: skip
    try:
        _send(invitation, link_for(token), by)
    except (OSError, smtplib.SMTPException) as failed:
        changes.update(Invitation.objects.filter(pk=invitation.pk), via="members.invite", revoked_at=timezone.now())
        raise MemberRefused("mail_failed", f"The invitation could not be e-mailed ({failed}); try again.") from failed
    return invitation


def _send(invitation: Invitation, link: str, by) -> None:
    who = (by.get_full_name() or by.get_username()) if by else "Haven staff"
    send_mail(
        subject=f"Haven: {who} invites you to {invitation.tenant}",
        message=(
            f"{who} invites you to act for {invitation.tenant} on Haven as {invitation.get_role_display()}.\n\n"
            f"Accept (with your Haven login, or by making one): {link}\n\n"
            f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
            "If you did not expect it, ignore this e-mail.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def revoke_invitation(invitation: Invitation, *, by, now: dt.datetime | None = None) -> Invitation:
    """An owner takes back an invitation not yet used: its link stops working."""
    now = now or timezone.now()
    with transaction.atomic():
        _check_may_manage(by, invitation.tenant_id)
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.accepted_at:
            raise MemberRefused("invitation_accepted", "This invitation has been accepted: remove the member instead.")
        if not locked.revoked_at:
            locked.revoked_at = now
            locked.save(update_fields=["revoked_at"])
    return locked


def find(token: str) -> Invitation | None:
    """The invitation a link's token is for (any state), or None."""
    return Invitation.objects.select_related("tenant", "invited_by").filter(digest=Invitation.digest_of(token)).first()


def _check_usable(invitation: Invitation, now: dt.datetime) -> None:
    state = invitation.state(now)
    if state == "accepted":
        raise MemberRefused("invitation_used", "This invitation has already been used.")
    if state == "revoked":
        raise MemberRefused(
            "invitation_revoked", "This invitation was withdrawn; ask the tenant's owner for a new one."
        )
    if state == "expired":
        raise MemberRefused(
            "invitation_expired",
            f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC; "
            "ask the tenant's owner for a new one.",
        )


def _lock_usable(token: str, now: dt.datetime) -> Invitation:
    locked = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(digest=Invitation.digest_of(token))
        .first()
    )
    if locked is None:
        raise MemberRefused("invitation_unknown", "This invitation link is not valid.")
    _check_usable(locked, now)
    return locked


def _join(locked: Invitation, user, now: dt.datetime) -> Membership:
    if user.is_staff or user.is_superuser:
        raise MemberRefused("staff_cannot_join", "Staff logins cannot belong to a tenant; use a separate login.")
    if Membership.objects.filter(tenant_id=locked.tenant_id, user=user).exists():
        raise MemberRefused("already_member", f"You are already a member of {locked.tenant}.")
    membership = Membership.objects.create(tenant_id=locked.tenant_id, user=user, role=locked.role, created_at=now)
    locked.accepted_at = now
    locked.accepted_by = user
    locked.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def accept(token: str, user, *, now: dt.datetime | None = None) -> Membership:
    """A logged-in user accepts: they become a member in the invitation's role. Once only."""
    now = now or timezone.now()
    with transaction.atomic():
        return _join(_lock_usable(token, now), user, now)


def accept_as_new_user(token: str, *, username: str, password: str, now: dt.datetime | None = None) -> Membership:
    """Someone without a login accepts: a user is made with the invited address, and joins."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_usable(token, now)
        user = get_user_model().objects.create_user(username=username, email=locked.email, password=password)
        return _join(locked, user, now)
