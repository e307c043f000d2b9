"""The portal's pages: what a tenant sees, what it may do, and what it never sees."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from hosting.commissioning import checks, pipeline, runs
from hosting.models import ApiToken, Quote, SelfTestRun, SitePricing
from hosting.readings import Board, Reading
from tests.factories import (
    ContractFactory,
    MachineFactory,
    MembershipFactory,
    StaffFactory,
    TenantFactory,
    UserFactory,
    racked,
)

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"portal:{name}", args=args)


# --- logging in and out ---------------------------------------------------------------------


def test_pages_need_a_login(client):
    response = client.get(url("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(url("login"))


def test_a_tenant_logs_in_sees_the_dashboard_and_logs_out(client, tenant_user, password):
    response = client.post(url("login"), {"username": tenant_user.username, "password": password}, follow=True)
    assert response.redirect_chain[-1][0] == url("dashboard")
    assert "Machines by status" in response.content.decode()
    client.post(url("logout"))
    assert client.get(url("dashboard")).status_code == 302


def test_a_get_of_the_logout_address_asks_with_a_form_that_logs_out(tenant_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(tenant_user)
    asked = browser.get(url("logout"))  # a bookmark, a typed address: not a bare 405
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Log out of Haven?" in page
    assert f'<form method="post" action="{url("logout")}" id="logout-confirm">' in page
    assert browser.get(url("dashboard")).status_code == 200  # asking did not log out
    assert browser.post(url("logout")).status_code == 403  # logging out is a POST with the CSRF token
    token = asked.cookies["csrftoken"].value if "csrftoken" in asked.cookies else browser.cookies["csrftoken"].value
    assert browser.post(url("logout"), {"csrfmiddlewaretoken": token}).status_code == 302
    assert browser.get(url("dashboard")).status_code == 302


def test_login_attempts_are_throttled(client, tenant_user, password):
    wrong = {"username": tenant_user.username, "password": "wrong"}
    codes = [client.post(url("login"), wrong).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # the fifth failure locks the account from this address
    locked = client.post(url("login"), {"username": tenant_user.username, "password": password})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()


def test_forms_need_the_csrf_token(tenant_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(tenant_user)
    assert browser.post(url("tokens"), {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_a_user_of_no_tenant_is_told_so_and_staff_go_to_their_dashboards(client):
    client.force_login(UserFactory())
    assert client.get(url("dashboard")).status_code == 403
    client.force_login(StaffFactory())
    assert client.get(url("dashboard"))["Location"] == reverse("staff:home")


# --- one tenant never sees another's ----------------------------------------------------------------


@pytest.fixture
def theirs():
    """Another tenant's contract, machine, quote, batch and token."""
    other = TenantFactory()
    contract = ContractFactory(tenant=other)
    machine = MachineFactory(contract=contract)
    user = MembershipFactory(tenant=other).user
    quote = Quote.objects.create(
        requester=user, contact_email="x@example.com", it_kw=Decimal(1), start_on=dt.date.today(),
        term_months=1, status="waitlisted", waitlisted_at=timezone.now(), tenant=other,
    )  # fmt: skip
    token, _ = ApiToken.issue(user, "theirs")
    batch = runs.start_batch([], label="theirs")
    batch.tenant = other
    batch.save()
    return {"contract": contract, "machine": machine, "quote": quote, "token": token, "batch": batch}


def test_another_tenants_objects_are_not_found(portal, theirs):
    assert portal.get(url("machine", theirs["machine"].pk)).status_code == 404
    assert portal.get(url("contract", theirs["contract"].pk)).status_code == 404
    assert portal.get(url("quote", theirs["quote"].pk)).status_code == 404
    assert portal.post(url("quote-accept", theirs["quote"].pk), {"site": "x"}).status_code == 404
    assert portal.get(url("batch-progress", theirs["batch"].pk)).status_code == 404
    assert portal.post(url("token-revoke", theirs["token"].pk)).status_code == 404
    listing = portal.get(url("machines")).content.decode()
    assert theirs["machine"].serial not in listing
    assert str(theirs["quote"].pk)[:8] not in portal.get(url("quotes")).content.decode()


