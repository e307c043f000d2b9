"""The world of the storage tests: a site's live machines, windows, the policy's bookkeeping."""

from __future__ import annotations

import datetime as dt

from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.telemetry.models import TelemetryPolicy, Window
from hosting.telemetry.services_store import policy_for
from tests.factories import racked

UTC = dt.UTC
INTERVAL_S = 300
STEP = dt.timedelta(seconds=INTERVAL_S)
T0 = dt.datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # an hour's start, far from today's partitions


def live_machines(floor, n: int, *, since: dt.datetime = T0 - dt.timedelta(days=1), circuit: int = 0) -> list[Machine]:
    """n machines racked on the floor and live since `since` (watched by telemetry)."""
    machines = racked(floor, n, circuit=circuit)
    Machine.objects.filter(pk__in=[m.pk for m in machines]).update(status=MachineStatus.LIVE, status_changed_at=since)
    return list(Machine.objects.filter(pk__in=[m.pk for m in machines]).order_by("pk"))


def window(machine: Machine, start: dt.datetime, **fields) -> Window:
    """A polled window (reachable, hashing, 95 TH/s, 3,250 W) unless `fields` say otherwise."""
    values = {
        "machine_status": MachineStatus.LIVE, "reachable": True, "hashing": True, "hashrate_ths": 95.0,
        "hashrate_pct": 100.0, "boards_seen": 3, "chips_seen": 342, "chip_temp_max_c": 71.5,
        "board_temp_max_c": 64.0, "inlet_temp_c": 24.0, "fans_ok": True, "power_w": 3250.0,
        "power_source": "pdu", "uptime_s": 86_400, "errors": "",
    }  # fmt: skip
    values.update(fields)
    return Window(start=start, machine=machine, site_id=machine.slot.rack.site_id, contract_id=machine.contract_id,
                  **values)  # fmt: skip


def unknown(machine: Machine, start: dt.datetime) -> Window:
    nothing = dict.fromkeys(
        ("reachable", "hashing", "hashrate_ths", "hashrate_pct", "boards_seen", "chips_seen", "chip_temp_max_c",
         "board_temp_max_c", "inlet_temp_c", "fans_ok", "power_w", "uptime_s")
    )  # fmt: skip
    return window(machine, start, power_source="", **nothing)


def accounting_from(site, start: dt.datetime, interval_s: int = INTERVAL_S) -> TelemetryPolicy:
    """The site's bookkeeping as if accounting had started at `start` (an hour's start)."""
    policy = policy_for(site)
    policy.poll_interval_s = interval_s
    policy.filled_until = start
    policy.hours_rolled_until = start
    policy.days_rolled_until = start.date()
    policy.save()
    return policy
