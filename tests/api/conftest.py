import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from hosting.models import ApiToken, SitePricing, TermDiscount
from tests.factories import (
    CircuitFactory,
    MembershipFactory,
    PhaseFactory,
    RackFactory,
    SiteFactory,
    SlotFactory,
    StaffFactory,
    TenantFactory,
)

TODAY = dt.date.today()


def client_for(user=None) -> APIClient:
    """An API client; with a user, authenticated by a freshly issued token."""
    api = APIClient()
    if user is not None:
        _, key = ApiToken.issue(user, "tests")
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def priced_site(slug, *, mw="10", pue="1.00", rate="0.05000", setup="40.00", slots=0, **fields):
    """A site energized since last year with a price list and, if asked, a small built floor."""
    site = SiteFactory(slug=slug, pue=Decimal(pue), **fields)
    PhaseFactory(site=site, name="Phase 1", energized_on=TODAY - dt.timedelta(days=365), mw=Decimal(mw))
    SitePricing.objects.create(site=site, list_rate_usd_per_kwh=Decimal(rate), setup_usd_per_machine=Decimal(setup))
    if slots:
        rack = RackFactory(site=site)
        circuit = CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100)  # 16 S19s
        for position in range(1, slots + 1):
            SlotFactory(rack=rack, circuit=circuit, position=position)
    return site


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def two_sites(db):
    """Texas: 10 MW at 0.055; Siberia: 20 MW at 0.045 (cheaper). Discount 5 % from 12 months."""
    TermDiscount.objects.create(min_term_months=12, discount_pct=Decimal("5"))
    return {
        "texas": priced_site("texas", mw="10", rate="0.05500", country="US", region="Texas", slots=16),
        "siberia": priced_site("siberia", mw="20", rate="0.04500", country="RU", region="Irkutsk", slots=16),
    }


@pytest.fixture
def tenant_user(db):
    return MembershipFactory(tenant=TenantFactory(slug="northern")).user


@pytest.fixture
def tenant_api(tenant_user):
    return client_for(tenant_user)


@pytest.fixture
def staff_api(db):
    return client_for(StaffFactory())
