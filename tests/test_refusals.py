"""One refusal base class: every domain refusal carries a `code`, and each face (the API's
error handler, the admin's actions, the portal) catches the base once — a new kind of
refusal needs no face changed."""

import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from capacity.adminutils import run_each
from capacity.errors import InsufficientCapacity, LedgerError, Refusal, describe
from hosting.api.errors import exception_handler
from hosting.lifecycle import IllegalTransition
from hosting.models import Machine
from hosting.quotes import QuoteRefused
from hosting.services import ServiceError


class NovelRefusal(Refusal):
    code = "novel_refusal"


@pytest.mark.parametrize(
    "exc",
    [
        NovelRefusal("a rule nobody taught the API about"),
        IllegalTransition("A machine", "live", "announced", frozenset({"testing"})),
        ServiceError("refused by a service"),
        QuoteRefused("quote_expired", "expired"),
        LedgerError("no"),
    ],
)
def test_every_refusal_answers_409_with_its_code(exc):
    response = exception_handler(exc, {})
    assert response.status_code == 409
    assert response.data == {"code": exc.code, "message": str(exc)}


def test_a_refusal_adds_its_own_details_to_the_error_body():
    import datetime as dt
    from decimal import Decimal

    exc = InsufficientCapacity(
        site="tx",
        requested_kw=Decimal("10"),
        starts_on=dt.date(2021, 7, 1),
        available_kw=Decimal("4"),
        short_kw=Decimal("6"),
        short_from=dt.date(2021, 7, 1),
        fits_from=None,
    )
    body = exception_handler(exc, {}).data
    assert body["code"] == "insufficient_capacity"
    assert body["shortfall"]["short_kw"] == "6"
    assert body["shortfall"]["fits_from"] is None


def test_admin_actions_report_any_refusal_by_object_and_carry_on(rf: RequestFactory):
    request = rf.post("/")
    request.session = SessionStore()
    messages = FallbackStorage(request)
    request._messages = messages  # what the messages middleware sets
    done = []

    def action(obj):
        if obj == "b":
            raise NovelRefusal("b cannot")
        done.append(obj)

    run_each(admin.ModelAdmin(Machine, admin.site), request, ["a", "b", "c"], action, "Done")
    texts = [m.message for m in messages]
    assert done == ["a", "c"]
    assert "b: b cannot" in texts
    assert "Done: 2." in texts


def test_describe_reads_refusals_and_validation_errors_alike():
    from django.core.exceptions import ValidationError

    assert describe(NovelRefusal("plain")) == "plain"
    assert describe(ValidationError(["one", "two"])) == "one two"
