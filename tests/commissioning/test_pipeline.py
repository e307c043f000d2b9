"""The pipeline with real I/O against the emulated fleet: pyasic over TCP, SNMP over UDP.

In-process (no Celery, no database): every fault mode gives the right verdict with the
right reasons, and a hung miner fails within its deadline without holding up the others.
"""

import asyncio
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from hosting.catalog import MACHINE_MODELS
from hosting.commissioning import checks, pipeline
from hosting.commissioning.emulator import EMULATED_MODELS, INSTANT, Fleet, MinerSpec, PduSpec, running
from hosting.probes import MinerProbe, PduAddress, PduProbe, ProbeLimiter

PDU = PduAddress("127.99.0.1", 16161, "public", "apc-rpdu2")


CATALOG: dict[str, dict[str, Any]] = {str(m["slug"]): m for m in MACHINE_MODELS}


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


def test_the_burn_in_is_sampled_over_its_whole_window(verdicts):
    results, _ = verdicts
    readings = results[1].readings  # a healthy S19: a 3 s window sampled every second
    assert len(readings) == 4  # at 0 (identification), 1, 2 and 3 s
    assert (readings[-1].taken_at - readings[0].taken_at).total_seconds() >= 3.0


def test_every_chip_and_pcb_sensor_of_every_board_is_kept(verdicts):
    results, _ = verdicts
    for reading in results[1].readings:  # a stock S19: inlet and outlet side of each board
        assert [(len(b.chip_temps_c), len(b.pcb_temps_c)) for b in reading.boards] == [(4, 4)] * 3
        for board in reading.boards:
            assert (board.chip_temp_c, board.board_temp_c) == (max(board.chip_temps_c), max(board.pcb_temps_c))
    for reading in results[2].readings:  # a Whatsminer reports its coolest and hottest chip per board
        assert all(len(b.chip_temps_c) == 2 and len(b.pcb_temps_c) == 1 for b in reading.boards)


def one_machine(n: int, model: str, *, outlet: int | None = None, pdu: PduAddress | None = PDU, **plan):
    """A healthy emulated miner of its own at 127.97.x.y and its plan (outlet n unless given)."""
    ip, mac, serial = f"127.97.{n // 250}.{n % 250 + 1}", f"02:97:00:00:{n // 250:02x}:{n % 250 + 1:02x}", f"EMH{n:05d}"
    spec = MinerSpec(ip, model, serial, mac, inlet_temp_c=plan.pop("inlet_temp_c", 25.0))
    settings = {"burn_in_s": 2.0, "interval_s": 1.0, "timeout_s": 1.0, "deadline_s": 60.0, **plan}
    return spec, pipeline.Plan(
        run_id=n, ip=ip, expected=expected(model, mac, serial), pdu=pdu, outlet=outlet or n, **settings
    )


def test_hot_outlet_side_sensors_fail_thermal_though_each_boards_average_is_under_the_limit():
    spec, plan = one_machine(1, "antminer-s19-pro")
    spec.faults = frozenset({"hot_outlet"})  # outlet-side sensors hot, inlet-side ones cool
    with running(Fleet([spec], web=True, latency=INSTANT), [PduSpec(PDU.host, PDU.port, outlets={1: spec.ip})]):
        (result,) = asyncio.run(pipeline.commission_many([plan], concurrency=1))
    boards = [b for r in result.readings for b in r.boards]
    # What one figure per board (pyasic's: the mean of its sensors) would have judged: all cool.
    assert all(sum(b.chip_temps_c) / 4 < 95 and sum(b.pcb_temps_c) / 4 < 85 for b in boards)
    passed, reasons = result.verdict
    assert not passed
    assert [r.split(" reached")[0] for r in reasons] == ["thermal: chips", "thermal: boards"], reasons
    thermal = next(o for o in result.outcomes if o.name == "thermal")
    assert thermal.measurements["max_chip_temp_c"] > 95
    assert thermal.measurements["max_board_temp_c"] > 85


