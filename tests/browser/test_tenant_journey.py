"""A tenant ships machines and watches them commissioned — in a real browser against a real
server, a real Celery worker and the emulated fleet."""

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from capacity.models import Pdu
from hosting import queues, services
from hosting.commissioning import runs
from hosting.commissioning.emulator import INSTANT, Fleet, MinerSpec, PduSpec, running
from hosting.lifecycle import MachineStatus
from hosting.models import CommissioningPolicy, Machine, Shipment
from tests.factories import PASSWORD, MembershipFactory, PhaseFactory
from tests.workers import celery_worker

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PDU = ("127.86.1.1", 16186)
MACHINES = [  # (serial, mac, model, ip, fault)
    ("NH-0001", "02:86:00:00:00:01", "antminer-s19-pro", "127.86.0.1", None),
    ("NH-0002", "02:86:00:00:00:02", "antminer-s19-pro", "127.86.0.2", None),
    ("NH-0003", "02:86:00:00:00:03", "whatsminer-m30s-plus-plus", "127.86.0.3", None),
    ("NH-0004", "02:86:00:00:00:04", "antminer-s19-pro", "127.86.0.4", "overheating"),
]


def packing_list(bad_mac: bool) -> bytes:
    lines = ["serial,mac,model,ip,notes"]
    for n, (serial, mac, model, ip, _) in enumerate(MACHINES):
        if bad_mac and n == 2:
            mac = "02:86:00:00:00:GG"  # a typo in the sheet
        lines.append(f"{serial},{mac},{model},{ip},crate {n // 2 + 1}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def world(floor):
    site, contract = floor["site"], floor["contract"]
    PhaseFactory(site=site, energized_on=dt.date(2020, 1, 1), mw=Decimal("10"))
    contract = services.sign_contract(contract)
    CommissioningPolicy.objects.create(
        site=site, burn_in_s=3, sample_interval_s=Decimal("0.5"), probe_timeout_s=2, commission_when_racked=False
    )
    circuit = floor["circuits"][0]
    circuit.pdu = Pdu.objects.create(site=site, name="PDU A", host=PDU[0], port=PDU[1])
    circuit.save()
    user = MembershipFactory(tenant=contract.tenant).user
    miners = [
        MinerSpec(ip, model, serial, mac, faults=frozenset({fault} if fault else ()))
        for serial, mac, model, ip, fault in MACHINES
    ]
    outlets = {n + 1: m[3] for n, m in enumerate(MACHINES)}
    return {"site": site, "contract": contract, "user": user, "floor": floor,
            "fleet": Fleet(miners, web=True, latency=INSTANT),
            "pdus": [PduSpec(PDU[0], PDU[1], outlets=outlets)]}  # fmt: skip


def rack_and_commission(world) -> None:
    """What site staff do when the shipment arrives: receive, rack (outlets wired), test."""
    shipment = Shipment.objects.get()
    machines = list(shipment.machines.order_by("serial"))
    for machine in machines:
        services.transition(machine, MachineStatus.RECEIVED, reason="arrived at the site")
    free = [s for s in world["floor"]["slots"] if s.circuit_id == world["floor"]["circuits"][0].pk][: len(machines)]
    for n, (machine, slot) in enumerate(zip(machines, free, strict=True), start=1):
        slot.outlet = n
        slot.save()
        services.rack_machine(machine, slot, commission=False)
    runs.start_batch(list(shipment.machines.all()), shipment=shipment, label=f"packing list {shipment}")


def test_a_tenant_ships_machines_and_watches_them_commissioned(world, live_server, page, shot):
    page.set_default_timeout(20_000)
    # Log in.
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("input[name=username]", world["user"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")
    shot("dashboard")

    # Upload a packing list with one bad row: told which, nothing registered.
    page.goto(f"{live_server.url}/portal/contracts/{world['contract'].pk}/")
    page.set_input_files(
        "input[name=file]", files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": packing_list(True)}]
    )
    page.fill("input[name=reference]", "PO-2021-0714")
    page.click("#packing-list button[type=submit]")
    expect(page.locator(".problems")).to_contain_text("02:86:00:00:00:GG is not a MAC address")
    expect(page.locator(".problem")).to_have_count(1)
    assert not Machine.objects.exists()
    shot("packing-list-refused")

    # Fix it and upload again.
    page.set_input_files(
        "input[name=file]", files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": packing_list(False)}]
    )
    page.fill("input[name=reference]", "PO-2021-0714")
    page.fill("input[name=tracking_number]", "1Z86")
    page.click("#packing-list button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("4 machine(s) on their way")
    assert set(Machine.objects.values_list("status", flat=True)) == {MachineStatus.IN_TRANSIT}
    shot("packing-list-registered")

    queue = queues.queue_for(world["site"].slug)
    with running(world["fleet"], world["pdus"]), celery_worker(queues=(queue,)):
        # The machines arrive; staff rack them and start their self-tests.
        page.goto(f"{live_server.url}/portal/")
        page.evaluate("window.notReloaded = true")
        rack_and_commission(world)
        page.reload()  # the batch appears …
        page.evaluate("window.notReloaded = true")
        batch = page.locator(".batch").first
        expect(batch).to_be_visible()
        shot("commissioning-started")
        # … and its bar fills without another reload (htmx polls it).
        expect(page.locator('.batch[data-done="true"]')).to_be_visible(timeout=90_000)
        assert page.evaluate("window.notReloaded") is True
        expect(page.locator(".batch .passed-count").first).to_have_text("passed 3")
        expect(page.locator(".batch .failed-count").first).to_have_text("failed 1")
        # The status cards and the events came along with the bar, still without a reload.
        expect(page.locator('.status-card[data-status="live"] .figure')).to_have_text("3")
        expect(page.locator('.status-card[data-status="failed"] .figure')).to_have_text("1")
        expect(page.locator('.status-card[data-status="testing"] .figure')).to_have_text("0")
        expect(page.locator("#events")).to_contain_text("passed")
        assert page.evaluate("window.notReloaded") is True
        shot("commissioning-done")

    # The evidence of one that passed and of the one that failed.
    page.goto(f"{live_server.url}/portal/machines/?q=NH-0001")
    page.click("text=NH-0001")
    expect(page.locator(".run .badge.passed").first).to_be_visible()
    expect(page.locator("table.samples").first).to_contain_text("board 2:")
    shot("evidence-passed")
    page.goto(f"{live_server.url}/portal/machines/?q=NH-0004")
    page.click("text=NH-0004")
    expect(page.locator(".run .errors").first).to_contain_text("thermal: chips reached")
    expect(page.locator("td.measured").first).not_to_contain_text("_")  # labels, not raw keys
    expect(page.locator(".run").first).to_contain_text("Hottest chip:")
    shot("evidence-failed")
    assert Machine.objects.filter(status=MachineStatus.LIVE).count() == 3

    # Its next step: ask for a re-test; the request shows open.
    page.select_option("#machine-request-form select[name=kind]", "retest")
    page.fill("#machine-request-form textarea[name=note]", "cleaned the intake filters")
    page.click("#machine-request-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Asked for a re-test")
    expect(page.locator(".open-request")).to_contain_text("re-test")
    expect(page.locator("tr.request.open")).to_have_count(1)
    shot("retest-requested")

    # A logout link followed by GET asks, and its button logs out.
    page.goto(f"{live_server.url}/portal/logout/")
    expect(page.locator("h1")).to_have_text("Log out of Haven?")
    shot("logout-confirm")
    page.click("#logout-confirm button")
    expect(page).to_have_url(f"{live_server.url}/portal/login/")