# --- machines and their evidence ----------------------------------------------------------------------


def test_the_machines_table_filters_and_searches(portal, floor):
    machines = racked(floor, 3)
    runs.request(machines[:1])
    page = portal.get(url("machines") + "?status=testing").content.decode()
    assert machines[0].serial in page
    assert machines[1].serial not in page
    assert machines[2].serial in portal.get(url("machines") + f"?q={machines[2].serial[-4:]}").content.decode()
    assert machines[2].serial in portal.get(url("machines") + f"?q={machines[2].mac[-5:].upper()}").content.decode()


POWER_MEASURED = {
    "source": "pdu_outlet",
    "accepted_on_nameplate": False,
    "power_w": 3301.0,
    "circuit_usable_w": 54628,
    "psu_efficiency_pct": 93.5,
    "serial": None,
}


def test_a_machine_page_shows_every_self_test_with_its_evidence(portal, floor):
    (machine,) = racked(floor, 1)
    (run,) = runs.request([machine])
    runs.dispatch(floor["site"].pk)
    token, _ = runs.claim([run.pk])
    boards = (Board(0, 31.6, 76, 71.0, 61.0), Board(1, None, None, None, None, False))
    reading = Reading(timezone.now(), True, 63.2, boards, (5400, 5400, 0, 5400), outlet_w=3301)
    outcomes = [
        checks.Outcome("hashing", False, ("1 of 3 hashboards missing",), {"average_hashrate_ths": 63.2}),
        checks.Outcome("thermal", False, ("only 3 of 4 fans spin at 1,000 RPM or more",), {"fans_spinning_min": 3}),
        # what the pipeline records today, and a key it may add tomorrow
        checks.Outcome("power", True, (), POWER_MEASURED),
    ]
    runs.finish([pipeline.Result(run.pk, outcomes, [reading])], token)
    page = portal.get(url("machine", machine.pk)).content.decode()
    for text in (
        "1 of 3 hashboards missing",
        "only 3 of 4 fans",
        "Average hashrate: <strong>63.2 TH/s</strong>",
        "Fans spinning (fewest): <strong>3</strong>",
        "Measured by: <strong>the PDU outlet</strong>",
        "Accepted on nameplate (no reading): <strong>no</strong>",
        "Draw: <strong>3,301 W</strong>",
        "Circuit usable (80 % rule): <strong>54,628 W</strong>",
        "Psu efficiency: <strong>93.5 %</strong>",  # a key no label knows yet: still words and a unit
        "Serial: <strong>—</strong>",
        "board 0: 31.60 · 76 chips · 71 · 61",
        'board 1: <span class="errors">missing</span>',
        '3,301 <span class="muted small">PDU</span>',
        "of 3,250",
        "5400, 5400, 0, 5400",
    ):
        assert text in page, text
    measured = page[page.index('class="checks"') : page.index("</table>", page.index('class="checks"'))]
    for raw in ("accepted_on_nameplate", "average_hashrate_ths", "pdu_outlet", "False", "None"):
        assert raw not in measured, raw
    assert "self-test #" in page  # the history says why it moved


def test_list_pages_cost_the_same_queries_for_few_rows_and_many(portal, floor, signed, tenant_user):
    def queries(name):
        with CaptureQueriesContext(connection) as captured:
            assert portal.get(url(name)).status_code == 200
        return len(captured)

    racked(floor, 2)
    few = {name: queries(name) for name in ("dashboard", "machines", "quotes", "tokens")}
    runs.start_batch(racked(floor, 12, circuit=1), label="more")
    MachineFactory.create_batch(5, contract=signed)
    for _ in range(5):
        ApiToken.issue(tenant_user, "t")
    many = {name: queries(name) for name in few}
    assert many == few


