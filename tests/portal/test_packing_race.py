"""Two packing lists uploaded at the same moment, through the portal, on PostgreSQL: a
serial or MAC already on its way for one tenant is refused for the other — on its line,
never a 500, never both registered — round after round."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from hosting import services
from hosting.models import Machine, Shipment
from tests.factories import ContractFactory, MembershipFactory, PhaseFactory, SiteFactory
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROUNDS = 8


@pytest.fixture
def tenants():
    """Two tenants, each with a signed contract at the same powered site, logged in to the portal."""
    site = SiteFactory()
    PhaseFactory(site=site, energized_on=dt.date(2021, 1, 1), mw=Decimal("10"))
    out = []
    for _ in range(2):
        contract = services.sign_contract(ContractFactory(site=site, it_kw=Decimal("1000")))
        client = Client()
        client.force_login(MembershipFactory(tenant=contract.tenant).user)
        out.append((client, contract))
    return out


def upload_both(tenants, lists: list[bytes]) -> list[tuple[int, str]]:
    def send(i):
        client, contract = tenants[i]
        upload = SimpleUploadedFile("list.csv", lists[i], "text/csv")
        response = client.post(reverse("portal:contract", args=[contract.pk]), {"file": upload})
        return i, response.status_code, response.content.decode()

    results, _ = race(2, send)
    return [(code, page) for _, code, page in sorted(results)]


@pytest.mark.parametrize("shared", ["mac", "serial"])
def test_one_of_two_lists_sharing_a_machine_is_registered_the_other_refused_on_its_line(tenants, shared):
    for n in range(ROUNDS):
        mac = f"02:bb:00:00:{n:02x}:01"
        lines = [
            f"SN-{n}-{i if shared == 'mac' else 0},{mac if shared == 'mac' else f'02:cc:00:{i:02x}:{n:02x}:01'},"
            "antminer-s19-pro"
            for i in range(2)
        ]
        lists = [f"serial,mac,model\nOWN-{n}-{i},02:dd:00:{i:02x}:{n:02x}:01,antminer-s19-pro\n{lines[i]}\n".encode()
                 for i in range(2)]  # fmt: skip

        results = upload_both(tenants, lists)

        codes = sorted(code for code, _ in results)
        assert codes == [200, 302], codes  # one registered (redirect), one shown its problems
        refused = next(page for code, page in results if code == 200)
        assert "was not registered" in refused
        assert re.search(rf"<td>3</td><td>{shared}</td><td>[^<]* is already registered", refused), refused
        assert Shipment.objects.count() == n + 1
    assert Machine.objects.count() == ROUNDS * 2
    column = "mac" if shared == "mac" else "serial"
    assert Machine.objects.values(column).distinct().count() == ROUNDS * 2
