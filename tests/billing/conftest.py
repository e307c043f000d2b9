import datetime as dt

import pytest

from hosting.billing import services
from hosting.billing.models import Invoice
from hosting.models import Machine, Tenant
from tests.billing.world import billing_floor, close, hours, live
from tests.factories import MembershipFactory, StaffFactory, TenantFactory

APRIL = dt.date(2026, 4, 1)
A0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
TENANT_NAME = "ООО Сибирь Майнинг · Қазақ"
FORMULA_SERIAL = '=HYPERLINK("http://x")'


@pytest.fixture
def billed(floor):
    return build_billed(floor)


def build_billed(floor):
    """April of the floor's contract, issued: two machines hashing at 3,000 W all month (one
    with a serial that is a spreadsheet formula), the tenant named in Cyrillic and Kazakh;
    and a draft for March the tenant must never see."""
    Tenant.objects.filter(pk=floor["contract"].tenant_id).update(name=TENANT_NAME)
    contract = billing_floor(floor)
    a, b = live(floor, 2, since=A0 - dt.timedelta(days=1))
    Machine.objects.filter(pk=a.pk).update(serial=FORMULA_SERIAL)
    for m in (a, b):
        hours(m, A0, MAY, lambda i, at: {"power_w": 3000.0})
    close(floor["site"], MAY)
    invoice = services.issue(services.invoice_month(contract, APRIL).invoice, now=MAY + dt.timedelta(hours=2))
    draft = Invoice.objects.create(
        contract=contract, tenant_id=contract.tenant_id, site=contract.site, currency="USD",
        period_start=dt.date(2026, 3, 1), period_end=APRIL,
    )  # fmt: skip
    return {"invoice": Invoice.objects.get(pk=invoice.pk), "draft": draft, "contract": contract, "machines": [a, b]}


@pytest.fixture
def owner(billed):
    return MembershipFactory(tenant=billed["contract"].tenant).user


@pytest.fixture
def stranger(db):
    return MembershipFactory(tenant=TenantFactory(slug="stranger")).user


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def anon():
    from rest_framework.test import APIClient

    return APIClient()