@pytest.mark.parametrize(
    ("outlet", "pdu", "reason"),
    [
        (30, PDU, "has no metered outlet 30"),  # the strip has 24
        (1, PduAddress("127.99.0.9", 16161, "public", "apc-rpdu2"), "the PDU at 127.99.0.9:16161 does not answer"),
    ],
    ids=["no-such-outlet", "pdu-silent"],
)
def test_a_metered_outlet_that_cannot_be_read_fails_power_instead_of_passing_as_unmetered(outlet, pdu, reason):
    spec, plan = one_machine(2, "antminer-s19-pro", outlet=outlet, pdu=pdu, burn_in_s=1.0)
    assert plan.expected.unmetered_accepts_nameplate  # the site would accept an unmetered outlet
    with running(Fleet([spec], web=True, latency=INSTANT), [PduSpec(PDU.host, PDU.port, outlets={1: spec.ip})]):
        (result,) = asyncio.run(pipeline.commission_many([plan], concurrency=1))
    passed, reasons = result.verdict
    assert not passed
    assert (
        reasons == [f"power: the outlet meter could not be read in 2 of 2 samples: {reason}"] or reason in (reasons[0])
    ), reasons
    assert all(r.startswith("power:") for r in reasons), reasons


def test_an_unreachable_miner_on_an_unmetered_outlet_fails_power():
    spec, plan = one_machine(3, "antminer-s19-pro", pdu=None)
    spec.faults = frozenset({"unreachable"})
    with running(Fleet([spec], web=True, latency=INSTANT)):
        (result,) = asyncio.run(pipeline.commission_many([plan], concurrency=1))
    power = next(o for o in result.outcomes if o.name == "power")
    assert not power.passed
    assert power.reasons == ("no power reading: the outlet is not metered and the miner does not answer",)


