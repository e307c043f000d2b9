"""Packing lists: checked as a whole, errors line by line, all or nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from hosting import packing
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, MachineEvent, Shipment
from tests.factories import ContractFactory, MachineFactory

pytestmark = pytest.mark.django_db

HEADER = "serial,mac,model,ip,notes\n"


def csv(*lines: str) -> bytes:
    return (HEADER + "\n".join(lines) + "\n").encode()


def upload(portal, contract, data: bytes, **fields):
    url = reverse("portal:contract", args=[contract.pk])
    return portal.post(url, {"file": SimpleUploadedFile("list.csv", data, "text/csv"), **fields})


def test_a_good_list_registers_every_machine_as_announced(portal, signed):
    data = csv(
        "SN-1,02:aa:00:00:00:01,antminer-s19-pro,127.70.0.1,crate 1", "SN-2,02-AA-00-00-00-02,Antminer S19 Pro,,"
    )
    response = upload(portal, signed, data, reference="PO-2021-07")
    assert response.status_code == 302
    shipment = Shipment.objects.get()
    assert (shipment.reference, shipment.contract, shipment.tenant) == ("PO-2021-07", signed, signed.tenant)
    machines = {m.serial: m for m in Machine.objects.all()}
    assert machines["SN-1"].ip == "127.70.0.1"
    assert machines["SN-1"].notes == "crate 1"
    assert machines["SN-2"].mac == "02:aa:00:00:00:02"  # normalised
    assert {m.status for m in machines.values()} == {MachineStatus.ANNOUNCED}
    assert "2 machine(s) on their way" in portal.get(response["Location"]).content.decode()


def test_a_tracking_number_puts_them_in_transit(portal, signed):
    upload(portal, signed, csv("SN-1,02:aa:00:00:00:01,antminer-s19-pro,,"), tracking_number="1Z999")
    machine = Machine.objects.get()
    assert machine.status == MachineStatus.IN_TRANSIT
    assert "1Z999" in MachineEvent.objects.get(machine=machine).reason


def test_every_problem_is_shown_line_by_line_and_nothing_is_registered(portal, signed):
    MachineFactory(serial="TAKEN-1", contract=signed)
    data = csv(
        "SN-1,02:aa:00:00:00:01,antminer-s19-pro,,",  # line 2: fine
        "SN-2,02:aa:00:00:00:zz,antminer-s19-pro,,",  # line 3: malformed MAC
        "SN-3,02:aa:00:00:00:03,antminer-s99,,",  # line 4: unknown model
        "SN-1,02:aa:00:00:00:04,antminer-s19-pro,,",  # line 5: duplicate serial (with line 2)
        "TAKEN-1,02:aa:00:00:00:05,antminer-s19-pro,,",  # line 6: serial already registered
        "SN-6,02:aa:00:00:00:06,antminer-s19-pro,999.1.1.1,",  # line 7: bad IP
    )
    before = Machine.objects.count()
    response = upload(portal, signed, data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "was not registered" in page
    problems = {str(p) for p in packing.check(signed, packing.parse(data)[0])}
    assert "line 3, mac: 02:aa:00:00:00:zz is not a MAC address" in problems
    assert "line 4, model: antminer-s99 is not in the catalog" in problems
    assert "line 2, serial: SN-1 appears 2 times" in problems
    assert "line 5, serial: SN-1 appears 2 times" in problems
    assert "line 6, serial: TAKEN-1 is already registered" in problems
    assert "line 7, ip: 999.1.1.1 is not an IPv4 address" in problems
    for text in ("02:aa:00:00:00:zz is not a MAC address", "antminer-s99 is not in the catalog"):
        assert text in page
    assert Machine.objects.count() == before
    assert not Shipment.objects.exists()


def test_more_machines_than_the_contracts_kw_allow_is_refused(portal, signed):
    # 100 kW: thirty S19 Pros at 3,250 W take 97.5 kW; one more would be 100.75 kW.
    lines = [f"SN-{n},02:aa:00:00:{n // 256:02x}:{n % 256:02x},antminer-s19-pro,," for n in range(31)]
    response = upload(portal, signed, csv(*lines))
    assert "0.8 kW more than its 100" in response.content.decode()
    assert not Machine.objects.exists()
    assert upload(portal, signed, csv(*lines[:30])).status_code == 302


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"serial,model\nSN-1,antminer-s19\n", "the header lacks mac"),
        (HEADER.encode(), "lists no machine"),
        (b"\xff\xfe\x00", "is not UTF-8"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(portal, signed, data, message):
    assert message in upload(portal, signed, data).content.decode()


def test_a_draft_contract_takes_no_machines(portal, floor):
    response = upload(portal, floor["contract"], csv("SN-1,02:aa:00:00:00:01,antminer-s19-pro,,"))
    assert "takes no machines" in response.content.decode()


def test_another_tenants_contract_is_not_found(portal, signed):
    theirs = ContractFactory()
    assert upload(portal, theirs, csv("SN-1,02:aa:00:00:00:01,antminer-s19-pro,,")).status_code == 404
    assert not Machine.objects.exists()


# --- what spreadsheets and people really send ---------------------------------------------------


def test_a_list_with_bare_cr_line_endings_imports_like_any_other(portal, signed):
    # Excel's "CSV (Macintosh)" ends lines with CR alone.
    data = b"serial,mac,model\rSN-1,02:aa:00:00:00:01,antminer-s19-pro\rSN-2,02:aa:00:00:00:02,antminer-s19-pro\r"
    assert upload(portal, signed, data).status_code == 302
    assert sorted(Machine.objects.values_list("serial", flat=True)) == ["SN-1", "SN-2"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("S" * 65 + ",02:aa:00:00:00:09,antminer-s19-pro,,", "line 3, serial: is 65 characters long; at most 64"),
        ("SN-9,02:aa:00:00:00:09,antminer-s19-pro,,crate\x00 9", "line 3: contains a NUL byte"),
        ("SN-9\x00,02:aa:00:00:00:09,antminer-s19-pro,,", "line 3: contains a NUL byte"),
        ("SN-9,02:aa:00:00:00:09,antminer-s19-pro,," + "n" * 140_000, "line 3: cannot be read: field larger than"),
        ('"SN\n9",02:aa:00:00:00:09,antminer-s19-pro,,', "line 3, serial: 'SN\\n9' has spaces or control characters"),
        ("SN 9,02:aa:00:00:00:09,antminer-s19-pro,,", "line 3, serial: 'SN 9' has spaces or control characters"),
        ("SN-9,02:aa:00:00:00:09,antminer-s19-pro,," + "n" * 2_001, "line 3, notes: is 2,001 characters long"),
        ("SN-9," + "a" * 5_000 + ",antminer-s19-pro,,", "line 3, mac: is 5,000 characters long"),
    ],
)
def test_odd_cells_are_problems_on_their_line_and_nothing_is_registered(portal, signed, line, problem):
    data = csv("SN-1,02:aa:00:00:00:01,antminer-s19-pro,,", line)
    response = upload(portal, signed, data)
    assert response.status_code == 200
    rows, problems = packing.parse(data)
    problems = problems or packing.check(signed, rows)
    assert any(str(p).startswith(problem) for p in problems), [str(p) for p in problems]
    assert "was not registered" in response.content.decode()
    assert not Machine.objects.exists()


def test_a_problem_quotes_a_huge_cell_shortly(portal, signed):
    data = csv("SN-1," + "z" * 50_000 + ",antminer-s19-pro,,")
    page = upload(portal, signed, data).content.decode()
    assert "z" * 39 + "…" in page
    assert "z" * 100 not in page


def test_a_returned_machine_may_be_shipped_again_under_its_serial_and_mac(portal, signed):
    MachineFactory(serial="SN-BACK", mac="02:aa:00:00:00:77", contract=signed, status=MachineStatus.RETURNED)
    assert upload(portal, signed, csv("SN-BACK,02:aa:00:00:00:77,antminer-s19-pro,,")).status_code == 302
    assert Machine.objects.filter(serial="SN-BACK").count() == 2


def test_a_mac_on_hand_is_already_registered(portal, signed):
    MachineFactory(serial="SN-HERE", mac="02:aa:00:00:00:78", contract=signed, status=MachineStatus.RMA)
    page = upload(portal, signed, csv("SN-NEW,02-AA-00-00-00-78,antminer-s19-pro,,")).content.decode()
    assert "02:aa:00:00:00:78 is already registered" in page
