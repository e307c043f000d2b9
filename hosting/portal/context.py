"""The portal header's account: the tenants the user acts for (the company names, each with
the user's role) and which account pages their roles open — read once per page, lazily."""

from functools import cached_property

from hosting.accounts import Action, allows, memberships_of


class Account:
    def __init__(self, user):
        self.user = user

    @cached_property
    def memberships(self) -> list:
        return memberships_of(self.user)

    def _anywhere(self, action: Action) -> bool:
        return any(allows(m.role, action) for m in self.memberships)

    @property
    def manages_members(self) -> bool:
        return self._anywhere(Action.MANAGE_MEMBERS)

    @property
    def manages_tokens(self) -> bool:
        return self._anywhere(Action.MANAGE_TOKENS)

    @property
    def manages_webhooks(self) -> bool:
        return self._anywhere(Action.MANAGE_WEBHOOKS)


def account(request) -> dict:
    return {"account": Account(request.user)}
