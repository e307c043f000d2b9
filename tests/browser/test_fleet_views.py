"""The fleet after go-live in a real browser: the tenant's dashboard and a machine page
with a day of windows and a month of hours, and the staff's floor map and power view."""

import datetime as dt
import math

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import PASSWORD, MembershipFactory, RackFactory, StaffFactory
from tests.telemetry.views_data import circuit_windows, live, roll_hours, write_day, write_hours

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def world(floor):
    """Twelve live S19s on the floor's rack with a day of windows: hashrate that breathes
    with the day, one machine that lost a board at noon, one offline for the last two hours,
    an hour nobody polled; a month of hours; a few empty racks in two halls."""
    site = floor["site"]
    machines = live(floor, 8, 0) + live(floor, 4, 1)
    now = timezone.now()
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)

    def state(m, i):
        return "unreachable" if m == machines[11] and i >= 264 else "hashing"

    def fields(m, i):
        ths = 95.0 * (0.97 + 0.03 * math.sin(i / 288 * 2 * math.pi + m.pk))
        temp = 68 + 6 * math.sin(i / 288 * 2 * math.pi)
        if m == machines[3] and i >= 150:
            ths, temp = ths * 2 / 3, temp + 12
        return {"hashrate_ths": ths, "chip_temp_max_c": temp, "power_w": 3100 + 150 * math.sin(i / 40 + m.pk)}

    write_day(machines, end=end, state=state, fields=fields, unknown=set(range(200, 212)))

    def hourly(m, i):
        return None if 300 <= i < 310 else 95.0 * (0.95 + 0.05 * math.sin(i / 24))

    roll_hours(machines)
    write_hours(machines, end=end - dt.timedelta(hours=25), hours=29 * 24, hashrate_ths=hourly)
    circuit_windows(floor["circuits"][0], site.pk, [27_500.0, 27_900.0], end=end)
    for n, row in enumerate(["A1", "A1", "B1", "B1", "A2", "B2"]):
        RackFactory(site=site, feed=floor["rack"].feed, row=row, name=f"{row}-R{n + 2:02d}")
    floor["rack"].row, floor["rack"].name = "A1", "A1-R01"
    floor["rack"].save()
    user = MembershipFactory(tenant=floor["contract"].tenant).user
    return {**floor, "machines": machines, "user": user, "staff": StaffFactory(username="ops")}


def test_a_tenant_sees_the_fleet_and_a_machine_and_staff_the_floor_map(world, live_server, page, shot):
    page.set_default_timeout(20_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("input[name=username]", world["user"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#hashrate-now")).to_contain_text("TH/s")
    expect(page.locator("#uptime-month")).to_contain_text("unknown")
    expect(page.locator("#chart-24h svg")).to_be_visible()
    shot("tenant-dashboard")

    page.goto(live_server.url + reverse("portal:machines") + "?sort=hashrate")
    expect(page.locator("table tbody tr").first).to_contain_text(world["machines"][11].serial)
    shot("machines-by-hashrate")

    page.goto(live_server.url + reverse("portal:machine", args=[world["machines"][3].pk]))
    expect(page.locator("#chart-hashrate svg path.line").first).to_be_visible()
    shot("machine-24h")
    page.click("#spans a:text('30d')")
    expect(page.locator("#spans a.active")).to_have_text("30d")
    shot("machine-30d")

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/?next=/staff/floor/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    expect(page.locator("#floor-map svg")).to_be_visible()
    expect(page.locator("#floor-map svg rect.rack")).to_have_count(7)
    shot("floor-map-power")
    page.click(".toggle a:text('hottest chip °C')")
    shot("floor-map-temperature")
    page.locator("#floor-map svg a").first.click()
    expect(page).to_have_url(f"{live_server.url}{reverse('staff:rack', args=[world['rack'].pk])}")
    page.goto(live_server.url + reverse("staff:rack", args=[world["rack"].pk]) + "?colour=hashrate")
    shot("rack-by-hashrate")
    page.goto(live_server.url + reverse("staff:power"))
    expect(page.locator("#power-circuits")).to_contain_text("over booked")
    shot("power-view")
