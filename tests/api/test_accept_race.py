"""Concurrent accepts and contracts through the API, on PostgreSQL: real requests in
threads (tests/races.py), many rounds, and one chosen interleaving."""

import datetime as dt
from decimal import Decimal

import pytest

from capacity import ledger
from capacity.models import Reservation
from hosting import quotes
from hosting.models import Quote
from tests.api.conftest import TODAY, client_for, priced_site
from tests.factories import MembershipFactory, StaffFactory
from tests.races import Concurrent, race, run_after

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

START = TODAY + dt.timedelta(days=30)
ROUNDS = 5


def priced_quote(**fields) -> Quote:
    request = {"it_kw": Decimal("3000"), "start_on": START, "term_months": 12, **fields}
    return quotes.request_quote(
        quotes.new_request(request, requester=None, contact_email="q@example.com", client_ip=None)
    )


def post_all(calls):
    """Send (client, path, body) requests at the same moment; [(status, json)] in call order."""

    def send(i):
        api, path, body = calls[i]
        response = api.post(path, body, format="json")
        return i, response.status_code, response.json()

    results, _ = race(len(calls), send)
    return [(code, body) for _, code, body in sorted(results, key=lambda r: r[0])]


def test_concurrent_accepts_never_overbook_and_the_losers_get_409():
    # 10 MW site: quotes of 3 MW each — only three holds fit, whoever is first.
    site = priced_site("last-capacity", mw="10")
    calls = []
    for _ in range(12):
        quote = priced_quote()
        calls.append((client_for(MembershipFactory().user), f"/api/v1/quotes/{quote.pk}/accept/", {"site": site.slug}))

    results = post_all(calls)

    assert sorted(code for code, _ in results) == [200] * 3 + [409] * 9
    for code, body in results:
        if code == 409:
            assert body["code"] == "insufficient_capacity"
            assert body["shortfall"]["short_kw"] == "2000.000"  # 3 MW wanted, 1 MW left
    assert Reservation.objects.filter(kind="hold").count() == 3
    assert ledger.load_book(site).over_budget(TODAY) is None
    assert ledger.load_book(site).committed_kw(START) == Decimal("9000")


def test_fifty_tenants_accepting_one_quote_at_once_give_it_to_exactly_one():
    site = priced_site("one-quote", mw="100")
    apis = [client_for(MembershipFactory().user) for _ in range(50)]
    for _ in range(ROUNDS):
        quote = priced_quote()
        results = post_all([(api, f"/api/v1/quotes/{quote.pk}/accept/", {"site": site.slug}) for api in apis])

        winners = [body for code, body in results if code == 200]
        assert len(winners) == 1, [code for code, _ in results]
        assert {(code, body["code"]) for code, body in results if code != 200} == {(409, "quote_accepted")}
        quote.refresh_from_db()
        assert quote.status == Quote.Status.ACCEPTED
        assert quote.tenant.slug == winners[0]["tenant"]  # the quote says who holds it: the one told so
        holds = Reservation.objects.filter(reference=quote.reference)
        assert [h.pk for h in holds] == [quote.hold_id]  # one hold, no orphan


def test_one_quote_accepted_at_two_sites_at_once_gets_one_hold():
    first, second = priced_site("tab-one", mw="100"), priced_site("tab-two", mw="100")
    api = client_for(MembershipFactory().user)
    for _ in range(ROUNDS * 2):
        quote = priced_quote()
        path = f"/api/v1/quotes/{quote.pk}/accept/"
        results = post_all([(api, path, {"site": first.slug}), (api, path, {"site": second.slug})])

        assert sorted(code for code, _ in results) == [200, 409]
        assert [body["code"] for code, body in results if code == 409] == ["quote_accepted"]
        assert Reservation.objects.filter(reference=quote.reference).count() == 1  # none orphaned for 72 h
        quote.refresh_from_db()
        assert Reservation.objects.active().filter(reference=quote.reference).get().pk == quote.hold_id


def test_a_staff_contract_racing_the_tenants_accept_never_fails():
    site = priced_site("contract-race", mw="100")
    staff = client_for(StaffFactory())
    tenant = client_for(MembershipFactory().user)
    for _ in range(ROUNDS * 2):
        quote = priced_quote()
        (accepted, accept_body), (contracted, contract_body) = post_all(
            [
                (tenant, f"/api/v1/quotes/{quote.pk}/accept/", {"site": site.slug}),
                (staff, "/api/v1/contracts/", {"quote": str(quote.pk)}),
            ]
        )
        assert accepted == 200, accept_body
        assert (contracted, contract_body.get("code")) in {(201, None), (409, "quote_not_accepted")}, contract_body
        quote.refresh_from_db()
        assert quote.status == (Quote.Status.CONTRACTED if contracted == 201 else Quote.Status.ACCEPTED)
        assert Reservation.objects.filter(reference__in=[quote.reference, f"contract:{quote.contract_id}"]).count() == 1


def test_an_accept_that_waited_for_the_quote_lock_sees_the_hold_made_meanwhile():
    """Deterministic: the second tenant's accept is started while the first holds the
    quote's lock with its hold booked but not committed, and is known to wait for that
    lock before the first commits; it must then read the new hold and be refused."""
    site = priced_site("interleaved", mw="100")
    quote = priced_quote()
    first, second = MembershipFactory().tenant, MembershipFactory().tenant
    waiting: list[Concurrent] = []

    def second_accept_waits(hold, *args, **kwargs):
        if waiting:  # only at the first booking
            return
        waiting.append(
            Concurrent(lambda: quotes.accept(Quote.objects.get(pk=quote.pk), site_slug=site.slug, tenant=second))
        )
        waiting[0].wait_until_blocked()

    with run_after("capacity.ledger.reserve", second_accept_waits):
        quotes.accept(quote, site_slug=site.slug, tenant=first)

    with pytest.raises(quotes.QuoteRefused) as refused:
        waiting[0].result()
    assert refused.value.code == "quote_accepted"
    quote.refresh_from_db()
    assert quote.tenant == first
    assert Reservation.objects.filter(reference=quote.reference).count() == 1
