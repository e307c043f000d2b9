"""Staff plan with pictures: the capacity forecast and a rack elevation, in a real browser."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from capacity import ledger
from hosting import machine_requests, services
from hosting.commissioning import checks, pipeline, runs
from hosting.lifecycle import MachineStatus
from hosting.models import Quote
from hosting.readings import Board, Reading
from tests.factories import PASSWORD, PhaseFactory, StaffFactory, racked

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def world(floor):
    site = floor["site"]
    today = timezone.localdate()
    PhaseFactory(site=site, name="Phase 1", energized_on=today - dt.timedelta(days=300), mw=Decimal("125"))
    PhaseFactory(site=site, name="Phase 2", energized_on=today + dt.timedelta(days=180), mw=Decimal("375"))
    ledger.reserve(site, it_kw=Decimal("60000"), starts_on=today, ends_on=None, kind="firm", reference="c:1")
    machines = racked(floor, 6)
    (*done, pending) = runs.request(machines[:3])
    runs.dispatch(site.pk)
    token, claimed = runs.claim([r.pk for r in done])
    results = []
    for run, chip_c in zip(claimed, (68.0, 101.0), strict=True):
        board = Board(0, 36.6, 114, chip_c, 60.0)
        passed = chip_c < 95
        outcome = checks.Outcome("thermal", passed, () if passed else ("chips reached 101 °C",))
        results.append(pipeline.Result(run.pk, [outcome], [Reading(timezone.now(), True, 110.0, (board,))]))
    runs.finish(results, token)
    # A waitlist with one request that dwarfs everything (4 GW of IT), and an ordinary one.
    for it_kw, email in ((Decimal("4000000"), "huge@example.com"), (Decimal("8000"), "patient@example.com")):
        Quote.objects.create(contact_email=email, it_kw=it_kw, start_on=today + dt.timedelta(days=60), term_months=12,
                             status="waitlisted", waitlisted_at=timezone.now(), site=site)  # fmt: skip
    # A tenant asks for an RMA of the machine that failed hot.
    failed = next(m for m in machines if m.self_tests.filter(status="failed").exists())
    machine_requests.file(failed, "rma", note="fan 3 rattles")
    services.transition(machines[4], MachineStatus.RECEIVED, reason="unracked for a cable swap")
    return {"site": site, "rack": floor["rack"], "staff": StaffFactory(username="ops"), "pending": pending,
            "failed": failed}  # fmt: skip


def test_staff_open_the_forecast_and_a_rack_elevation(world, live_server, page, shot):
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/?next=/staff/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/staff/")
    shot("staff-home")

    page.goto(live_server.url + reverse("staff:site_forecast", args=[world["site"].slug]))
    chart = page.locator("svg").first
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 400
    expect(page.locator("body")).to_contain_text("500")  # 125 + 375 MW once phase 2 is energized
    expect(page.locator("svg .waitlist-clipped")).to_contain_text("off the chart")
    shot("forecast-site")
    page.goto(live_server.url + reverse("staff:forecast"))
    expect(page.locator("svg").first).to_be_visible()
    shot("forecast-all-sites")

    page.goto(live_server.url + reverse("staff:rack", args=[world["rack"].pk]))
    slots = page.locator("svg a")
    expect(slots).to_have_count(5)  # every occupied slot links to its machine (one went back to intake)
    shot("rack-by-status")
    page.goto(live_server.url + reverse("staff:rack", args=[world["rack"].pk]) + "?colour=temperature")
    expect(page.locator("svg").first).to_be_visible()
    shot("rack-by-temperature")
    page.locator("svg a").first.click()
    expect(page).to_have_url(re.compile(r"/admin/hosting/machine/\d+/change/"))
    shot("machine-in-admin")

    # The waitlist: decline the 4 GW request, saying why.
    page.goto(live_server.url + reverse("staff:waitlist"))
    shot("waitlist")
    row = page.locator("#waitlist tr", has_text="huge@example.com")
    row.locator("input[name=reason]").fill("no site will ever be this big; please split it by site")
    row.locator("button").click()
    expect(page.locator(".messages")).to_contain_text("huge@example.com is told why")
    expect(page.locator("#waitlist")).not_to_contain_text("huge@example.com")
    shot("waitlist-declined")

    # Intake: the tenant's RMA request, done from the queue.
    page.goto(live_server.url + reverse("staff:intake"))
    expect(page.locator("#machine-requests")).to_contain_text("fan 3 rattles")
    shot("intake-with-requests")
    page.locator("#machine-requests tr.machine-request").first.locator("button", has_text="Do it").click()
    expect(page.locator(".messages")).to_contain_text("done (sent for repair (RMA))")
    world["failed"].refresh_from_db()
    assert world["failed"].status == MachineStatus.RMA
    shot("intake-request-done")
