"""The waitlist: a request nobody can take keeps its place and is priced, in queue order,
when capacity appears — by a Celery task, with an e-mail to the requester."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail

from capacity import ledger
from capacity.models import EnergizationPhase
from hosting import quotes
from hosting.models import Quote
from tests.api.conftest import TODAY, priced_site
from tests.workers import celery_worker, wait_for

START = TODAY + dt.timedelta(days=30)


def waitlisted(it_kw: str, email: str) -> Quote:
    return quotes.request_quote(Quote(contact_email=email, it_kw=Decimal(it_kw), start_on=START, term_months=12))


@pytest.fixture
def full_site(db):
    """10 MW, 9 MW of it booked open-ended."""
    site = priced_site("kazakh", mw="10")
    booking = ledger.reserve(
        site,
        it_kw=Decimal("9000"),
        starts_on=TODAY,
        ends_on=None,
        kind="firm",
        reference="contract:big",
    )
    return site, booking


@pytest.mark.django_db
def test_promotion_follows_the_queue_and_counts_earlier_promotions(full_site, django_capture_on_commit_callbacks):
    _, booking = full_site
    first = waitlisted("6000", "first@example.com")
    second = waitlisted("6000", "second@example.com")
    small = waitlisted("1500", "small@example.com")
    assert [q.status for q in (first, second, small)] == ["waitlisted"] * 3

    ledger.release(booking)  # 10 MW free: the first 6 MW and the small one now; not both 6 MW at once
    with django_capture_on_commit_callbacks(execute=True):
        promoted = quotes.promote_waitlist()

    assert [q.contact_email for q in promoted] == ["first@example.com", "second@example.com", "small@example.com"]
    for quote in (first, second, small):
        quote.refresh_from_db()
    assert first.options[0]["available_from"] == START.isoformat()
    # The second is priced behind the first: from when the first one's term would end.
    assert second.options[0]["available_from"] == (START + relativedelta(months=12)).isoformat()
    assert small.options[0]["available_from"] == START.isoformat()
    assert {q.status for q in (first, second, small)} == {"priced"}
    assert [m.to for m in mail.outbox] == [["first@example.com"], ["second@example.com"], ["small@example.com"]]
    assert "now has options" in mail.outbox[0].body
    assert f"/api/v1/quotes/{first.id}/accept/" in mail.outbox[0].body


@pytest.mark.django_db
def test_a_request_that_still_does_not_fit_keeps_its_place(full_site):
    _, booking = full_site
    too_big = waitlisted("12000", "too-big@example.com")  # more than the site's 10 MW
    later = waitlisted("6000", "later@example.com")
    ledger.release(booking)
    assert [q.pk for q in quotes.promote_waitlist()] == [later.pk]
    too_big.refresh_from_db()
    assert (too_big.status, quotes.waitlist_position(too_big)) == ("waitlisted", 1)


@pytest.mark.django_db
def test_promotion_with_nothing_new_changes_nothing(full_site):
    waitlisted("6000", "first@example.com")
    assert quotes.promote_waitlist() == []
    assert Quote.objects.get().status == "waitlisted"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_new_phase_wakes_a_real_worker_that_prices_the_waitlist(full_site, tmp_path):
    site, _ = full_site
    quote = waitlisted("6000", "patient@example.com")
    outbox = tmp_path / "mail"
    with celery_worker(extra_env={"EMAIL_FILE_PATH": str(outbox)}):
        # Staff energize a new phase: the ledger signals, the task is queued after commit.
        ledger.save_phase(EnergizationPhase(site=site, name="Phase 2", energized_on=START, mw=Decimal("10")))
        priced = wait_for(
            lambda: Quote.objects.filter(pk=quote.pk, status="priced").first(), what="the quote to be priced"
        )
        assert priced.options[0]["available_from"] == START.isoformat()
        message = wait_for(lambda: complete_mail(outbox), what="the e-mail, written whole")
    assert "To: patient@example.com" in message
    assert "capacity found" in message


def complete_mail(folder: Path) -> str | None:
    """The first e-mail the file backend has finished writing: it ends each message with a
    line of 79 dashes, so a file seen half-written is not read as the message."""
    for path in sorted(folder.glob("*.log")):
        text = path.read_text()
        if text.endswith("-" * 79 + "\n"):
            return text
    return None
