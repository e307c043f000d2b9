"""Alerts in a real browser: staff acknowledge one in the queue and follow a machine to its
self-test evidence; the tenant sees the count on the dashboard and their alerts only."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from hosting.models import Membership, SelfTestRun
from hosting.telemetry.models import Alert, TelemetryPolicy
from tests.factories import PASSWORD, StaffFactory, UserFactory
from tests.telemetry.alert_world import INTERVAL_S, at, live, open_alerts, other_tenants_machine, write

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def world(floor):
    TelemetryPolicy.objects.create(site=floor["site"], poll_interval_s=INTERVAL_S)
    ours = live(floor, 2)
    theirs = other_tenants_machine(floor)
    write([theirs], at(0), chip_temp_max_c=99.0)
    open_alerts(floor, ours)  # a stopped fan on each of ours
    SelfTestRun.objects.create(machine=ours[0], status=SelfTestRun.Status.PASSED, finished_at=timezone.now())
    tenant_user = UserFactory(username="miner")
    Membership.objects.create(tenant=ours[0].tenant, user=tenant_user)
    return {"ours": ours, "theirs": theirs, "staff": StaffFactory(username="ops")}


def log_in(page, live_server, username, path):
    page.goto(f"{live_server.url}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")


def test_staff_acknowledge_an_alert_and_reach_the_evidence(world, live_server, page, shot):
    page.set_default_timeout(20_000)
    log_in(page, live_server, "ops", "/admin/login/?next=/staff/alerts/")
    expect(page).to_have_url(f"{live_server.url}/staff/alerts/")
    rows = page.locator("tr.alert")
    expect(rows).to_have_count(3)
    shot("staff-alert-queue")
    first = page.locator(f"tr.alert:has-text('{world['ours'][0].serial}')")
    first.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("body")).to_contain_text("Acknowledged: Fans stopped")
    expect(page.locator(f"tr.alert:has-text('{world['ours'][0].serial}')")).to_contain_text("ops,")
    assert Alert.objects.filter(acknowledged_at__isnull=False).count() == 1
    page.locator(f"tr.alert:has-text('{world['ours'][0].serial}') a.evidence").click()
    expect(page).to_have_url(re.compile(r"/admin/hosting/selftestrun/\d+/change/"))
    shot("staff-alert-evidence")


def test_a_tenant_sees_the_count_and_their_own_alerts(world, live_server, page, shot):
    page.set_default_timeout(20_000)
    log_in(page, live_server, "miner", reverse("portal:login"))
    expect(page.locator("#open-alerts .figure")).to_have_text("2")
    page.locator("#open-alerts").click()
    expect(page).to_have_url(f"{live_server.url}/portal/alerts/")
    expect(page.locator("tr.alert")).to_have_count(2)
    expect(page.locator("body")).not_to_contain_text(world["theirs"].serial)
    shot("portal-alerts")
    page.locator(f"a:has-text('{world['ours'][0].serial}')").click()
    expect(page).to_have_url(f"{live_server.url}/portal/machines/{world['ours'][0].pk}/")
