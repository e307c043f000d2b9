"""The pipeline with real I/O against the emulated fleet: pyasic over TCP, SNMP over UDP.

In-process (no Celery, no database): every fault mode gives the right verdict with the
right reasons, and a hung miner fails within its deadline without holding up the others.
"""

import asyncio
import time
from decimal import Decimal

import pytest

from hosting.catalog import MACHINE_MODELS
from hosting.commissioning import checks, pipeline
from hosting.commissioning.emulator import EMULATED_MODELS, INSTANT, Fleet, MinerSpec, PduSpec, running
from hosting.commissioning.probes import PduAddress

PDU = PduAddress("127.99.0.1", 16161, "public", "apc-rpdu2")


CATALOG = {m["slug"]: m for m in MACHINE_MODELS}


def expected(model: str, mac: str, serial: str) -> checks.Expected:
    """What the catalog says of `model`, with the tenant's MAC and serial."""
    emulated, entry = EMULATED_MODELS[model], CATALOG[model]
    return checks.Expected(
        make=emulated.pyasic_make,
        model=entry["pyasic_model"],
        mac=mac,
        serial=serial,
        nominal_hashrate_ths=entry["nominal_hashrate_ths"],
        hashrate_tolerance_pct=Decimal("5"),
        nameplate_w=entry["nameplate_power_w"],
        power_tolerance_pct=Decimal("10"),
        hashboards=entry["hashboards"],
        chips_per_board=entry["chips_per_board"],
        fans=entry["fans"],
        max_chip_temp_c=Decimal("95"),
        max_board_temp_c=Decimal("85"),
        min_fan_rpm=1000,
        max_ambient_c=Decimal("40"),
        circuit_usable_w=54_628,
        unmetered_accepts_nameplate=True,
    )


CASES = [
    # (model, fault, passes, a reason that must appear)
    ("antminer-s19-pro", None, True, None),
    ("whatsminer-m30s-plus-plus", None, True, None),
    ("antminer-s19-pro", "dead_board", False, "hashing: 1 of 3 hashboards missing"),
    ("whatsminer-m30s-plus-plus", "dead_board", False, "hashing: 1 of 3 hashboards missing"),
    ("antminer-s19-pro", "missing_chips", False, "of 114 chips"),
    ("whatsminer-m30s-plus-plus", "missing_chips", False, "of 117 chips"),
    ("antminer-s19-pro", "under_hashing", False, "hashing: averaged"),
    ("antminer-s19-pro", "overheating", False, "thermal: chips reached"),
    ("whatsminer-m30s-plus-plus", "overheating", False, "thermal: chips reached"),
    ("antminer-s19-pro", "stopped_fan", False, "thermal: only 3 of 4 fans spin"),
    ("antminer-s19-pro", "over_drawing", False, "power: draws"),
    ("whatsminer-m30s-plus-plus", "over_drawing", False, "power: draws"),
    ("antminer-s19-pro", "wrong_model", False, "identity: model is S19j Pro, declared S19 Pro"),
    ("antminer-s19-pro", "wrong_mac", False, "identity: MAC is"),
    ("antminer-s19-pro", "unreachable", False, "identity: the miner does not answer"),
    ("antminer-s19-pro", "hung", False, "identity: the miner does not answer"),
    ("antminer-s19-pro", "flapping", False, "unreachable"),
]


def fleet_for(cases):
    miners, plans, outlets = [], [], {}
    for n, (model, fault, _, _) in enumerate(cases, start=1):
        ip = f"127.98.0.{n}"
        mac = f"02:98:00:00:00:{n:02x}"
        serial = f"EMU{n:05d}"
        miners.append(MinerSpec(ip, model, serial, mac, faults=frozenset({fault} if fault else ())))
        outlets[n] = ip
        plans.append(
            pipeline.Plan(
                run_id=n,
                ip=ip,
                expected=expected(model, mac, serial),
                pdu=PDU,
                outlet=n,
                burn_in_s=3.0,
                interval_s=1.0,
                timeout_s=2.0,
                deadline_s=20.0,
            )
        )
    pdu = PduSpec(PDU.host, PDU.port, outlets=outlets)
    return Fleet(miners, web=True, latency=INSTANT), [pdu], plans


@pytest.fixture(scope="module")
def verdicts():
    fleet, pdus, plans = fleet_for(CASES)
    with running(fleet, pdus):
        started = time.monotonic()
        results = asyncio.run(pipeline.commission_many(plans, concurrency=50))
        elapsed = time.monotonic() - started
    return {r.run_id: r for r in results}, elapsed


@pytest.mark.parametrize(("n", "case"), list(enumerate(CASES, start=1)), ids=lambda c: str(c))
def test_each_fault_gives_the_right_verdict_and_reason(verdicts, n, case):
    _, _, passes, reason = case
    results, _ = verdicts
    passed, reasons = results[n].verdict
    assert passed is passes, reasons
    if reason:
        assert any(reason in r for r in reasons), reasons


def test_a_healthy_run_records_every_measurement_with_its_units(verdicts):
    results, _ = verdicts
    result = results[1]
    by_name = {o.name: o for o in result.outcomes}
    assert set(by_name) == {"identity", "power", "hashing", "thermal"}
    assert by_name["power"].measurements["source"] == "pdu_outlet"
    assert 2_925 <= by_name["power"].measurements["power_w"] <= 3_575
    assert by_name["hashing"].measurements["samples"] == len(result.readings) >= 3
    assert by_name["thermal"].measurements["inlet_source"] == "pdu_sensor"
    assert all(r.outlet_w for r in result.readings)


def test_stock_antminers_report_no_watts_so_the_pdu_decides(verdicts):
    results, _ = verdicts
    assert all(r.power_w is None for r in results[1].readings)  # Antminer
    assert all(r.power_w for r in results[2].readings)  # Whatsminer reports its own


def test_a_hung_miner_fails_within_its_deadline_without_holding_up_the_others(verdicts):
    _, elapsed = verdicts
    # Everyone ran at once: the whole fleet took about one burn-in plus the hung one's
    # timeouts, not the sum of them.
    assert elapsed < 20
