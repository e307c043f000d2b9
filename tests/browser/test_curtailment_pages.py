"""Curtailment in a real browser: staff open the sites' page and an event (its timeline
chart, the non-responders), record an event with a wrong deadline and then a right one; the
tenant opens its curtailment page and its contract's events."""

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.curtailment.pages_world import curtailed_days, event_world
from tests.factories import PASSWORD, StaffFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def world(floor):
    from hosting.curtailment import reports

    world = event_world(floor, machines=6)
    first = reports.local_month(world["site"], timezone.now())[0]
    for i, m in enumerate(world["mine"]):
        curtailed_days(m, first, [1 + i])
    StaffFactory(username="ops")
    return world


def test_staff_see_the_event_and_the_tenant_its_own_curtailment(world, live_server, page, shot):
    page.set_default_timeout(20_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/staff/curtailment/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    expect(page.locator("#curtailment-sites")).to_contain_text("above strike")
    shot("staff-sites")

    page.select_option("#id_site", world["site"].slug)
    page.fill("#id_target_mw", "2")
    page.fill("#id_deadline_at", "2020-01-01T00:00")
    page.click("#event-form button[type=submit]")
    expect(page.locator('.field-error[data-field="deadline_at"]')).to_contain_text("The deadline")
    shot("staff-event-form-refused")

    page.goto(live_server.url + reverse("staff:curtailment-event", args=[world["event"].pk]))
    chart = page.locator("#event-chart svg")
    expect(chart).to_be_visible()
    shot("staff-event")
    expect(chart.locator("path.achieved")).to_have_count(1)
    expect(chart.locator("path.target")).to_have_count(1)
    expect(chart.locator("text", has_text="0.005")).to_have_count(1)  # MW ticks with their decimals
    expect(page.locator("#not-responding-table tr.flagged")).to_have_count(2)
    expect(page.locator("#not-responding-table")).to_contain_text("timeout after 5 s")

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("input[name=username]", world["user"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("nav a:text('Curtailment')")
    expect(page.locator(".card.hours")).to_contain_text("6.00 h")
    expect(page.locator(".card.effect")).to_contain_text("Not billed")
    shot("tenant-curtailment")
    page.click(f"a[href='{reverse('portal:curtailment-contract', args=[world['contract'].pk])}']")
    expect(page.locator("#contract-events")).to_contain_text("Price")
    expect(page.locator("body")).not_to_contain_text(world["theirs"].serial)
    shot("tenant-contract-curtailment")
