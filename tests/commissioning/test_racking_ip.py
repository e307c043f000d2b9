"""A machine is ready for its self-test only once it is on the network: racking takes its IP
(staff give it, or the site's DHCP lease list is imported), and commissioning waits for it."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from hosting import leases, services
from hosting.commissioning import runs
from hosting.lifecycle import MachineStatus
from hosting.models import CommissioningPolicy, Machine, SelfTestRun
from tests.factories import MachineFactory, UserFactory

CHANGELIST = "/admin/hosting/machine/"

DHCPD_LEASES = """\
# The format of this file is documented in the dhcpd.leases(5) manual page.
lease 10.20.0.7 {
  starts 4 2026/11/26 10:00:01;
  ends 4 2026/11/26 22:00:01;
  binding state active;
  next binding state free;
  hardware ethernet 02:aa:00:00:00:01;
  client-hostname "antminer";
}
lease 10.20.0.8 {
  binding state active;
  hardware ethernet 02:AA:00:00:00:02;
}
lease 10.20.0.9 {
  binding state active;
  hardware ethernet 02:aa:00:00:00:02;
}
lease 10.20.0.10 {
  binding state free;
  hardware ethernet 02:aa:00:00:00:03;
}
lease 10.20.0.11 {
  binding state active;
  hardware ethernet 02:aa:00:00:00:04;
}
lease 10.20.0.12 {
  binding state free;
  hardware ethernet 02:aa:00:00:00:04;
}
"""


def received(floor, n: int = 1, **fields) -> list[Machine]:
    contract = floor["contract"]
    return [
        MachineFactory(contract=contract, status=MachineStatus.RECEIVED, mac=f"02:aa:00:00:00:{i:02x}", **fields)
        for i in range(1, n + 1)
    ]


@pytest.fixture
def testing_on_rack(floor):
    return CommissioningPolicy.objects.create(site=floor["site"], commission_when_racked=True)


def test_a_machine_racked_without_an_ip_waits_for_it(floor, testing_on_rack, django_capture_on_commit_callbacks):
    (machine,) = received(floor)
    with django_capture_on_commit_callbacks(execute=True):
        services.rack_machine(machine, floor["slots"][0])
    machine.refresh_from_db()
    assert machine.status == MachineStatus.RACKED  # not a self-test that fails in a second
    assert not SelfTestRun.objects.filter(machine=machine).exists()

    with django_capture_on_commit_callbacks(execute=True):
        result = services.assign_ips(floor["site"].pk, {machine.mac: "10.20.0.7"})
    assert [m.pk for m in result.addressed] == [machine.pk]
    machine.refresh_from_db()
    assert (machine.ip, machine.status) == ("10.20.0.7", MachineStatus.TESTING)  # the address arrived: it starts
    assert SelfTestRun.objects.filter(machine=machine).count() == 1

    with django_capture_on_commit_callbacks(execute=True):  # the same lease again: nothing new
        assert services.assign_ips(floor["site"].pk, {machine.mac: "10.20.0.7"}).unchanged == 1
    assert SelfTestRun.objects.filter(machine=machine).count() == 1


def test_racking_takes_the_ip_staff_give(floor, testing_on_rack, django_capture_on_commit_callbacks):
    first, second, third = received(floor, 3)
    with django_capture_on_commit_callbacks(execute=True):
        services.rack_machine(first, floor["slots"][0], ip="10.20.0.5")
    first.refresh_from_db()
    assert (first.ip, first.status) == ("10.20.0.5", MachineStatus.TESTING)

    with pytest.raises(services.ServiceError, match="already the address of"):
        services.rack_machine(second, floor["slots"][1], ip="10.20.0.5")
    with pytest.raises(services.ServiceError, match="not an IPv4 address"):
        services.rack_machines([second], ips={second.pk: "10.20.0.300"})
    with pytest.raises(services.ServiceError, match="same IP"):
        services.rack_machines([second, third], ips={second.pk: "10.20.0.6", third.pk: "10.20.0.6"})
    assert Machine.objects.get(pk=second.pk).status == MachineStatus.RECEIVED  # nothing half-written

    with django_capture_on_commit_callbacks(execute=True):
        racked = services.rack_machines([second, third], ips={second.pk: "10.20.0.6", third.pk: ""})
    assert {m.serial: m.ip for m in racked} == {second.serial: "10.20.0.6", third.serial: None}
    assert set(SelfTestRun.objects.values_list("machine__serial", flat=True)) == {first.serial, second.serial}


def test_a_self_test_is_refused_for_a_machine_without_an_ip(floor):
    (machine,) = received(floor)
    services.rack_machine(machine, floor["slots"][0], commission=False)
    with pytest.raises(runs.NoIp, match="has no IP address yet") as refused:
        runs.request([machine])
    assert refused.value.code == "no_ip"
    assert refused.value.details() == {"serials": [machine.serial]}
    assert not SelfTestRun.objects.exists()


def test_dhcpd_leases_and_csv_lists_are_read():
    read = leases.parse(DHCPD_LEASES)
    # A later entry supersedes an earlier one; a lease no longer held gives no address.
    assert read.ip_by_mac == {"02:aa:00:00:00:01": "10.20.0.7", "02:aa:00:00:00:02": "10.20.0.9"}
    assert read.problems == []
    csv = leases.parse("mac,ip\n02-AA-00-00-00-05,10.20.1.5\n\n02aa.0000.0006, 10.20.1.6 ,extra\nnot-a-mac,10.0.0.1\n")
    assert csv.ip_by_mac == {"02:aa:00:00:00:05": "10.20.1.5", "02:aa:00:00:00:06": "10.20.1.6"}
    assert csv.problems == ["line 5: expected MAC,IP, got 'not-a-mac,10.0.0.1'"]


def test_import_leases_command_addresses_machines_by_mac(
    floor, testing_on_rack, tmp_path, capsys, django_capture_on_commit_callbacks
):
    waiting, other = received(floor, 2)
    services.rack_machine(waiting, floor["slots"][0])  # racked before the lease was known
    path = tmp_path / "dhcpd.leases"
    path.write_text(DHCPD_LEASES)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_leases", floor["site"].slug, str(path))
    assert "2 machine(s) given an IP" in capsys.readouterr().out
    waiting.refresh_from_db()
    other.refresh_from_db()
    assert (waiting.ip, other.ip) == ("10.20.0.7", "10.20.0.9")
    assert waiting.status == MachineStatus.TESTING  # it waited for its address, now it is tested
    assert other.status == MachineStatus.RECEIVED  # not racked: addressed, not tested


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))
    return client


def test_the_admin_rack_action_asks_each_machines_ip(
    floor, testing_on_rack, staff_client, django_capture_on_commit_callbacks
):
    first, second = received(floor, 2)
    MachineFactory(contract=floor["contract"], ip="10.20.0.40")  # the site's address plan so far
    page = staff_client.post(CHANGELIST, {"action": "rack", "index": "0", "_selected_action": [first.pk, second.pk]})
    assert page.status_code == 200
    assert f'name="ip_{first.pk}" value="10.20.0.41"' in page.content.decode()  # the next free, suggested
    with django_capture_on_commit_callbacks(execute=True):
        done = staff_client.post(
            CHANGELIST,
            {"action": "rack", "apply": "1", "_selected_action": [first.pk, second.pk],
             f"ip_{first.pk}": "10.20.0.41", f"ip_{second.pk}": ""},
            follow=True,
        )  # fmt: skip
    assert "Racked: 2. 1 wait for an IP" in done.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.ip, first.status) == ("10.20.0.41", MachineStatus.TESTING)
    assert (second.ip, second.status) == (None, MachineStatus.RACKED)


def test_the_admin_imports_a_lease_list(floor, testing_on_rack, staff_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    (machine,) = received(floor)
    url = reverse("admin:hosting_machine_import_leases")
    assert staff_client.get(url).status_code == 200
    upload = SimpleUploadedFile("leases.csv", b"02:aa:00:00:00:01,10.20.2.1\n")
    done = staff_client.post(url, {"site": floor["site"].pk, "file": upload}, follow=True)
    assert "1 machine(s) given an IP" in done.content.decode()
    assert Machine.objects.get(pk=machine.pk).ip == "10.20.2.1"


def test_an_ip_set_by_hand_starts_a_waiting_test(floor, testing_on_rack, django_capture_on_commit_callbacks):
    (machine,) = received(floor)
    services.rack_machine(machine, floor["slots"][0])
    with django_capture_on_commit_callbacks(execute=True):
        services.set_ip(machine, "10.20.3.1")
    machine.refresh_from_db()
    assert machine.status == MachineStatus.TESTING