# --- quotes and tokens ------------------------------------------------------------------------------------


def test_a_tenant_asks_for_a_quote_and_holds_an_option(portal, signed):
    SitePricing.objects.create(site=signed.site, list_rate_usd_per_kwh=Decimal("0.05"))
    start = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    response = portal.post(
        url("quotes"), {"machine_model": "antminer-s19", "quantity": 10, "start_on": start, "term_months": 12}
    )
    quote = Quote.objects.get()
    assert response["Location"] == url("quote", quote.pk)
    assert quote.it_kw == Decimal(10 * quote.machine_model.nameplate_power_w) / 1000
    page = portal.get(response["Location"]).content.decode()
    assert signed.site.slug in page
    held = portal.post(url("quote-accept", quote.pk), {"site": signed.site.slug}, follow=True)
    assert "Capacity held" in held.content.decode()
    quote.refresh_from_db()
    assert quote.status == "accepted"


def test_quote_form_errors_are_shown(portal, signed):
    response = portal.post(url("quotes"), {"quantity": 10, "start_on": "2020-01-01", "term_months": 0})
    page = response.content.decode()
    assert "The start date 2020-01-01 is in the past" in page
    assert not Quote.objects.exists()


def test_the_quote_form_has_the_apis_limits(portal, signed):
    """The same rules as POST /api/v1/quotes/ (hosting.quotes): a start within ten years and
    at most 5 GW asked for, however it is asked."""
    far = (timezone.localdate() + dt.timedelta(days=366 * 11)).isoformat()
    page = portal.post(
        url("quotes"), {"machine_model": "antminer-s19", "quantity": 10, "start_on": far, "term_months": 12}
    ).content.decode()
    assert "more than 10 years away" in page
    soon = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    page = portal.post(  # 2,000,000 S19s at 3,250 W = 6.5 GW
        url("quotes"), {"machine_model": "antminer-s19", "quantity": 2_000_000, "start_on": soon, "term_months": 12}
    ).content.decode()
    assert "2,000,000 machines exceed 5,000,000 kW." in page
    assert not Quote.objects.exists()


def test_tokens_are_shown_once_and_can_be_revoked(portal, tenant_user):
    page = portal.post(url("tokens"), {"name": "fleet"}, follow=True).content.decode()
    token = ApiToken.objects.get(user=tenant_user)
    assert f"Your new token: {token.prefix}" in page
    portal.post(url("token-revoke", token.pk))
    token.refresh_from_db()
    assert token.revoked_at is not None


# --- the dashboard stays live while machines are commissioned --------------------------------------------


def test_the_dashboard_refreshes_its_cards_and_events_with_the_progress_bar(portal, floor):
    machines = racked(floor, 2)
    batch = runs.start_batch(machines, label="racked today")
    page = portal.get(url("dashboard")).content.decode()
    live = page[page.index('<div id="dashboard-live"') :]
    polled = f'<div id="dashboard-live" data-live="true" hx-get="{url("dashboard")}" hx-trigger="every 2s"'
    assert live.startswith(polled)
    for part in ('id="status-cards"', f'id="batch-{batch.pk}"', 'id="events"'):
        assert part in live, part  # inside the region that refreshes
    assert f'hx-get="{url("batch-progress", batch.pk)}"' not in page  # one poll for the page, not one per bar

    (run_a, run_b) = SelfTestRun.objects.filter(batch=batch)
    runs.dispatch(floor["site"].pk)
    token, _ = runs.claim([run_a.pk, run_b.pk])
    runs.finish([pipeline.Result(run_a.pk, [checks.Outcome("thermal", True)], [])], token)
    partial = portal.get(url("dashboard"), headers={"HX-Request": "true"})
    html = partial.content.decode()
    assert "<html" not in html  # the live part alone
    assert partial.context["live"] is True
    cards = {value: count for value, _, count in partial.context["statuses"]}
    assert (cards["live"], cards["testing"]) == (1, 1)
    assert 'data-status="live" href' in html
    assert "self-test #" in html  # the new event is there too

    runs.finish([pipeline.Result(run_b.pk, [checks.Outcome("thermal", False, ("hot",))], [])], token)
    done = portal.get(url("dashboard"), headers={"HX-Request": "true"}).content.decode()
    assert 'data-live="false"' in done
    assert "hx-trigger" not in done  # every batch done: polling stops


