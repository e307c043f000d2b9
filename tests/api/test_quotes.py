"""POST /api/v1/quotes/ and what follows: options, waitlist, holds, contracts."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from capacity import ledger
from capacity.models import Reservation
from hosting.lifecycle import ContractStatus
from hosting.models import Contract, Quote
from tests.api.conftest import TODAY, client_for
from tests.factories import MembershipFactory, PhaseFactory, SiteFactory

pytestmark = pytest.mark.django_db

START = (TODAY + dt.timedelta(days=30)).isoformat()


def ask(api, **body):
    request = {"start_on": START, "term_months": 12, "contact_email": "miner@example.com", **body}
    return api.post("/api/v1/quotes/", request, format="json")


# --- pricing ---------------------------------------------------------------------------------


def test_a_quote_prices_every_site_that_can_take_it_best_first(anon, two_sites):
    response = ask(anon, machine_model="antminer-s19", quantity=100)
    assert response.status_code == 201, response.json()
    quote = response.json()
    assert quote["status"] == "priced"
    assert quote["it_kw"] == "325.000"  # 3,250 W × 100 ÷ 1000
    assert len(quote["id"]) == 36  # a UUID: not guessable
    assert quote["valid_until"] is not None
    first, second = quote["options"]
    assert [first["site"], second["site"]] == ["siberia", "texas"]  # same date, Siberia cheaper
    assert first["available_from"] == START
    assert first["rate_usd_per_kwh"] == "0.04275"  # 0.045 less the 5 % 12-month discount
    assert first["monthly_usd"] == "10142.44"  # 325 kW × 730 h × 0.04275
    assert first["setup_usd"] == "4000.00"  # 100 machines × 40
    assert first["slots"] == 100
    assert first["slots_free_now"] == 16  # the built floor has 16 slots
    assert first["circuits"] == 7  # 16 S19s per 415 V 100 A circuit


def test_an_it_kw_quote_counts_reference_machines(anon, two_sites):
    quote = ask(anon, it_kw="65").json()
    assert quote["it_kw"] == "65.000"
    assert quote["machine_model"] is None
    assert quote["options"][0]["slots"] == 20  # 65 kW ÷ 3,250 W


def test_a_site_that_is_full_until_a_date_offers_that_date(anon, two_sites):
    ledger.reserve(
        two_sites["siberia"],
        it_kw=Decimal("19900"),
        starts_on=TODAY,
        ends_on=TODAY + dt.timedelta(days=90),
        kind="firm",
        reference="contract:big",
    )
    options = {o["site"]: o for o in ask(anon, it_kw="1000").json()["options"]}
    assert options["siberia"]["available_from"] == (TODAY + dt.timedelta(days=90)).isoformat()
    assert options["texas"]["available_from"] == START
    assert options["texas"]["rank"] == 1  # earlier beats cheaper


def test_filters_narrow_the_sites(anon, two_sites):
    assert [o["site"] for o in ask(anon, it_kw="10", country="US").json()["options"]] == ["texas"]
    assert [o["site"] for o in ask(anon, it_kw="10", region="irkutsk").json()["options"]] == ["siberia"]
    assert [o["site"] for o in ask(anon, it_kw="10", site="texas").json()["options"]] == ["texas"]


def test_nothing_fits_within_the_horizon_so_the_quote_is_waitlisted_in_order(anon, two_sites):
    # Siberia grows past the planning horizon: these fit some day (else: refused), not within it.
    PhaseFactory(site=two_sites["siberia"], name="Phase 9", energized_on=TODAY + dt.timedelta(days=365 * 4), mw=40)
    first = ask(anon, it_kw="25000").json()  # more than either site has until then
    second = ask(anon, it_kw="30000").json()
    assert (first["status"], first["options"], first["valid_until"]) == ("waitlisted", [], None)
    assert (first["waitlist_position"], second["waitlist_position"]) == (1, 2)
    assert anon.get(f"/api/v1/quotes/{second['id']}/").json()["waitlist_position"] == 2


def test_whoever_holds_the_id_can_read_the_quote(anon, two_sites):
    created = ask(anon, it_kw="10").json()
    assert client_for().get(f"/api/v1/quotes/{created['id']}/").json() == created
    assert anon.get("/api/v1/quotes/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert anon.get("/api/v1/quotes/not-a-uuid/").status_code == 404


def test_a_token_lists_its_own_quotes_and_anonymous_cannot_list(anon, two_sites, tenant_user, tenant_api):
    mine = ask(tenant_api, it_kw="10").json()
    ask(anon, it_kw="10")  # someone else's
    listed = tenant_api.get("/api/v1/quotes/").json()
    assert [q["id"] for q in listed["results"]] == [mine["id"]]
    assert anon.get("/api/v1/quotes/").status_code == 401


def test_a_token_holder_need_not_give_an_email(two_sites, tenant_user, tenant_api):
    response = ask(tenant_api, it_kw="10", contact_email="")
    assert response.status_code == 400  # blank is not an address…
    body = {"it_kw": "10", "start_on": START, "term_months": 12}
    assert tenant_api.post("/api/v1/quotes/", body, format="json").status_code == 201  # …absent is fine
    assert Quote.objects.get().contact_email == tenant_user.email


# --- bad input: 400 with field errors, never 500 --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"machine_model": "antminer-s99", "quantity": 1}, "machine_model"),
        ({"machine_model": "antminer-s19", "quantity": 0}, "quantity"),
        ({"machine_model": "antminer-s19", "quantity": -5}, "quantity"),
        ({"machine_model": "antminer-s19", "quantity": 10**12}, "quantity"),
        ({"machine_model": "antminer-s19", "quantity": "many"}, "quantity"),
        ({"machine_model": "antminer-s19"}, "quantity"),
        ({"quantity": 10}, "machine_model"),
        ({"it_kw": "0"}, "it_kw"),
        ({"it_kw": "-1"}, "it_kw"),
        ({"it_kw": "1e12"}, "it_kw"),
        ({"it_kw": "NaN"}, "it_kw"),
        ({"it_kw": "10", "start_on": "2020-01-01"}, "start_on"),
        ({"it_kw": "10", "start_on": "3020-01-01"}, "start_on"),
        ({"it_kw": "10", "start_on": "tomorrow"}, "start_on"),
        ({"it_kw": "10", "term_months": 0}, "term_months"),
        ({"it_kw": "10", "term_months": 1200}, "term_months"),
        ({"it_kw": "10", "contact_email": "not-an-email"}, "contact_email"),
        ({"it_kw": "10", "contact_email": ""}, "contact_email"),
        ({"it_kw": "10", "site": "atlantis"}, "site"),
        ({"it_kw": "10", "country": "XX"}, "country"),
        ({"it_kw": "10", "machine_model": "antminer-s19", "quantity": 1}, "non_field_errors"),
        ({}, "machine_model"),
    ],
)
def test_bad_requests_answer_400_with_the_field_at_fault(anon, two_sites, body, field):
    request = {"start_on": START, "term_months": 12, "contact_email": "miner@example.com", **body}
    response = anon.post("/api/v1/quotes/", request, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "invalid"
    assert field in error["errors"], error
    assert not Quote.objects.exists()


def test_a_body_that_is_not_json_answers_400(anon, two_sites):
    response = anon.post("/api/v1/quotes/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


# --- accepting: holds ---------------------------------------------------------------------------


@pytest.fixture
def quote(anon, two_sites):
    return ask(anon, machine_model="antminer-s19", quantity=100).json()


def accept(api, quote, site="siberia", **extra):
    return api.post(f"/api/v1/quotes/{quote['id']}/accept/", {"site": site, **extra}, format="json")


def test_accepting_holds_the_capacity_for_72_hours(quote, tenant_api):
    before = timezone.now()
    response = accept(tenant_api, quote)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["tenant"]) == ("accepted", "northern")
    assert body["hold"]["site"] == "siberia"
    assert body["hold"]["starts_on"] == START
    assert body["hold"]["it_kw"] == "325.000"
    hold = Reservation.objects.get(reference=f"quote:{quote['id']}")
    assert hold.kind == "hold"
    assert before + dt.timedelta(hours=72) <= hold.expires_at <= timezone.now() + dt.timedelta(hours=72)


def test_accepting_again_is_idempotent_but_another_site_is_refused(quote, tenant_api):
    first = accept(tenant_api, quote).json()
    again = accept(tenant_api, quote)
    assert again.status_code == 200
    assert again.json()["hold"] == first["hold"]
    assert Reservation.objects.count() == 1
    other = accept(tenant_api, quote, site="texas")
    assert other.status_code == 409
    assert other.json()["code"] == "quote_accepted"


def test_accepting_needs_a_tenants_token(anon, quote, staff_api):
    assert accept(anon, quote).status_code == 401
    refused = accept(staff_api, quote)
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_a_tenant"
    assert not Reservation.objects.exists()


def test_accepting_a_site_that_is_not_an_option_is_a_field_error(quote, tenant_api):
    response = accept(tenant_api, quote, site="atlantis")
    assert response.status_code == 400
    assert "site" in response.json()["errors"]


def test_a_user_of_several_tenants_says_which(quote, tenant_user):
    MembershipFactory(user=tenant_user)
    api = client_for(tenant_user)
    assert "tenant" in accept(api, quote).json()["errors"]
    assert accept(api, quote, tenant="northern").status_code == 200


def test_an_expired_quote_is_refused_clearly(quote, tenant_api):
    with time_machine.travel(timezone.now() + dt.timedelta(days=8), tick=False):
        response = accept(tenant_api, quote)
    assert response.status_code == 409
    assert response.json()["code"] == "quote_expired"
    assert "expired at" in response.json()["message"]


def test_when_the_capacity_went_meanwhile_accepting_answers_409_with_the_shortfall(quote, tenant_api, two_sites):
    ledger.reserve(
        two_sites["siberia"], it_kw=Decimal("19800"), starts_on=TODAY, ends_on=None, kind="firm", reference="x"
    )
    response = accept(tenant_api, quote)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "insufficient_capacity"
    assert body["shortfall"]["short_kw"] == "125.000"  # 325 wanted, 200 left
    assert body["shortfall"]["available_kw"] == "200.000"
    assert body["shortfall"]["site"] == "siberia"


def test_a_hold_stops_counting_when_it_expires(quote, tenant_api, two_sites):
    accept(tenant_api, quote)
    siberia = two_sites["siberia"]
    book = ledger.load_book(siberia)
    assert book.committed_kw(TODAY + dt.timedelta(days=30)) == Decimal("325")
    later = timezone.now() + dt.timedelta(hours=73)
    assert ledger.load_book(siberia, later).committed_kw(TODAY + dt.timedelta(days=30)) == 0
    with time_machine.travel(later, tick=False):  # the cached availability notices too
        sites = client_for().get("/api/v1/sites/siberia/").json()
    assert Decimal(sites["available_kw_today"]) == Decimal("20000")


# --- from hold to contract --------------------------------------------------------------------------


def test_staff_turn_an_accepted_quote_into_a_signed_contract(quote, tenant_api, staff_api):
    accept(tenant_api, quote)
    response = staff_api.post("/api/v1/contracts/", {"quote": quote["id"]}, format="json")
    assert response.status_code == 201, response.json()
    contract = Contract.objects.get(pk=response.json()["id"])
    assert (contract.status, contract.tenant.slug, contract.site.slug) == (ContractStatus.SIGNED, "northern", "siberia")
    assert contract.rate_usd_per_kwh == Decimal("0.04275")
    assert contract.machine_count == 100
    hold = Reservation.objects.get()
    assert (hold.kind, hold.expires_at, hold.reference) == ("firm", None, f"contract:{contract.pk}")
    assert contract.reservation == hold
    assert Quote.objects.get().status == "contracted"
    again = staff_api.post("/api/v1/contracts/", {"quote": quote["id"]}, format="json")
    assert again.status_code == 409


def test_only_staff_make_contracts(quote, tenant_api):
    accept(tenant_api, quote)
    assert tenant_api.post("/api/v1/contracts/", {"quote": quote["id"]}, format="json").status_code == 403


def test_an_expired_hold_whose_capacity_went_cannot_become_a_contract(quote, tenant_api, staff_api, two_sites):
    accept(tenant_api, quote)
    later = timezone.now() + dt.timedelta(hours=73)
    ledger.reserve(
        two_sites["siberia"],
        it_kw=Decimal("19800"),
        starts_on=TODAY,
        ends_on=None,
        kind="firm",
        reference="x",
        now=later,
    )
    with time_machine.travel(later, tick=False):
        response = staff_api.post("/api/v1/contracts/", {"quote": quote["id"]}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_capacity"
    assert not Contract.objects.exists()
    assert Quote.objects.get().status == "accepted"


def test_the_site_list_is_public_with_todays_figures(anon, two_sites):
    second_phase = TODAY + dt.timedelta(days=200)
    PhaseFactory(site=two_sites["texas"], name="Phase 2", energized_on=second_phase, mw=Decimal("40"))
    body = anon.get("/api/v1/sites/").json()
    texas = next(s for s in body["results"] if s["slug"] == "texas")
    assert texas == {
        "slug": "texas",
        "name": texas["name"],
        "country": "US",
        "region": "Texas",
        "cooling": "air",
        "energized_mw_today": "10.000",
        "available_kw_today": "10000.000",
        "list_rate_usd_per_kwh": "0.05500",
        "next_phase": {"energized_on": second_phase.isoformat(), "mw": "40.000"},
    }


def test_a_site_without_a_price_list_is_listed_but_never_quoted(anon, two_sites):
    unpriced = SiteFactory(slug="unpriced")
    PhaseFactory(site=unpriced, mw=Decimal("100"))
    listed = {s["slug"]: s for s in anon.get("/api/v1/sites/").json()["results"]}
    assert listed["unpriced"]["list_rate_usd_per_kwh"] is None
    assert "unpriced" not in [o["site"] for o in ask(anon, it_kw="10").json()["options"]]


def test_the_catalog_is_public(anon):
    body = anon.get("/api/v1/machine-models/").json()
    assert body["count"] == 8
    s19xp = anon.get("/api/v1/machine-models/antminer-s19-xp/").json()
    assert (s19xp["nominal_hashrate_ths"], s19xp["nameplate_power_w"]) == ("140.00", 3010)
    assert anon.get("/api/v1/machine-models/?vendor=microbt").json()["count"] == 2
