"""Who is acting, and under which id: one `Acting` per request or task, in a ContextVar.

The middleware opens one per request (X-Request-ID if sane, else a new id), the API's token
authentication names the token that acted, the Celery signals open one per task (the task's
name; the request id and user of whoever queued it, carried in the message's headers, else
the task's own id). Every log entry written meanwhile — by auditlog's signals or by
`changelog.record` — carries it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Any

# What an incoming X-Request-ID may be to be kept: short, printable, no spaces or separators
# a log line or a header could be split on. Anything else is replaced by a fresh id.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")


@dataclass(frozen=True)
class Acting:
    """The actor and correlation id of the changes being made now."""

    cid: str
    user_id: int | None = None
    by: str = ""  # how, besides a session: "token 1a2b3c4d", "task billing.run_invoices"
    remote_addr: str | None = None

    def extra(self) -> dict[str, Any] | None:
        """What a log entry's `additional_data` records besides the user."""
        return {"by": self.by} if self.by else None


_acting: ContextVar[Acting | None] = ContextVar("changelog_acting", default=None)


def new_cid() -> str:
    return uuid.uuid4().hex


def sane_cid(value: str | None) -> str | None:
    """An incoming request id if it is one we may keep and echo, else None."""
    if value and SANE_ID.fullmatch(value):
        return value
    return None


def current() -> Acting | None:
    return _acting.get()


def get_cid() -> str | None:
    """The current correlation id (settings.AUDITLOG_CID_GETTER)."""
    acting = _acting.get()
    return acting.cid if acting else None


def begin(acting: Acting | None) -> Token:
    return _acting.set(acting)


def end(token: Token) -> None:
    _acting.reset(token)


@contextmanager
def acting(
    *, cid: str | None = None, user: Any = None, by: str = "", remote_addr: str | None = None
) -> Iterator[Acting]:
    """Act as `user` (or as `by`: a task, a command) under `cid` (a new one if not given)."""
    now = Acting(cid=cid or new_cid(), user_id=getattr(user, "pk", None), by=by, remote_addr=remote_addr)
    token = begin(now)
    try:
        yield now
    finally:
        end(token)


def act_as(user: Any, *, by: str = "") -> None:
    """Name the user (and how: "token …") of the current request once it is known — the
    API authenticates inside the view, after the middleware opened the request's context."""
    acting = _acting.get()
    if acting is not None:
        _acting.set(replace(acting, user_id=getattr(user, "pk", None), by=by))
