"""Telemetry rows written directly, as the poller and the rollups would leave them: for
tests of what is read and shown (tests of the writers go through the real poll)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence

from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.telemetry.models import CircuitWindow, ContractDay, MachineHour, PollRun, Window
from hosting.telemetry.storage import write_circuit_windows, write_windows
from tests.factories import racked

INTERVAL = dt.timedelta(minutes=5)
NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


def live(floor, n: int, circuit: int = 0, **fields) -> list[Machine]:
    """n machines racked on a floor's circuit and live (as commissioning leaves them)."""
    machines = racked(floor, n, circuit, **fields)
    Machine.objects.filter(pk__in=[m.pk for m in machines]).update(status=MachineStatus.LIVE)
    for m in machines:
        m.refresh_from_db()
    return machines


def window(machine: Machine, start: dt.datetime, state: str = "hashing", **fields) -> Window:
    """One window: state hashing, unreachable or unknown (no poll happened)."""
    nominal = float(machine.model.nominal_hashrate_ths)
    base = {"machine_status": machine.status, "site_id": machine.contract.site_id, "contract_id": machine.contract_id}
    if state == "unknown":
        return Window(start=start, machine_id=machine.pk, **base)
    if state == "unreachable":
        return Window(start=start, machine_id=machine.pk, reachable=False, hashing=False, hashrate_ths=0.0,
                      hashrate_pct=0.0, power_w=0.0, power_source="pdu", **base)  # fmt: skip
    values = {
        "reachable": True, "hashing": True, "hashrate_ths": nominal, "hashrate_pct": 100.0,
        "boards_seen": machine.model.hashboards, "chips_seen": machine.model.hashboards * machine.model.chips_per_board,
        "chip_temp_max_c": 70.0, "board_temp_max_c": 60.0, "inlet_temp_c": 25.0, "fans_ok": True,
        "power_w": float(machine.model.nameplate_power_w), "power_source": "pdu", "uptime_s": 3600,
    }  # fmt: skip
    values.update(fields)
    if "hashrate_ths" in fields and "hashrate_pct" not in fields:
        values["hashrate_pct"] = 100 * fields["hashrate_ths"] / nominal
    return Window(start=start, machine_id=machine.pk, **base, **values)


def starts(end: dt.datetime, count: int) -> list[dt.datetime]:
    """`count` window starts ending with the one before `end`."""
    return [end - (count - i) * INTERVAL for i in range(count)]


def write_day(
    machines: Sequence[Machine],
    *,
    end: dt.datetime = NOW,
    count: int = 288,
    state: Callable[[Machine, int], str] = lambda m, i: "hashing",
    fields: Callable[[Machine, int], dict] = lambda m, i: {},
    unknown: Collection[int] = (),
) -> list[dt.datetime]:
    """A day (by default) of windows of the machines up to `end`, with a finished poll per
    site and interval — except the intervals in `unknown`, which no poll covered."""
    times = starts(end, count)
    rows = []
    for i, start in enumerate(times):
        for m in machines:
            rows.append(window(m, start, "unknown" if i in unknown else state(m, i), **fields(m, i)))
    write_windows(rows)
    sites = {m.contract.site_id for m in machines}
    PollRun.objects.bulk_create(
        [
            PollRun(site_id=s, window_start=start, dispatched_at=start, finished_at=start + INTERVAL,
                    machines=len(machines), answered=len(machines), windows_written=len(machines))
            for i, start in enumerate(times) if i not in unknown for s in sites
        ],
        ignore_conflicts=True,
    )  # fmt: skip
    return times


