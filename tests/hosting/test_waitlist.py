"""The waitlist: a request nobody can take keeps its place and is priced, in queue order,
when capacity appears — by a Celery task, with an e-mail to the requester."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from django.test import Client
from django.urls import reverse

from capacity import ledger
from capacity.models import EnergizationPhase
from hosting import quotes
from hosting.models import Quote
from tests.api.conftest import TODAY, client_for, priced_site
from tests.factories import PhaseFactory, StaffFactory
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
    site, booking = full_site
    # A grid upgrade past the planning horizon: 12 MW can be hosted some day, not within it.
    PhaseFactory(site=site, name="Grid upgrade", energized_on=TODAY + relativedelta(months=48), mw=Decimal("10"))
    too_big = waitlisted("12000", "too-big@example.com")  # more than the site's 10 MW until then
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


# --- what no site will ever take is refused, not waitlisted ------------------------------------------


@pytest.mark.django_db
def test_demand_beyond_every_sites_final_build_out_is_refused_saying_the_most_any_could_take(full_site):
    site, _ = full_site
    PhaseFactory(site=site, name="Phase 2", energized_on=TODAY + relativedelta(months=6), mw=Decimal("15"))
    other = priced_site("texas", mw="4", pue="1.25", country="US")
    with pytest.raises(quotes.DemandTooLarge) as refused:
        waitlisted("5000000", "five-gw@example.com")  # 5 GW: more than 25 MW (Kazakh, all phases) ever
    assert refused.value.code == "exceeds_build_out"
    assert "the most any site this request may go to could ever take is 25,000 kW" in str(refused.value)
    assert refused.value.details() == {"requested_it_kw": "5000000", "max_it_kw": "25000", "site": "kazakh"}
    assert waitlisted("25000", "just-fits@example.com").status == "waitlisted"  # the whole site, some day
    # The filters decide which sites count: Texas (4 MW at PUE 1.25 = 3,200 kW of IT) alone.
    with pytest.raises(quotes.DemandTooLarge, match="3,200 kW"):
        quotes.request_quote(Quote(contact_email="x@example.com", it_kw=Decimal("3201"), start_on=START,
                                   term_months=12, site=other))  # fmt: skip
    assert not Quote.objects.filter(contact_email__in=["five-gw@example.com", "x@example.com"]).exists()


@pytest.mark.django_db
def test_the_api_and_the_portal_refuse_it_clearly(full_site):
    body = {"it_kw": "5000000", "start_on": START.isoformat(), "term_months": 12, "contact_email": "a@example.com"}
    response = client_for().post("/api/v1/quotes/", body, format="json")
    assert response.status_code == 409, response.json()
    assert "could ever take is 10,000 kW" in str(response.json())
    assert not Quote.objects.exists()

    from tests.factories import MembershipFactory

    portal = Client()
    portal.force_login(MembershipFactory().user)
    page = portal.post(reverse("portal:quotes"), {key: body[key] for key in ("it_kw", "start_on", "term_months")})
    assert page.status_code == 200
    assert "could ever take is 10,000 kW" in page.content.decode()
    assert not Quote.objects.exists()


# --- staff decline waitlisted quotes ---------------------------------------------------------------------


@pytest.fixture
def staff_browser():
    client = Client(enforce_csrf_checks=True)
    client.force_login(StaffFactory(username="ops"))
    return client


def csrf_of(client, page_url: str) -> str:
    client.get(page_url)
    return client.cookies["csrftoken"].value


@pytest.mark.django_db
def test_staff_decline_a_waitlisted_quote_with_a_reason_and_the_requester_is_told(
    full_site, staff_browser, django_capture_on_commit_callbacks
):
    first = waitlisted("6000", "first@example.com")
    second = waitlisted("7000", "second@example.com")
    page = staff_browser.get(reverse("staff:waitlist")).content.decode()
    decline_url = reverse("staff:waitlist-decline", args=[first.pk])
    assert f'action="{decline_url}"' in page
    assert staff_browser.post(decline_url, {"reason": "duplicate"}).status_code == 403  # no CSRF token
    token = csrf_of(staff_browser, reverse("staff:waitlist"))

    refused = staff_browser.post(decline_url, {"reason": "  ", "csrfmiddlewaretoken": token}, follow=True)
    assert "Say why the quote is declined" in refused.content.decode()
    first.refresh_from_db()
    assert first.status == "waitlisted"

    with django_capture_on_commit_callbacks(execute=True):
        done = staff_browser.post(
            decline_url, {"reason": "a duplicate of your request of 3 June", "csrfmiddlewaretoken": token}, follow=True
        )
    assert "declined; first@example.com is told why" in done.content.decode()
    first.refresh_from_db()
    assert (first.status, first.decline_reason, first.declined_by.username) == (
        "declined", "a duplicate of your request of 3 June", "ops"
    )  # fmt: skip
    assert first.declined_at is not None
    assert [r["quote"].pk for r in done.context["rows"]] == [second.pk]  # off the waitlist; the next moves up
    assert quotes.waitlist_position(second) == 1
    assert [m.to for m in mail.outbox] == [["first@example.com"]]
    assert "a duplicate of your request of 3 June" in mail.outbox[0].body
    with pytest.raises(quotes.QuoteRefused, match="Only a waitlisted quote"):
        quotes.decline(first, reason="again")


@pytest.mark.django_db
def test_declining_needs_staff_and_a_post(full_site, client):
    quote = waitlisted("6000", "first@example.com")
    decline_url = reverse("staff:waitlist-decline", args=[quote.pk])
    from tests.factories import MembershipFactory

    client.force_login(MembershipFactory().user)
    assert client.post(decline_url, {"reason": "x"}).status_code == 302  # to the admin login
    client.force_login(StaffFactory(username="ops"))
    assert client.get(decline_url).status_code == 405
    quote.refresh_from_db()
    assert quote.status == "waitlisted"


@pytest.mark.django_db
def test_staff_decline_from_the_admin_too(full_site, django_capture_on_commit_callbacks):
    quote = waitlisted("6000", "first@example.com")
    admin = Client()
    admin.force_login(StaffFactory(username="ops"))
    changelist = reverse("admin:hosting_quote_changelist")
    asked = admin.post(changelist, {"action": "decline", "_selected_action": [quote.pk]})
    assert 'id="with-reason"' in asked.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(changelist, {"action": "decline", "_selected_action": [quote.pk], "apply": "1", "reason": "spam"})
    quote.refresh_from_db()
    assert (quote.status, quote.decline_reason) == ("declined", "spam")
    assert mail.outbox[0].to == ["first@example.com"]


def complete_mail(folder: Path) -> str | None:
    """The first e-mail the file backend has finished writing: it ends each message with a
    line of 79 dashes, so a file seen half-written is not read as the message."""
    for path in sorted(folder.glob("*.log")):
        text = path.read_text()
        if text.endswith("-" * 79 + "\n"):
            return text
    return None
