import pytest

from hosting import services
from tests.factories import PASSWORD, MembershipFactory, PhaseFactory


@pytest.fixture
def signed(floor):
    """The floor's contract, signed (it takes packing lists), on a site with power."""
    from decimal import Decimal

    PhaseFactory(site=floor["site"], mw=Decimal("10"))
    return services.sign_contract(floor["contract"])


@pytest.fixture
def tenant_user(floor):
    return MembershipFactory(tenant=floor["contract"].tenant).user


@pytest.fixture
def portal(client, tenant_user):
    client.force_login(tenant_user)
    return client


@pytest.fixture
def password():
    return PASSWORD
