"""The world of the alert tests: live machines on the `floor` fixture's circuits, and windows
written for them through the one write path (hosting.telemetry.storage)."""

from __future__ import annotations

import datetime as dt

import pytest

from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.telemetry import storage
from hosting.telemetry.models import CircuitWindow, TelemetryPolicy, Window
from tests.factories import MembershipFactory, racked

T0 = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
INTERVAL_S = 60
STEP = dt.timedelta(seconds=INTERVAL_S)

HEALTHY = {
    "reachable": True,
    "hashing": True,
    "hashrate_ths": 95.0,
    "hashrate_pct": 100.0,
    "boards_seen": 3,
    "chips_seen": 228,
    "chip_temp_max_c": 72.0,
    "board_temp_max_c": 60.0,
    "inlet_temp_c": 24.0,
    "fans_ok": True,
    "power_w": 3250.0,
    "power_source": "pdu",
}
UNKNOWN = dict.fromkeys(HEALTHY) | {"power_source": ""}
DOWN = UNKNOWN | {"reachable": False, "hashing": False}


def at(i: int) -> dt.datetime:
    return T0 + i * STEP


def live(floor, n: int, circuit: int = 0) -> list[Machine]:
    """n machines racked on one of the floor's circuits and live (watched by telemetry)."""
    machines = racked(floor, n, circuit=circuit)
    Machine.objects.filter(pk__in=[m.pk for m in machines]).update(status=MachineStatus.LIVE)
    return list(Machine.objects.filter(pk__in=[m.pk for m in machines]).select_related("model").order_by("pk"))


def window(machine: Machine, start: dt.datetime, **fields) -> Window:
    values = {**HEALTHY, **fields}
    return Window(
        start=start, machine=machine, site_id=machine.contract.site_id, contract_id=machine.contract_id,
        machine_status=machine.status, **values,
    )  # fmt: skip


def write(machines, start: dt.datetime, **fields) -> None:
    storage.write_windows([window(m, start, **fields) for m in machines])


def write_circuit(circuit, start: dt.datetime, measured_w: float | None) -> None:
    storage.write_circuit_windows(
        [CircuitWindow(start=start, circuit=circuit, site_id=circuit.feed.site_id, measured_w=measured_w)]
    )


@pytest.fixture
def site_policy(floor):
    """The floor's site polled every minute, with the default rules (offline after 3)."""
    return TelemetryPolicy.objects.create(site=floor["site"], poll_interval_s=INTERVAL_S)


@pytest.fixture
def fleet(floor, site_policy):
    """Two live machines of the floor's tenant on circuit 0."""
    return live(floor, 2)


@pytest.fixture
def tenant_user(floor):
    return MembershipFactory(tenant=floor["contract"].tenant).user


def other_tenants_machine(floor, circuit: int = 1) -> Machine:
    """A live machine at the same site, of another tenant (its own contract)."""
    from tests.factories import ContractFactory, TenantFactory

    machine = live(floor, 1, circuit=circuit)[0]
    theirs = TenantFactory()
    contract = ContractFactory(tenant=theirs, site=floor["site"])
    Machine.objects.filter(pk=machine.pk).update(tenant=theirs, contract=contract)
    return Machine.objects.select_related("model", "tenant", "contract").get(pk=machine.pk)


def open_alerts(floor, machines, i: int = 0, **fields) -> None:
    """Windows with a stopped fan (or `fields`) for `machines`, evaluated: an alert each."""
    from hosting.telemetry import alerting

    write(machines, at(i), **(fields or {"fans_ok": False}))
    alerting.evaluate(floor["site"].pk, at(i), now=at(i))
