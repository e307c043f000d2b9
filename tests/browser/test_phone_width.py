"""Every portal page on a phone: Chromium at 390 × 844 (an iPhone 13/14's CSS pixels) opens
each page a tenant can reach and checks that the page itself never scrolls sideways — the
navigation wraps, wide tables scroll inside their own box, forms take the width — and saves
a full-page screenshot of each to test-artifacts/.

The list of pages is checked against the portal's URLs, so a new page without a phone
check fails here."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone
from playwright.sync_api import expect

from hosting import packing, quotes
from hosting.carriers import Carrier
from hosting.models import MachineModel, Shipment, SitePricing
from hosting.portal import urls as portal_urls
from tests.billing.conftest import build_billed
from tests.factories import PASSWORD, MembershipFactory, PhaseFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PHONE = {"width": 390, "height": 844}

# Portal URLs that are not pages to look at: downloads, htmx fragments, POST-only actions.
NOT_PAGES = {
    "machines-csv", "batch-progress", "machine-request", "quote-accept", "token-revoke",
    "invoice-pdf", "invoice-lines-csv", "invoice-machines-csv", "packing-template", "model-list", "shipment-tracking",
}  # fmt: skip

OVERFLOW = """() => {
  const doc = document.documentElement;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                 && getComputedStyle(e).position !== 'fixed'
                 && !e.closest('.table-wrap, table, .chart, pre'))
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));
  return {scrollWidth: doc.scrollWidth, innerWidth: window.innerWidth, wide: wide};
}"""


@pytest.fixture
def world(floor):
    billed = build_billed(floor)
    contract = billed["contract"]
    site = contract.site
    site.ship_to_address = "Haven Bratsk LLC\nPromyshlennaya ul. 1, bldg 4\nBratsk, Irkutsk Oblast 665700\nRussia"
    site.receiving_hours = "Mon–Sat 08:00–20:00 Irkutsk time (UTC+8)"
    site.receiving_dock = "Gate 2, warehouse B; 20 ft and 40 ft containers, book a day ahead"
    site.customs_notes = "Import via Zabaykalsk: EAEU declaration, HS 8471.50; the importer of record is the tenant."
    site.receiving_contact = "Receiving desk +7 3953 00 00 00, receiving@bratsk.example"
    site.save()
    user = MembershipFactory(tenant=contract.tenant, user__username="phone").user
    rows = "\n".join(f"PHONE-{i:04d},02:77:00:00:{i >> 8:02x}:{i & 255:02x},antminer-s19-pro" for i in range(1, 4))
    contract.it_kw = Decimal("1000")
    contract.save(update_fields=["it_kw"])
    shipment = packing.import_list(
        contract, f"serial,mac,model\n{rows}\n".encode(), reference="PO-2026-0412-BRATSK-AIRFREIGHT",
        tracking_number="1Z999AA10123456784", carrier=Carrier.UPS, by=user,
    )  # fmt: skip
    if not site.phases.exists():
        PhaseFactory(site=site, energized_on=dt.date(2020, 1, 1), mw=Decimal("10"))
    SitePricing.objects.get_or_create(site=site, defaults={"list_rate_usd_per_kwh": Decimal("0.045")})
    s19 = MachineModel.objects.get(slug="antminer-s19-pro")
    data = {"machine_model": s19, "quantity": 30, "it_kw": quotes.requested_it_kw(s19, 30),
            "start_on": timezone.localdate() + dt.timedelta(days=30), "term_months": 24}  # fmt: skip
    quote = quotes.request_quote(quotes.new_request(data, requester=user, contact_email="a@b.example", client_ip=None))
    return {"contract": contract, "shipment": shipment, "invoice": billed["invoice"], "quote": quote,
            "live": billed["machines"][1], "announced": shipment.machines.order_by("serial").first()}  # fmt: skip


def pages(world) -> dict[str, str]:
    c, s, a = world["contract"].pk, world["shipment"].pk, world["announced"].pk
    return {
        "dashboard": reverse("portal:dashboard"),
        "machines": reverse("portal:machines"),
        "machine": reverse("portal:machine", args=[world["live"].pk]),
        "machine-edit": reverse("portal:machine-edit", args=[a]),
        "machine-cancel": reverse("portal:machine-cancel", args=[a]),
        "contract": reverse("portal:contract", args=[c]),
        "shipments": reverse("portal:shipments"),
        "shipment": reverse("portal:shipment", args=[s]),
        "quotes": reverse("portal:quotes"),
        "quote": reverse("portal:quote", args=[world["quote"].pk]),
        "tokens": reverse("portal:tokens"),
        "alerts": reverse("portal:alerts"),
        "curtailment": reverse("portal:curtailment"),
        "curtailment-contract": reverse("portal:curtailment-contract", args=[c]),
        "invoices": reverse("portal:invoices"),
        "invoice": reverse("portal:invoice", args=[world["invoice"].pk]),
        "logout": reverse("portal:logout"),
    }


def test_every_portal_page_is_checked_at_phone_width(world):
    names = {p.name for p in portal_urls.urlpatterns if isinstance(p, URLPattern)}
    assert names - NOT_PAGES == set(pages(world)) | {"login"}


def _fits(page, what: str) -> None:
    found = page.evaluate(OVERFLOW)
    assert found["innerWidth"] == PHONE["width"]
    assert found["scrollWidth"] <= found["innerWidth"], f"{what} scrolls sideways: {found}"


def test_every_portal_page_fits_a_phone(world, live_server, page, shot):
    page.set_default_timeout(20_000)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}{reverse('portal:login')}")
    _fits(page, "login")
    shot("login")
    page.fill("input[name=username]", "phone")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")

    for name, url in pages(world).items():
        response = page.goto(live_server.url + url)
        assert response is not None, name
        assert response.status == 200, (name, response.status)
        expect(page.locator("h1").first).to_be_visible()
        _fits(page, name)
        shot(name)

    # The navigation is all there, wrapped, and each link reachable without scrolling sideways.
    page.goto(live_server.url + reverse("portal:dashboard"))
    for link in page.locator("header nav a").all():
        box = link.bounding_box()
        assert box is not None
        assert 0 <= box["x"] <= box["x"] + box["width"] <= PHONE["width"], link.inner_text()

    # A wide table scrolls inside its own box: the page does not.
    page.goto(live_server.url + reverse("portal:shipment", args=[world["shipment"].pk]))
    expect(page.locator("#tracking a.tracking")).to_have_attribute(
        "href", "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    )
    page.goto(live_server.url + reverse("portal:machines"))
    box = page.locator("table").first.bounding_box()
    assert box is not None
    assert box["width"] <= PHONE["width"]

    # The ship-to block is on the contract page, whole, and the form fields take the width.
    page.goto(live_server.url + reverse("portal:contract", args=[world["contract"].pk]))
    expect(page.locator("#ship-to-address")).to_have_text(world["contract"].site.ship_to_block)
    field = page.locator("#id_reference").bounding_box()
    assert field is not None
    assert field["width"] > PHONE["width"] * 0.7
    assert Shipment.objects.count() == 1
