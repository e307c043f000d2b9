"""The home page's figures per site today, and the capacity forecast pages: the ledger's
budget and commitment (only reservations that count), live draw and the waitlist, as an
SVG chart and a table of change points, at a fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse
from django.utils import timezone

from capacity import ledger
from capacity.models import Reservation
from hosting.lifecycle import MachineStatus
from hosting.models import Quote
from tests.factories import (
    CircuitFactory,
    ContractFactory,
    MachineFactory,
    PhaseFactory,
    RackFactory,
    ReservationFactory,
    SiteFactory,
    SlotFactory,
)
from tests.staff.conftest import count_queries, svg_root

pytestmark = pytest.mark.django_db
NS = {"svg": "http://www.w3.org/2000/svg"}


def waitlisted(it_kw, start_on, term_months=12, **filters) -> Quote:
    return Quote.objects.create(
        contact_email="waiting@example.com",
        it_kw=Decimal(it_kw),
        start_on=start_on,
        term_months=term_months,
        status=Quote.Status.WAITLISTED,
        waitlisted_at=timezone.now(),
        **filters,
    )


def machine_in_slot(site, status, watts=3250):
    """A machine of `status` in a new slot at `site`, its nameplate watts allocated."""
    rack = RackFactory(site=site)
    slot = SlotFactory(rack=rack, circuit=CircuitFactory(feed=rack.feed), position=1)
    machine = MachineFactory(contract=ContractFactory(site=site), status=status, slot=slot)
    ledger.assign_slot(slot, watts=watts, occupant=machine.occupant_ref)
    return machine


@pytest.fixture
def siberia():
    """PUE 1.25: 125 MW energized, +375 MW in six months; 60 MW of IT firm and a live 4 MW
    hold; an expired hold and a released reservation that no longer count; one live and
    one racked S19 (3,250 W each)."""
    now = timezone.now()
    site = SiteFactory(slug="siberia", name="Siberia", country="RU", region="Irkutsk", pue=Decimal("1.25"))
    today = site.today(now)
    PhaseFactory(site=site, name="Now", energized_on=today - relativedelta(years=1), mw=Decimal("125"))
    PhaseFactory(site=site, name="Q3", energized_on=today + relativedelta(months=6), mw=Decimal("375"))
    ledger.reserve(site, it_kw=Decimal("60000"), starts_on=today - relativedelta(months=1), ends_on=None,
                   kind="firm", reference="contract:1")  # fmt: skip
    ReservationFactory(site=site, it_kw=Decimal("4000"), starts_on=today, kind=Reservation.Kind.HOLD,
                       expires_at=now + dt.timedelta(hours=2))  # fmt: skip
    ReservationFactory(site=site, it_kw=Decimal("10000"), starts_on=today, kind=Reservation.Kind.HOLD,
                       expires_at=now - dt.timedelta(hours=2))  # fmt: skip
    ReservationFactory(site=site, it_kw=Decimal("20000"), starts_on=today, released_at=now)
    machine_in_slot(site, MachineStatus.LIVE)
    machine_in_slot(site, MachineStatus.RACKED)
    return site


def test_home_links_every_dashboard_and_shows_each_site_today(staff_client, siberia):
    page = staff_client.get(reverse("staff:home")).content.decode()
    for name in ("forecast", "racks", "waitlist", "holds", "intake"):
        assert f'href="{reverse(f"staff:{name}")}' in page
    assert reverse("staff:site_forecast", args=["siberia"]) in page
    assert "125.0" in page  # energized MW today
    assert "64,000" in page  # committed IT kW: the firm 60 MW and the live hold
    assert "36,000" in page  # free: 125 MW / 1.25 − 64 MW


def test_a_site_forecast_counts_what_the_ledger_counts_plus_live_draw_and_its_waitlist(staff_client, siberia):
    today = siberia.today()
    other = SiteFactory(slug="rockdale", country="US", region="Texas")
    waitlisted("8000", today + relativedelta(months=3), site=siberia)  # 10 MW at PUE 1.25
    waitlisted("1600", today + relativedelta(months=3), country="RU")  # 2 MW
    waitlisted("4000", today, site=other)  # not here
    waitlisted("4000", today, country="US")  # not here

    response = staff_client.get(reverse("staff:site_forecast", args=["siberia"]))
    fc = response.context["forecast"]
    assert fc.start == today
    assert fc.end == today + relativedelta(months=24)
    now = fc.at(today)
    assert now.budget_mw == 125
    assert now.committed_mw == 80  # (60,000 + 4,000) kW × 1.25
    assert now.live_mw == Decimal("0.0040625")  # one live S19: 3.25 kW × 1.25
    assert now.waitlisted_mw == 0
    assert now.headroom_it_kw == 36000
    assert fc.at(today + relativedelta(months=3)).waitlisted_mw == 12
    assert fc.at(today + relativedelta(months=3)).demand_mw == 92
    assert fc.at(today + relativedelta(months=6) - dt.timedelta(days=1)).budget_mw == 125
    later = fc.at(today + relativedelta(months=6))
    assert (later.budget_mw, later.headroom_it_kw) == (500, 336000)
    assert fc.at(today + relativedelta(months=15)).waitlisted_mw == 0  # the term ended

    page = response.content.decode()
    chart = svg_root(page, "forecast-chart")
    classes = {p.get("class") for p in chart.iterfind(".//svg:path", NS)}
    assert {"budget", "committed", "live", "waitlisted"} <= classes
    labels = " ".join(t.text or "" for t in chart.iterfind(".//svg:text", NS))
    assert "MW" in labels
    assert "energized budget" in labels
    assert "committed (reserved IT kW × PUE)" in labels
    first_month = today if today.day == 1 else (today + relativedelta(months=1)).replace(day=1)
    assert first_month.strftime("%b %Y") in labels  # months across, labelled every third
    table = page[page.index('id="change-points"') :]
    assert (today + relativedelta(months=6)).isoformat() in table
    assert "336,000" in table
    # The site selector links every site's chart and the sum
    assert reverse("staff:site_forecast", args=["rockdale"]) in page
    assert reverse("staff:forecast") in page


def test_the_all_sites_forecast_sums_the_sites_and_counts_each_waitlisted_quote_once(staff_client, siberia):
    today = siberia.today()
    texas = SiteFactory(slug="rockdale", country="US", region="Texas", pue=Decimal("1.10"))
    PhaseFactory(site=texas, energized_on=today - relativedelta(years=1), mw=Decimal("100"))
    ledger.reserve(texas, it_kw=Decimal("50000"), starts_on=today, ends_on=None, kind="firm", reference="c:2")
    machine_in_slot(texas, MachineStatus.LIVE, watts=5000)
    waitlisted("1000", today)  # anywhere: once, at the highest PUE (1.25)
    waitlisted("1000", today, site=texas)  # at 1.10

    fc = staff_client.get(reverse("staff:forecast")).context["forecast"]
    now = fc.at(today)
    assert now.budget_mw == 225
    assert now.committed_mw == 80 + 55
    assert now.live_mw == Decimal("0.0040625") + Decimal("0.0055")
    assert now.waitlisted_mw == Decimal("1.25") + Decimal("1.1")
    assert now.headroom_it_kw == 36000 + (Decimal("100000") / Decimal("1.1") - 50000).quantize(
        Decimal("0.001"), "ROUND_FLOOR"
    )
    assert fc.at(today + relativedelta(months=6)).budget_mw == 600


def grow_sites(n: int) -> None:
    today = timezone.localdate()
    for _ in range(n):
        site = SiteFactory(pue=Decimal("1.1"))
        PhaseFactory(site=site, energized_on=today - relativedelta(years=1), mw=Decimal("10"))
        PhaseFactory(site=site, energized_on=today + relativedelta(months=4), mw=Decimal("10"))
        ReservationFactory(site=site, it_kw=Decimal("100"), starts_on=today, ends_on=today + relativedelta(months=9))
        machine_in_slot(site, MachineStatus.LIVE)
        waitlisted("500", today + relativedelta(months=2), site=site)
        waitlisted("500", today, region="Texas")


def test_home_and_forecasts_cost_the_same_queries_for_few_sites_and_many(staff_client, siberia):
    urls = [reverse("staff:home"), reverse("staff:forecast"), reverse("staff:site_forecast", args=["siberia"])]
    grow_sites(2)
    few = [count_queries(staff_client, url) for url in urls]
    grow_sites(8)
    many = [count_queries(staff_client, url) for url in urls]
    assert many == few


# --- readable whatever the waitlist holds ------------------------------------------------------------


def chart_of(staff_client, slug="siberia"):
    page = staff_client.get(reverse("staff:site_forecast", args=[slug])).content.decode()
    return svg_root(page, "forecast-chart")


def y_axis_top_mw(chart) -> float:
    """The largest tick label on the MW axis."""
    ticks = [t.text for t in chart.iterfind(".//svg:text[@text-anchor='end']", NS) if t.text]
    return max(float(t.replace(",", "")) for t in ticks if t.replace(",", "").replace(".", "").isdigit())


def test_one_huge_waitlisted_request_is_clipped_and_labelled_not_flattening_the_chart(staff_client, siberia):
    """500 MW is the site's peak budget: a 5 GW request would put the axis at 6,000+ MW and
    press every other line to the bottom. It is drawn up to 3 × the budget and labelled."""
    today = siberia.today()
    waitlisted("4000000", today + relativedelta(months=3), site=siberia)  # 5,000 MW at PUE 1.25
    chart = chart_of(staff_client)
    assert y_axis_top_mw(chart) <= 4 * 500  # the budget keeps a quarter of the height or more (not 1/10)
    marker = chart.find(".//svg:g[@class='waitlist-clipped']", NS)
    assert marker is not None
    label = "".join(marker.find("svg:text", NS).itertext())
    assert "off the chart: up to 5,080 MW" in label  # 5,000 waitlisted on 80 committed
    assert "3 × the peak budget" in label
    table = staff_client.get(reverse("staff:site_forecast", args=["siberia"])).content.decode()
    assert "5,000" in table[table.index('id="change-points"') :]  # the table keeps the true figure


def test_an_ordinary_waitlist_is_not_clipped(staff_client, siberia):
    waitlisted("8000", siberia.today() + relativedelta(months=3), site=siberia)
    chart = chart_of(staff_client)
    assert chart.find(".//svg:g[@class='waitlist-clipped']", NS) is None
    assert y_axis_top_mw(chart) < 1000


def test_every_month_label_fits_inside_the_chart():
    """Labels sit centred under their tick; the last one, on the right edge, used to be cut in half."""
    import xml.etree.ElementTree as ET
    from types import SimpleNamespace

    from capacity import power
    from hosting.staff import figures, svg

    start = dt.date(2027, 1, 1)  # a label falls on the very last tick (Jan 2029)
    phase = SimpleNamespace(energized_on=dt.date(2026, 1, 1), mw=Decimal("10"))
    book = power.SiteBook("s", Decimal("1"), [phase], [])

    markup = str(svg.forecast_chart(figures.forecast(book, start), width=1100))
    root = ET.fromstring(markup)  # noqa: S314 - our own markup
    months = [t for t in root.iterfind(".//svg:text", NS) if t.text and t.text[:3].isalpha() and t.text[-4:].isdigit()]
    assert "Jan 2029" in [t.text for t in months]
    for t in months:
        x, width = float(t.get("x")), len(t.text) * svg.CHAR_W
        left = {"start": x, "middle": x - width / 2, "end": x - width}[t.get("text-anchor")]
        assert left >= 0, (t.text, left)
        assert left + width <= 1100, (t.text, left + width)
