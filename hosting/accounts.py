"""Who may do what for a tenant: the one table of roles and actions. Views, the API and the
faces of every app ask `may` — never compare roles themselves."""

from enum import StrEnum

from hosting.models import Membership, Role, Tenant


class Action(StrEnum):
    VIEW = "view"  # read the tenant's contracts, machines, invoices, alerts
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove members
    MANAGE_TOKENS = "manage_tokens"  # issue and revoke API tokens
    MANAGE_WEBHOOKS = "manage_webhooks"  # subscribe, re-enable, replay
    SHIP = "ship"  # packing lists, editing or cancelling announced machines
    REQUEST = "request"  # re-test and RMA requests, accepting quotes


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.OPERATOR: frozenset({Action.VIEW, Action.SHIP, Action.REQUEST}),
    Role.VIEWER: frozenset({Action.VIEW}),
}


def role_in(user, tenant: Tenant | int) -> Role | None:
    """The user's role for the tenant, None when not a member (staff are never members)."""
    if not user.is_authenticated:
        return None
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    role = Membership.objects.filter(user=user, tenant_id=tenant_id).values_list("role", flat=True).first()
    return Role(role) if role else None


def may(user, tenant: Tenant | int, action: Action) -> bool:
    """Staff may do anything; a member what its role allows; everyone else nothing."""
    if user.is_authenticated and user.is_staff:
        return True
    role = role_in(user, tenant)
    return role is not None and action in ALLOWED[role]


def tenants_where(user, action: Action) -> list[int]:
    """Ids of the tenants for which the user may take the action (not meaningful for staff)."""
    if not user.is_authenticated:
        return []
    roles = [role for role, actions in ALLOWED.items() if action in actions]
    return list(Membership.objects.filter(user=user, role__in=roles).values_list("tenant_id", flat=True))


def may_somewhere(user, action: Action) -> bool:
    """Whether the user may take the action for at least one tenant (staff: always) — for what
    is the user's own, not one tenant's: their API tokens act with their role in each tenant."""
    if user.is_authenticated and user.is_staff:
        return True
    return bool(tenants_where(user, action))


def memberships_of(user) -> list[Membership]:
    """The user's memberships with their tenants, by tenant name (the portal's header)."""
    if not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name"))


def allows(role: Role | str, action: Action) -> bool:
    """Whether the role allows the action (for reading roles already fetched, e.g. a page's header)."""
    return action in ALLOWED[Role(role)]
