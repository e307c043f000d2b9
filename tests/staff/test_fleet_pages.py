"""Staff's pages of the fleet after go-live: per site and per tenant, the power view, the
floor map, and the rack elevation coloured by the latest poll."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.staff import svg
from tests.factories import FeedFactory, PhaseFactory, RackFactory
from tests.staff.conftest import count_queries, svg_root
from tests.telemetry.views_data import another_floor, circuit_windows, live, write_day

pytestmark = pytest.mark.django_db
NS = {"svg": "http://www.w3.org/2000/svg"}


def recent() -> dt.datetime:
    now = timezone.now()
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)


@pytest.fixture
def fleet(floor):
    """Two live S19s on circuit 0 polled for an hour: #0 at 100 % and 3,250 W, #1 at 50 %,
    3,800 W and 92 °C. Circuit 0 (6,500 W booked) reads 7,050 W."""
    machines = live(floor, 2)
    end = recent()

    def fields(m, i):
        return {"hashrate_ths": 47.5, "power_w": 3800.0, "chip_temp_max_c": 92.0} if m == machines[1] else {}

    write_day(machines, end=end, count=12, fields=fields)
    circuit_windows(floor["circuits"][0], floor["site"].pk, [7000.0, 7050.0], end=end)
    PhaseFactory(site=floor["site"], mw=Decimal("0.008"), energized_on=dt.date(2021, 1, 1))
    return {**floor, "machines": machines, "end": end}


def test_the_fleet_page_shows_each_site_and_tenant(staff_client, fleet):
    html = staff_client.get(reverse("staff:fleet")).content.decode()
    assert fleet["site"].name in html
    assert fleet["contract"].tenant.name in html
    assert "142.5" in html  # 95 + 47.5 TH/s
    site_page = staff_client.get(reverse("staff:fleet-of", args=["site", fleet["site"].slug])).content.decode()
    assert "142.5 TH/s" in site_page
    assert 'id="chart-24h"' in site_page
    tenant = staff_client.get(reverse("staff:fleet-of", args=["tenant", fleet["contract"].tenant.slug]))
    assert "142.5 TH/s" in tenant.content.decode()
    assert staff_client.get(reverse("staff:fleet-of", args=["rack", "x"])).status_code == 404
    assert staff_client.get(reverse("staff:fleet-of", args=["site", "atlantis"])).status_code == 404


def test_the_power_view_lists_a_circuit_drawing_more_than_booked_and_a_site_near_budget(staff_client, fleet):
    html = staff_client.get(reverse("staff:power")).content.decode()
    circuit = fleet["circuits"][0]
    assert f'data-circuit="{circuit.pk}"' in html
    assert f'data-circuit="{fleet["circuits"][1].pk}"' not in html
    assert "over booked" in html
    assert "7,050" in html
    # 7,050 W × PUE 1.00 of 8 kW: 88 %, under the 90 % threshold.
    assert "88.1 %" in html
    assert "near budget</span>" not in html


def test_the_power_view_lists_feeds_in_use_and_counts_the_idle_ones(staff_client, fleet):
    idle = FeedFactory(site=fleet["site"], name="IDLE-FEED")
    html = staff_client.get(reverse("staff:power")).content.decode()
    assert str(fleet["circuits"][0].feed) in html
    assert idle.name not in html
    assert 'id="idle-feeds">1 feed with nothing booked or metered not listed.' in html


def test_the_power_view_costs_the_same_queries_for_one_site_and_three(staff_client, fleet):
    few = count_queries(staff_client, reverse("staff:power"))
    for _ in range(2):
        write_day(live(another_floor(), 3), end=fleet["end"], count=2)
    assert count_queries(staff_client, reverse("staff:power")) == few


def rack_cells(html: str) -> dict[int, str]:
    root = svg_root(html, "floor-map")
    return {int(r.get("data-rack")): r.get("fill") for r in root.iterfind(".//svg:rect[@class='rack']", NS)}


def test_the_floor_map_colours_each_rack_by_its_latest_poll(staff_client, fleet):
    empty = RackFactory(site=fleet["site"], feed=fleet["rack"].feed, row="B1", name="B1-R01")
    url = reverse("staff:floor", args=[fleet["site"].slug])
    cells = rack_cells(staff_client.get(url).content.decode())
    rack = fleet["rack"].pk
    assert cells[rack] == svg.rack_fill(100 * 7050 / 6500, "power")
    assert cells[empty.pk] == "url(#unmeasured)"
    assert rack_cells(staff_client.get(url, {"measure": "hashrate"}).content.decode())[rack] == svg.rack_fill(
        75.0, "hashrate"
    )
    html = staff_client.get(url, {"measure": "temperature"}).content.decode()
    assert rack_cells(html)[rack] == svg.heat_colour(92.0, 40, 95)
    assert reverse("staff:rack", args=[rack]) in html
    assert "2/32 slots used" in html


def test_the_floor_map_costs_the_same_queries_for_2_racks_and_12(staff_client, fleet):
    url = reverse("staff:floor", args=[fleet["site"].slug])
    few = count_queries(staff_client, url)
    for n in range(10):
        RackFactory(site=fleet["site"], feed=fleet["rack"].feed, row=f"C{n % 2 + 1}", name=f"C-R{n:02d}")
    assert count_queries(staff_client, url) == few
    assert count_queries(staff_client, reverse("staff:floor-first")) == few


def test_an_unknown_site_has_no_floor_map(staff_client, fleet):
    assert staff_client.get(reverse("staff:floor", args=["atlantis"])).status_code == 404


def test_the_rack_elevation_colours_by_the_latest_window(staff_client, fleet):
    url = reverse("staff:rack", args=[fleet["rack"].pk])
    html = staff_client.get(url, {"colour": "temperature"}).content.decode()
    root = svg_root(html, "rack-elevation")
    fills = {int(a.get("data-machine")): (a.find("svg:rect", NS).get("fill"), a.find("svg:title", NS).text)
             for a in root.iterfind(".//svg:a", NS)}  # fmt: skip
    hot = fleet["machines"][1]
    assert fills[hot.pk][0] == svg.heat_colour(92.0, 40, 95)
    assert "latest poll" in fills[hot.pk][1]
    assert "3,800 W measured" in fills[hot.pk][1]
    power = svg_root(staff_client.get(url, {"colour": "power"}).content.decode(), "rack-elevation")
    rects = {int(a.get("data-machine")): a.find("svg:rect", NS).get("fill") for a in power.iterfind(".//svg:a", NS)}
    assert rects[hot.pk] == svg.rack_fill(100 * 3800 / 3250, "power")
    hashing = svg_root(staff_client.get(url, {"colour": "hashrate"}).content.decode(), "rack-elevation")
    rects = {int(a.get("data-machine")): a.find("svg:rect", NS).get("fill") for a in hashing.iterfind(".//svg:a", NS)}
    assert rects[hot.pk] == svg.rack_fill(50.0, "hashrate")
