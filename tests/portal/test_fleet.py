"""The tenant's fleet after go-live in the portal: the dashboard's figures and charts, the
machines list's telemetry columns (sorted, exported as CSV), a machine's charts — and
nothing of another tenant's."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.telemetry.models import Alert, AlertKind
from tests.factories import ContractFactory, MembershipFactory, RackFactory, SlotFactory
from tests.staff.conftest import count_queries, svg_root
from tests.telemetry.views_data import live, roll_hours, write_day

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"portal:{name}", args=args)


def recent() -> dt.datetime:
    now = timezone.now()
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)


@pytest.fixture
def fleet(floor):
    """Three live S19s polled for the last 6 hours: #0 hashes at 95 TH/s, #1 at 60 TH/s and
    73 °C, #2 unreachable for the last hour; one hour in the middle was not polled."""
    machines = live(floor, 3)
    end = recent()

    def state(m, i):
        return "unreachable" if m == machines[2] and i >= 60 else "hashing"

    def fields(m, i):
        return {"hashrate_ths": 60.0, "chip_temp_max_c": 73.0} if m == machines[1] else {}

    write_day(machines, end=end, count=72, state=state, fields=fields, unknown=set(range(24, 36)))
    roll_hours(machines)
    Alert.objects.create(kind=AlertKind.OFFLINE, site=floor["site"], machine=machines[2], tenant=machines[2].tenant,
                         opened_at=end, last_seen_at=end, message="offline")  # fmt: skip
    return {**floor, "machines": machines, "end": end}


@pytest.fixture
def stranger(fleet):
    """Another tenant's live machine on the same site, polled too."""
    other = ContractFactory(site=fleet["site"])
    rack = RackFactory(site=fleet["site"], feed=fleet["rack"].feed)
    slots = [SlotFactory(rack=rack, circuit=fleet["circuits"][1], position=1)]
    (machine,) = live({"contract": other, "slots": slots, "circuits": fleet["circuits"]}, 1, 1)
    write_day([machine], end=fleet["end"], count=72, fields=lambda m, i: {"hashrate_ths": 1000.0})
    return machine


def test_the_dashboard_shows_hashrate_uptime_kwh_and_alerts(portal, fleet, stranger):
    html = portal.get(url("dashboard")).content.decode()
    assert "155 TH/s" in html  # 95 + 60 (+ 0): the stranger's 1,000 TH/s are not ours
    assert "2 of 3 machines hashing" in html
    # 216 windows, 36 unknown, 12 down: hashing 168 of the 180 known.
    assert f"{100 * 168 / 180:.2f} %" in html
    assert f"unknown {100 * 36 / 216:.2f} %" in html
    assert 'id="open-alerts" href="/portal/alerts/"><div class="figure">1<' in html
    for chart in ("chart-24h", "chart-30d"):
        assert f'id="{chart}"' in html
    day = svg_root(html, "time-chart")
    assert day.findall(".//{http://www.w3.org/2000/svg}rect[@class='unknown']")  # the gap shows as unknown


def test_the_dashboard_of_a_tenant_with_no_telemetry_says_so(client, floor):
    client.force_login(MembershipFactory().user)
    html = client.get(url("dashboard")).content.decode()
    assert "no measurements in this span" in html
    assert "0 TH/s" in html


def test_the_machines_list_shows_and_sorts_by_hashrate_temperature_and_last_seen(portal, fleet, stranger):
    html = portal.get(url("machines"), {"sort": "-hashrate"}).content.decode()
    serials = [m.serial for m in fleet["machines"]]
    assert stranger.serial not in html
    assert html.index(serials[0]) < html.index(serials[1]) < html.index(serials[2])
    assert "73" in html
    assert f"{fleet['rack'].name} · 1" in html
    up = portal.get(url("machines"), {"sort": "hashrate"}).content.decode()
    assert up.index(serials[2]) < up.index(serials[1]) < up.index(serials[0])
    seen = portal.get(url("machines"), {"sort": "seen"}).content.decode()
    assert seen.index(serials[2]) < seen.index(serials[0])  # seen longest ago first


def test_the_machines_list_costs_the_same_queries_for_3_machines_and_13(portal, fleet):
    few = count_queries(portal, url("machines") + "?sort=-temp")
    more = live(fleet, 10, 1)
    write_day(more, end=fleet["end"], count=2)
    assert count_queries(portal, url("machines") + "?sort=-temp") == few


def test_the_csv_export_has_the_filtered_machines_their_telemetry_and_no_formulas(portal, fleet, stranger):
    machine = fleet["machines"][1]
    type(machine).objects.filter(pk=machine.pk).update(serial="=HYPERLINK(1)")
    response = portal.get(url("machines-csv"), {"sort": "hashrate"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["serial", "model", "mac"]
    assert len(rows) == 4  # the header and our three
    by_serial = {r[0]: r for r in rows[1:]}
    assert "'=HYPERLINK(1)" in by_serial
    assert by_serial["'=HYPERLINK(1)"][8] == "60.0"
    assert by_serial["'=HYPERLINK(1)"][9] == "73.0"
    assert stranger.serial not in by_serial
    filtered = portal.get(url("machines-csv"), {"q": "HYPERLINK"})
    assert len(list(csv.reader(io.StringIO(b"".join(filtered.streaming_content).decode())))) == 2


@pytest.mark.parametrize("span", ["24h", "7d", "30d"])
def test_a_machine_page_has_hashrate_power_and_temperature_charts(portal, fleet, span):
    html = portal.get(url("machine", fleet["machines"][1].pk), {"span": span}).content.decode()
    for chart in ("chart-hashrate", "chart-power", "chart-temperature"):
        assert f'id="{chart}"' in html
    root = svg_root(html, "time-chart")
    assert root.findall(".//{http://www.w3.org/2000/svg}path[@class='line']")
    assert "nominal" in html
    assert "Self-tests" in html


def test_another_tenants_machine_and_its_charts_are_not_found(portal, stranger):
    assert portal.get(url("machine", stranger.pk), {"span": "7d"}).status_code == 404
