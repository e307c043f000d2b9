"""Racks: a paginated, filterable list with occupancy, and each rack's elevation — slots
coloured by their machine's status or by its latest measured chip temperature, linked to
the machine in the admin — beside the load of the circuits feeding it."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from capacity import ledger
from hosting.lifecycle import MachineStatus
from hosting.staff import svg
from tests.factories import CircuitFactory, RackFactory, SiteFactory, SlotFactory, racked
from tests.staff.conftest import commission, count_queries, svg_root

pytestmark = pytest.mark.django_db
NS = {"svg": "http://www.w3.org/2000/svg"}


# --- the list ------------------------------------------------------------------------------


def rack_with(site, name, used, total):
    rack = RackFactory(site=site, name=name)
    circuit = CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100)
    for position in range(1, total + 1):
        slot = SlotFactory(rack=rack, circuit=circuit, position=position)
        if position <= used:
            ledger.assign_slot(slot, watts=3250, occupant=f"machine:{rack.pk}-{position}")
    return rack


def test_the_rack_list_shows_occupancy_and_filters_by_site_and_name(staff_client):
    texas, siberia = SiteFactory(slug="texas", name="Texas"), SiteFactory(slug="siberia", name="Siberia")
    rack_with(texas, "TX-A01", used=3, total=4)
    rack_with(siberia, "RU-B07", used=0, total=2)
    page = staff_client.get(reverse("staff:racks")).content.decode()
    assert "TX-A01" in page
    assert "RU-B07" in page
    assert "3 / 4" in page
    assert "0 / 2" in page
    only_siberia = staff_client.get(reverse("staff:racks"), {"site": "siberia"}).content.decode()
    assert "RU-B07" in only_siberia
    assert "TX-A01" not in only_siberia
    searched = staff_client.get(reverse("staff:racks"), {"q": "a01"}).content.decode()
    assert "TX-A01" in searched
    assert "RU-B07" not in searched


def test_the_rack_list_grows_by_pages(staff_client):
    site = SiteFactory()
    for n in range(51):
        RackFactory(site=site, name=f"R{n:03d}")
    first = staff_client.get(reverse("staff:racks"))
    assert len(first.context["page"].object_list) == 50
    second = staff_client.get(reverse("staff:racks"), {"page": 2, "site": site.slug})
    assert [r.name for r in second.context["page"].object_list] == ["R050"]
    assert "page=1" in second.content.decode()
    assert f"site={site.slug}" in second.content.decode()


def test_the_rack_list_costs_the_same_queries_for_few_racks_and_many(staff_client):
    site = SiteFactory(slug="texas")
    for n in range(2):
        rack_with(site, f"few-{n}", used=1, total=2)
    few = [count_queries(staff_client, reverse("staff:racks") + q) for q in ("", "?site=texas&q=e")]
    for n in range(20):
        rack_with(site, f"many-{n}", used=1, total=2)
    many = [count_queries(staff_client, reverse("staff:racks") + q) for q in ("", "?site=texas&q=e")]
    assert many == few


# --- the elevation ------------------------------------------------------------------------------


def slot_fills(html: str) -> dict[int, tuple[str, str, str]]:
    """Machine id → (fill, link, tooltip) of its slot in the elevation."""
    root = svg_root(html, "rack-elevation")
    out = {}
    for link in root.iterfind(".//svg:a", NS):
        rect = link.find("svg:rect", NS)
        out[int(link.get("data-machine"))] = (rect.get("fill"), link.get("href"), link.find("svg:title", NS).text)
    return out


@pytest.fixture
def commissioned(floor):
    """On the floor's rack: a live machine at 62 °C, a failed one at 101 °C, a cool live one
    at 40 °C, and one racked but never tested; the other 28 slots empty."""
    live, failed, cool = racked(floor, 3, circuit=0)
    commission(floor["site"].pk, [live, failed, cool], [62.0, 101.0, 40.0], [True, False, True])
    (untested,) = racked(floor, 1, circuit=1)
    return {"live": live, "failed": failed, "cool": cool, "untested": untested, **floor}


def test_slots_are_coloured_by_machine_status_and_link_to_the_machine(staff_client, commissioned):
    url = reverse("staff:rack", args=[commissioned["rack"].pk])
    html = staff_client.get(url).content.decode()
    fills = slot_fills(html)
    live, failed, untested = commissioned["live"], commissioned["failed"], commissioned["untested"]
    assert fills[live.pk][0] == svg.STATUS_COLOURS[MachineStatus.LIVE]
    assert fills[failed.pk][0] == svg.STATUS_COLOURS[MachineStatus.FAILED]
    assert fills[live.pk][0] != fills[failed.pk][0]
    assert fills[untested.pk][0] == svg.STATUS_COLOURS[MachineStatus.RACKED]
    assert fills[live.pk][1] == reverse("admin:hosting_machine_change", args=[live.pk])
    assert live.serial in fills[live.pk][2]
    assert "Antminer S19" in fills[live.pk][2]
    assert "live" in fills[live.pk][2]
    assert "62.0 °C" in fills[live.pk][2]
    assert "not measured" in fills[untested.pk][2]
    # Empty slots are grey and link nowhere; every slot is drawn, in position order
    root = svg_root(html, "rack-elevation")
    rects = root.findall(".//svg:rect[@class='slot']", NS)
    assert [int(r.get("data-position")) for r in rects] == sorted(s.position for s in commissioned["slots"])
    empty = [r for r in rects if r.get("data-status") == "empty"]
    assert len(empty) == 28
    assert {r.get("fill") for r in empty} == {svg.EMPTY}
    legend = " ".join(t.text or "" for t in root.iterfind(".//svg:g[@class='legend']/svg:text", NS))
    for status in ("racked", "testing", "live", "failed", "empty"):
        assert status in legend


def test_slots_are_coloured_by_temperature_cold_to_hot(staff_client, commissioned):
    url = reverse("staff:rack", args=[commissioned["rack"].pk])
    html = staff_client.get(url, {"colour": "temperature"}).content.decode()
    fills = slot_fills(html)
    hot_end, cold_end = svg.heat_colour(95, 40, 95), svg.heat_colour(40, 40, 95)
    assert fills[commissioned["failed"].pk][0] == hot_end == "#d7191c"  # 101 °C, past the S19's 95 °C limit
    assert fills[commissioned["cool"].pk][0] == cold_end
    assert fills[commissioned["live"].pk][0] == svg.heat_colour(62, 40, 95)
    assert fills[commissioned["untested"].pk][0] == "url(#unmeasured)"  # hatched
    root = svg_root(html, "rack-elevation")
    assert root.find(".//svg:pattern[@id='unmeasured']", NS) is not None
    assert root.find(".//svg:linearGradient[@id='heat']", NS) is not None
    legend = " ".join(t.text or "" for t in root.iterfind(".//svg:g[@class='legend']/svg:text", NS))
    assert "max chip °C" in legend
    assert "not measured" in legend
    assert "95+" in legend


def test_the_temperature_is_the_latest_runs_latest_sample(staff_client, commissioned):
    failed = commissioned["failed"]
    later = timezone.now() + dt.timedelta(minutes=5)
    commission(commissioned["site"].pk, [failed], [41.0], [True], now=later)  # re-tested after a fix
    html = staff_client.get(reverse("staff:rack", args=[commissioned["rack"].pk]), {"colour": "temperature"})
    fill, _, tooltip = slot_fills(html.content.decode())[failed.pk]
    assert fill == svg.heat_colour(41, 40, 95)
    assert "41.0 °C" in tooltip
    assert "live" in tooltip


def test_circuit_load_bars_show_allocated_against_usable_watts(staff_client, commissioned):
    html = staff_client.get(reverse("staff:rack", args=[commissioned["rack"].pk])).content.decode()
    root = svg_root(html, "load-bars")
    circuits = root.findall(".//svg:g[@class='circuit']", NS)
    assert len(circuits) == 2
    texts = [" ".join(t.text for t in g.iterfind("svg:text", NS)) for g in circuits]
    assert "9,750 / 54,628 W (18%)" in texts[0]  # three S19s
    assert "3,250 / 54,628 W (6%)" in texts[1]
    assert {g.find("svg:rect[@class='load ok']", NS) is not None for g in circuits} == {True}


def test_a_circuit_near_its_limit_shows_high(staff_client, floor):
    racked(floor, 16, circuit=0)  # 52,000 of 54,628 W: 95 %
    html = staff_client.get(reverse("staff:rack", args=[floor["rack"].pk])).content.decode()
    bars = svg_root(html, "load-bars").findall(".//svg:rect", NS)
    assert any(r.get("class") == "load high" and r.get("fill") == svg.LOAD_COLOURS["high"] for r in bars)


def test_the_elevation_costs_the_same_queries_for_4_occupied_slots_and_16(staff_client, floor):
    url = reverse("staff:rack", args=[floor["rack"].pk])
    first = racked(floor, 2, circuit=0) + racked(floor, 2, circuit=1)
    commission(floor["site"].pk, first, [60.0, 70.0, 80.0, 90.0], [True, True, False, True])
    few = [count_queries(staff_client, url), count_queries(staff_client, url + "?colour=temperature")]
    more = racked(floor, 6, circuit=0) + racked(floor, 6, circuit=1)
    commission(floor["site"].pk, more, [65.0] * 12, [True] * 6 + [False] * 6)
    commission(floor["site"].pk, first[:2], [50.0, 55.0], [True, True])  # a second run for some
    many = [count_queries(staff_client, url), count_queries(staff_client, url + "?colour=temperature")]
    assert many == few
    html = staff_client.get(url + "?colour=temperature").content.decode()
    assert len(slot_fills(html)) == 16
    assert all(fill.startswith("#") for fill, _, _ in slot_fills(html).values())  # all measured


def test_the_elevation_svg_is_well_formed_even_for_an_empty_rack(staff_client):
    rack = RackFactory(name="R<&>")
    html = staff_client.get(reverse("staff:rack", args=[rack.pk])).content.decode()
    assert svg_root(html, "rack-elevation") is not None
    texts = [t.text for t in svg_root(html, "load-bars").iterfind(".//svg:text", NS)]
    assert "No circuits feed this rack's slots." in texts