# --- one pager, the API's filters ------------------------------------------------------------------------


def test_portal_and_staff_lists_use_the_one_pager(portal, floor, signed):
    from tests.factories import StaffFactory as Staff

    MachineFactory.create_batch(51, contract=signed)
    response = portal.get(url("machines"))
    assert "_pager.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert '<nav class="pager" aria-label="pages">' in page
    assert "page 1 of 2 · 51 in all" in page
    staff = Client()
    staff.force_login(Staff())
    racks = staff.get(reverse("staff:racks"))
    assert "_pager.html" in [t.name for t in racks.templates]
    assert not any(t.name in ("portal/_pager.html", "staff/_pager.html") for t in response.templates + racks.templates)


def test_the_machines_page_filters_with_the_apis_filter_set(portal, floor):
    from hosting.api.filters import MachineFilter

    machines = racked(floor, 3)
    runs.request(machines[:1])
    response = portal.get(url("machines"), {"status": "testing", "model": "antminer-s19", "site": floor["site"].slug})
    assert isinstance(response.context["filters"], MachineFilter)
    assert [m.pk for m in response.context["page"]] == [machines[0].pk]
    page = response.content.decode()
    assert '<option value="testing" selected>Testing</option>' in page  # the page's selects, as before
    assert '<option value="">any model</option>' in page
    assert list(portal.get(url("machines"), {"status": ""}).context["page"]) == list(
        portal.get(url("machines")).context["page"]
    )
    api = client_for_user(machines[0].tenant)
    found = api.get("/api/v1/machines/", {"q": machines[2].mac[-5:].upper()}).json()["results"]
    assert [m["serial"] for m in found] == [machines[2].serial]  # the API searches the same way


def client_for_user(tenant):
    from tests.api.conftest import client_for

    return client_for(MembershipFactory(tenant=tenant).user)


# --- figures people read -----------------------------------------------------------------------------------


def test_quote_pages_show_site_names_and_money_with_thousands(portal, signed):
    SitePricing.objects.create(site=signed.site, list_rate_usd_per_kwh=Decimal("0.05"), setup_usd_per_machine=40)
    start = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    portal.post(url("quotes"), {"machine_model": "antminer-s19", "quantity": 100, "start_on": start, "term_months": 6})
    quote = Quote.objects.get()
    page = portal.get(url("quote", quote.pk)).content.decode()
    option = page[page.index('<tr class="option">') :]
    assert f"<td>{signed.site.name}</td>" in option
    assert f"<td>{signed.site.slug}</td>" not in option
    assert "11,862.50" in option  # 325 kW × 730 h × 0.05 USD
    assert "4,000.00" in option  # setup: 100 × 40 USD
    held = portal.post(url("quote-accept", quote.pk), {"site": signed.site.slug}, follow=True).content.decode()
    assert f"Capacity held at {signed.site.name}" in held
    assert f"Held at <strong>{signed.site.name}</strong>" in held


def test_the_contract_card_says_what_each_machine_number_is(portal, signed):
    MachineFactory.create_batch(3, contract=signed)
    page = portal.get(url("contract", signed.pk)).content.decode()
    card = page[page.index('id="machines-card"') :]
    card = card[: card.index("</div></div>")]
    assert ">3</div>" in card
    assert f"registered so far · the contract is sized for {signed.machine_count}" in card