async def _nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A miner API that answers every command, but with nothing pyasic can read."""
    await reader.read(4096)
    writer.write(b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"MHS 1m":"abc"}],"DEVS":[{"ASC":"x"}]}\x00')
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("then", ["stops answering", "answers nonsense"])
def test_a_miner_that_goes_away_during_its_burn_in_is_reported_as_identified_then_unreachable(then):
    spec, plan = one_machine(4, "whatsminer-m30s-plus-plus", burn_in_s=4.0)
    emulated = Fleet([spec], web=True, latency=INSTANT)
    miners, pdus = MinerProbe(plan.timeout_s), PduProbe(plan.timeout_s)

    async def scenario() -> pipeline.Result:
        evidence = pipeline.Evidence()
        run = asyncio.create_task(pipeline.commission(plan, miners, pdus, evidence))
        while len(evidence.readings) < 2:  # identified, and one burn-in sample taken
            await asyncio.sleep(0.05)
        await asyncio.to_thread(emulated.set_faults, spec.ip, {"unreachable"})
        server = await asyncio.start_server(_nonsense, spec.ip, 4028) if then == "answers nonsense" else None
        try:
            return await run
        finally:
            pdus.close()
            if server is not None:
                server.close()

    with running(emulated, [PduSpec(PDU.host, PDU.port, outlets={4: spec.ip})]):
        result = asyncio.run(scenario())
    passed, reasons = result.verdict
    assert not passed
    assert next(o for o in result.outcomes if o.name == "identity").passed
    assert "hashing: identified, then unreachable in 3 of 5 samples" in reasons, reasons
    assert not any("does not answer at its address" in r for r in reasons), reasons


def test_a_run_that_fails_unexpectedly_takes_down_no_other():
    good_spec, good = one_machine(5, "antminer-s19-pro", burn_in_s=0.0)
    _, broken = one_machine(6, "antminer-s19-pro", burn_in_s=0.0, pdu=replace(PDU, profile="no-such-profile"))
    pdus = [PduSpec(PDU.host, PDU.port, outlets={5: good_spec.ip})]
    with running(Fleet([good_spec], web=True, latency=INSTANT), pdus):
        results = asyncio.run(pipeline.commission_many([good, broken], concurrency=2))
    assert results[0].verdict == (True, [])
    passed, reasons = results[1].verdict
    assert not passed
    assert reasons[0].startswith("identity: not measured: the run failed (KeyError"), reasons


def test_verdicts_stay_right_however_many_miners_a_process_is_told_to_probe_at_once():
    # pyasic's detection timeout is wall-clock: asked to probe 1,000 at once, a process that
    # cannot answer that many in time made every healthy miner "not answer".
    specs, plans = zip(
        *(one_machine(n, "antminer-s19-pro", pdu=None, burn_in_s=0.0, timeout_s=10.0) for n in range(10, 610)),
        strict=True,
    )
    with running(Fleet(list(specs), web=True, latency=INSTANT)):
        results = asyncio.run(pipeline.commission_many(plans, concurrency=1000))
    failed = [r.verdict[1] for r in results if not r.verdict[0]]
    assert not failed, (len(failed), failed[0])


def test_the_pdu_probe_reads_each_profile_and_says_why_it_cannot():
    spec, _ = one_machine(7, "antminer-s19-pro")
    apc = PduSpec("127.99.1.1", 16161, inlet_temp_c=27.5, outlets={3: spec.ip})
    px2 = PduSpec("127.99.1.2", 16161, community="px2", profile="raritan-px2", inlet_temp_c=31.2, outlets={5: spec.ip})
    probe = PduProbe(timeout_s=0.5)

    async def read_all() -> list:
        try:
            return [
                await probe.read(PduAddress(apc.host, apc.port, "public", "apc-rpdu2"), 3),
                await probe.read(PduAddress(px2.host, px2.port, "px2", "raritan-px2"), 5),
                await probe.read(PduAddress(px2.host, px2.port, "wrong", "raritan-px2"), 5),  # dropped, as agents do
                await probe.read(PduAddress(apc.host, apc.port, "public", "apc-rpdu2"), 25),  # a 24-outlet strip
            ]
        finally:
            probe.close()

    with running(Fleet([spec], web=True, latency=INSTANT), [apc, px2]):
        on_apc, on_px2, wrong_community, no_outlet = asyncio.run(read_all())
    for reading, inlet in ((on_apc, 27.5), (on_px2, 31.2)):
        assert reading.error is None
        assert 3_000 < reading.outlet_w < 3_600
        assert reading.circuit_w == pytest.approx(reading.outlet_w, abs=50)  # the only wired outlet (10 W steps)
        assert reading.inlet_temp_c == pytest.approx(inlet)
    assert wrong_community.error == "the PDU at 127.99.1.2:16161 does not answer"
    assert no_outlet.error == "the PDU at 127.99.1.1:16161 has no metered outlet 25"


def test_the_probe_limiter_keeps_the_queue_short_however_high_its_ceiling():
    # A fleet that answers more slowly the more it is asked at once (a queue): 10 ms plus
    # 1 ms per probe in flight. Allowed 1,000 at once, the limiter finds its own level.
    limiter = ProbeLimiter(ceiling=1000)
    limiter.budget_s = 0.1  # the queueing it accepts: 100 ms here, to keep the test short
    in_flight, peak, latencies = 0, 0, []

    async def probe() -> None:
        nonlocal in_flight, peak
        async with limiter.slot("identify", first=True):
            in_flight += 1
            peak = max(peak, in_flight)
            latency = 0.01 + 0.001 * in_flight
            latencies.append(latency)
            await asyncio.sleep(latency)
            in_flight -= 1

    async def fleet() -> None:
        await asyncio.gather(*(probe() for _ in range(3000)))

    asyncio.run(fleet())
    assert 16 < limiter.limit < 200
    assert peak < 250  # slow start stopped as answers began to slow, not after overshooting
    assert sorted(latencies[1500:])[750] < 0.2  # the median once settled: a short queue


def test_probes_of_runs_under_way_go_before_new_runs():
    limiter = ProbeLimiter(ceiling=1, floor=1, start=1)
    order = []

    async def probe(name: str, first: bool) -> None:
        async with limiter.slot("sample", first=first):
            order.append(name)
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        holder = asyncio.create_task(probe("holder", True))
        await asyncio.sleep(0)
        fresh = [asyncio.create_task(probe(f"new {n}", True)) for n in range(3)]
        await asyncio.sleep(0)
        going = asyncio.create_task(probe("a retry", False))
        await asyncio.gather(holder, *fresh, going)

    asyncio.run(scenario())
    assert order == ["holder", "a retry", "new 0", "new 1", "new 2"]
