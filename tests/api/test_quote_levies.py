"""Quotes show the site's levies (issue 10): a Kazakh site's tiered per-kWh tax, converted to
the billing currency, and an all-in month — in the API (and its schema) and the portal."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.billing.models import Levy, SiteBilling
from hosting.models import Quote, SitePricing
from tests.api.conftest import TODAY, priced_site

pytestmark = pytest.mark.django_db

START = TODAY + dt.timedelta(days=30)
# Tenge per kWh by the price of power paid (tenge/kWh): the cheaper the power, the higher the tax.
KZ_TIERS = [
    {"price_up_to": "10", "per_kwh": "25"},
    {"price_up_to": "15", "per_kwh": "18"},
    {"price_up_to": "20", "per_kwh": "15"},
    {"price_up_to": "25", "per_kwh": "10"},
]


def kazakh_levies(site, *, power_price="18"):
    """The 2022 flat tenge (ended), then the tiered tax in force."""
    Levy.objects.create(
        site=site, name="Mining power tax (2022)", currency="KZT", per_kwh=Decimal(1),
        to_billing_currency=Decimal("0.00213"), effective_from=dt.date(2022, 1, 1), effective_until=dt.date(2023, 4, 1),
    )  # fmt: skip
    return Levy.objects.create(
        site=site, name="Mining power tax", currency="KZT", per_kwh=Decimal(1), tiers=KZ_TIERS,
        power_price_per_kwh=Decimal(power_price), to_billing_currency=Decimal("0.00213"),
        effective_from=dt.date(2023, 4, 1),
    )  # fmt: skip


@pytest.fixture
def sites(db):
    kz = priced_site("ekibastuz", mw="10", rate="0.04000", country="KZ", region="Pavlodar")
    SiteBilling.objects.create(site=kz, currency="USD")
    kazakh_levies(kz)
    us = priced_site("texas", mw="10", rate="0.05500", country="US", region="Texas")
    return {"kz": kz, "us": us}


def ask(api, **body):
    request = {"start_on": START.isoformat(), "term_months": 12, "contact_email": "m@example.com", **body}
    response = api.post("/api/v1/quotes/", request, format="json")
    assert response.status_code == 201, response.json()
    return {o["site"]: o for o in response.json()["options"]}


def test_a_kazakh_sites_quote_shows_its_tiered_levy_and_the_all_in_month(anon, sites):
    options = ask(anon, machine_model="antminer-s19", quantity=10)  # 32.5 kW
    kz = options["ekibastuz"]
    assert kz["billing_currency"] == "USD"
    assert kz["monthly_usd"] == "949.00"  # 32.5 kW × 730 h × 0.04
    assert kz["estimated_kwh_month"] == "23725.000"
    (levy,) = kz["levies"]  # the 2022 flat tenge ended before the start
    assert levy["name"] == "Mining power tax"
    assert levy["currency"] == "KZT"
    assert levy["per_kwh"] == "15"  # power at 18 tenge: the ≤ 20 tier
    assert levy["per_kwh_billing"] == "0.031950"  # 15 × 0.00213
    assert levy["rule"] == {"per_kwh": "1", "power_price_per_kwh": "18", "tiers": KZ_TIERS}
    assert levy["effective_from"] == "2023-04-01"
    assert levy["effective_until"] is None
    assert levy["monthly"] == "758.01"  # 23,725 kWh × 0.03195 = 758.01375
    assert kz["levies_monthly"] == "758.01"
    assert kz["all_in_monthly"] == "1707.01"  # 949.00 + 758.01


def test_a_site_without_levies_shows_none_and_its_all_in_is_its_fee(anon, sites):
    us = ask(anon, it_kw="100")["texas"]
    assert us["levies"] == []
    assert us["billing_currency"] == "USD"  # no billing row yet: the default
    assert us["levies_monthly"] == "0.00"
    assert us["all_in_monthly"] == us["monthly_usd"] == "4015.00"  # 100 kW × 730 h × 0.055


def test_the_tier_follows_the_power_price_and_the_flat_rate_is_above_every_tier(anon, sites):
    levy = Levy.objects.get(site=sites["kz"], effective_until__isnull=True)
    levy.power_price_per_kwh = Decimal("8")
    levy.save()
    assert ask(anon, it_kw="100", site="ekibastuz")["ekibastuz"]["levies"][0]["per_kwh"] == "25"
    levy.power_price_per_kwh = Decimal("40")  # dearer than every tier: the flat 1 tenge
    levy.save()
    option = ask(anon, it_kw="100", site="ekibastuz")["ekibastuz"]
    assert option["levies"][0]["per_kwh"] == "1"
    assert option["levies"][0]["monthly"] == "155.49"  # 73,000 kWh × 0.00213
    assert option["all_in_monthly"] == "3075.49"  # 2,920.00 + 155.49


def test_a_levy_in_force_only_after_the_options_start_is_not_shown(anon, sites):
    Levy.objects.create(
        site=sites["us"], name="Future fee", currency="USD", per_kwh=Decimal("0.01"),
        effective_from=START + dt.timedelta(days=1),
    )  # fmt: skip
    assert ask(anon, it_kw="100", site="texas")["texas"]["levies"] == []


def test_reading_a_quote_again_shows_the_levies(staff_api, anon, sites):
    ask(anon, it_kw="100", site="ekibastuz")
    quote = Quote.objects.get()
    got = staff_api.get(f"/api/v1/quotes/{quote.pk}/")
    assert got.status_code == 200
    assert got.json()["options"][0]["levies"][0]["name"] == "Mining power tax"


def test_the_portal_quote_page_shows_levies_and_the_all_in_month(client, floor):
    from hosting import services
    from tests.factories import MembershipFactory, PhaseFactory

    PhaseFactory(site=floor["site"], mw=Decimal("10"))
    services.sign_contract(floor["contract"])
    site = floor["site"]
    SitePricing.objects.create(site=site, list_rate_usd_per_kwh=Decimal("0.04"), setup_usd_per_machine=40)
    kazakh_levies(site)
    client.force_login(MembershipFactory(tenant=floor["contract"].tenant).user)
    start = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    client.post(
        reverse("portal:quotes"), {"machine_model": "antminer-s19", "quantity": 10, "start_on": start, "term_months": 6}
    )
    page = client.get(reverse("portal:quote", args=[Quote.objects.get().pk])).content.decode()
    option = page[page.index('<tr class="option">') :]
    assert "Mining power tax: 15 KZT/kWh = 0.031950 USD/kWh" in option
    assert "Mining power tax (2022)" not in option
    assert "758.01 USD/month" in option
    assert "1,707.01 USD" in option