def roll_hours(machines: Sequence[Machine]) -> None:
    """MachineHour rows from the machines' windows, as the rollup defines them."""
    by_hour: dict[tuple[int, dt.datetime], list[Window]] = defaultdict(list)
    for w in Window.objects.filter(machine_id__in=[m.pk for m in machines]):
        by_hour[w.machine_id, w.start.replace(minute=0, second=0, microsecond=0)].append(w)
    rows = []
    for (machine_id, hour), ws in by_hour.items():
        known = [w for w in ws if w.reachable is not None]
        power = sum(w.power_w or 0 for w in known) / len(known) if known else None
        rows.append(
            MachineHour(
                hour=hour, machine_id=machine_id, site_id=ws[0].site_id, contract_id=ws[0].contract_id,
                windows=len(ws), windows_unknown=len(ws) - len(known),
                windows_reachable=sum(bool(w.reachable) for w in ws), windows_hashing=sum(bool(w.hashing) for w in ws),
                hashrate_ths_avg=sum(w.hashrate_ths or 0 for w in known) / len(known) if known else None,
                power_w_avg=power, energy_wh=(power or 0) * len(known) / 12,
                chip_temp_max_c=max((w.chip_temp_max_c for w in known if w.chip_temp_max_c is not None), default=None),
            )
        )  # fmt: skip
    MachineHour.objects.bulk_create(rows)


def roll_day(contract_id: int, day: dt.date) -> ContractDay:
    """A ContractDay from the contract's hours of that (UTC) day."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    hours = list(
        MachineHour.objects.filter(contract_id=contract_id, hour__gte=start, hour__lt=start + dt.timedelta(days=1))
    )
    return ContractDay.objects.create(
        day=day, contract_id=contract_id, machines=len({h.machine_id for h in hours}),
        windows=sum(h.windows for h in hours), windows_unknown=sum(h.windows_unknown for h in hours),
        windows_reachable=sum(h.windows_reachable for h in hours),
        windows_hashing=sum(h.windows_hashing for h in hours),
        hashrate_ths_avg=None, energy_wh=sum(h.energy_wh for h in hours),
    )  # fmt: skip


def circuit_windows(circuit, site_id: int, values_w: Sequence[float | None], *, end: dt.datetime = NOW) -> None:
    """Measured watts of a circuit, one per interval, the last one just before `end`."""
    write_circuit_windows(
        [CircuitWindow(start=s, circuit_id=circuit.pk, site_id=site_id, measured_w=w, outlets_read=1)
         for s, w in zip(starts(end, len(values_w)), values_w, strict=True)]
    )  # fmt: skip


def another_floor(slots: int = 4, **site_fields) -> dict:
    """A second site's rack: one 415 V 100 A three-phase circuit (16 S19s) and a contract there."""
    from tests.factories import CircuitFactory, ContractFactory, RackFactory, SiteFactory, SlotFactory

    rack = RackFactory(site=SiteFactory(**site_fields))
    circuit = CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100)
    return {
        "site": rack.site, "rack": rack, "circuits": [circuit], "contract": ContractFactory(site=rack.site),
        "slots": [SlotFactory(rack=rack, circuit=circuit, position=n + 1) for n in range(slots)],
    }  # fmt: skip


def write_hours(
    machines: Sequence[Machine], *, end: dt.datetime, hours: int, hashrate_ths: Callable[[Machine, int], float | None]
) -> None:
    """MachineHour rows for the `hours` before `end` (a month's chart without a month of windows);
    `hashrate_ths(machine, i)` None makes the hour unknown."""
    last = end.replace(minute=0, second=0, microsecond=0)
    rows = []
    for i in range(hours):
        hour = last - (hours - i) * dt.timedelta(hours=1)
        for m in machines:
            ths = hashrate_ths(m, i)
            known = ths is not None
            power = float(m.model.nameplate_power_w) if ths else 0.0
            rows.append(
                MachineHour(
                    hour=hour, machine_id=m.pk, site_id=m.contract.site_id, contract_id=m.contract_id, windows=12,
                    windows_unknown=0 if known else 12, windows_reachable=12 if known else 0,
                    windows_hashing=12 if ths else 0, hashrate_ths_avg=ths, power_w_avg=power if known else None,
                    energy_wh=power if known else 0.0, chip_temp_max_c=70.0 if ths else None,
                )
            )  # fmt: skip
    MachineHour.objects.bulk_create(rows, ignore_conflicts=True)
