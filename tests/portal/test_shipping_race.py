"""Two edits giving the same MAC (or serial) to two announced machines at the same moment,
through the portal, on PostgreSQL: one wins, the other is told on its form that the value
is taken — never a 500, never both — round after round. Two machines of one contract
(the contract's lock puts the edits in turn) and of two tenants (only the partial unique
constraint stands between them)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from hosting import packing, services
from hosting.models import Machine
from tests.factories import ContractFactory, MembershipFactory, PhaseFactory, SiteFactory
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROUNDS = 6


def _contract(site):
    return services.sign_contract(ContractFactory(site=site, it_kw=Decimal("1000")))


def _client(contract) -> Client:
    client = Client()
    client.force_login(MembershipFactory(tenant=contract.tenant).user)
    return client


@pytest.fixture(params=["one contract", "two tenants"])
def editors(request):
    """Two logged-in clients and the contracts their machines are on."""
    site = SiteFactory()
    PhaseFactory(site=site, energized_on=dt.date(2021, 1, 1), mw=Decimal("10"))
    first = _contract(site)
    second = first if request.param == "one contract" else _contract(site)
    return [(_client(first), first), (_client(second), second)]  # two members (of one tenant or two)


@pytest.mark.parametrize("column", ["mac", "serial"])
def test_two_edits_to_the_same_value_at_once_one_wins(editors, column):
    pairs = editors
    for n in range(ROUNDS):
        machines = []
        for i, (_, contract) in enumerate(pairs):
            data = f"serial,mac,model\nR{n}-{i},02:ab:{n:02x}:{i:02x}:00:01,antminer-s19-pro\n".encode()
            machines.append(packing.import_list(contract, data).machines.get())
        value = f"02:ab:{n:02x}:ff:ff:ff" if column == "mac" else f"WANTED-{n}"

        def send(i, machines=machines, value=value):
            client, _ = pairs[i]
            m = machines[i]
            data = {"serial": m.serial, "mac": m.mac, "model": "antminer-s19-pro", column: value}
            response = client.post(reverse("portal:machine-edit", args=[m.pk]), data)
            return i, response.status_code, response.content.decode()

        results, _ = race(2, send)

        codes = sorted(code for _, code, _ in results)
        assert codes == [200, 302], codes
        refused = next(page for _, code, page in results if code == 200)
        assert f"{value} is already registered" in refused or "at the same moment" in refused, refused
        assert Machine.objects.filter(**{column: value}).count() == 1
