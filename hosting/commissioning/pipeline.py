"""One commissioning, start to verdict, with the probes injected: identity → power and
hashing burn-in (sampled together) → thermal → verdict. Many run at once on one event loop.

No database here either: the task hands in `Plan`s and stores the `Result`s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from hosting.commissioning import checks
from hosting.commissioning.probes import NO_PDU_READING, MinerProbe, PduAddress, PduProbe, PduReading


@dataclass(frozen=True)
class Plan:
    run_id: int
    ip: str | None
    expected: checks.Expected
    pdu: PduAddress | None
    outlet: int | None
    burn_in_s: float
    interval_s: float
    timeout_s: float  # each probe call
    deadline_s: float  # the whole run, identity to verdict


@dataclass
class Result:
    run_id: int
    outcomes: list[checks.Outcome]
    readings: list[checks.Reading] = field(default_factory=list)

    @property
    def verdict(self) -> tuple[bool, list[str]]:
        return checks.verdict(self.outcomes)


Heartbeat = Callable[[int], Awaitable[None]]


async def _no_heartbeat(run_id: int) -> None:
    return None


def _with_pdu(reading: checks.Reading, pdu: PduReading) -> checks.Reading:
    return replace(reading, outlet_w=pdu.outlet_w, circuit_w=pdu.circuit_w, inlet_temp_c=pdu.inlet_temp_c)


async def commission(plan: Plan, miners: MinerProbe, pdus: PduProbe, heartbeat: Heartbeat = _no_heartbeat) -> Result:
    """Measure one machine and judge it. Every check is recorded, failed ones with reasons."""

    async def pdu_reading() -> PduReading:
        if plan.pdu is None or plan.outlet is None:
            return NO_PDU_READING
        return await pdus.read(plan.pdu, plan.outlet)

    if plan.ip is None:
        return _unidentified(plan, "the machine has no IP address")

    (seen, first, miner), pdu = await asyncio.gather(miners.identify(plan.ip), pdu_reading())
    identity = checks.identity(plan.expected, seen)
    readings = [_with_pdu(first, pdu)]
    if miner is None:
        power = checks.power(plan.expected, readings)
        return Result(
            plan.run_id, [identity, power, *_skipped("the miner does not answer", "hashing", "thermal")], readings
        )

    started = time.monotonic()
    while time.monotonic() - started + plan.interval_s <= plan.burn_in_s:
        await heartbeat(plan.run_id)
        await asyncio.sleep(plan.interval_s)
        sample, pdu = await asyncio.gather(miners.sample(miner), pdu_reading())
        readings.append(_with_pdu(sample, pdu))
    outcomes = [
        identity,
        checks.power(plan.expected, readings),
        checks.hashing(plan.expected, readings),
        checks.thermal(plan.expected, readings),
    ]
    return Result(plan.run_id, outcomes, readings)


def _skipped(why: str, *names: str) -> list[checks.Outcome]:
    return [checks.not_measured(name, why) for name in names or ("power", "hashing", "thermal")]


def _unidentified(plan: Plan, why: str) -> Result:
    """Failed on identity for `why`, nothing else measured."""
    return Result(plan.run_id, [checks.Outcome("identity", False, (why,)), *_skipped(why)])


async def commission_many(
    plans: Sequence[Plan],
    *,
    concurrency: int,
    heartbeat: Heartbeat = _no_heartbeat,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Commission many machines on one event loop, at most `concurrency` at a time; one that
    overruns its deadline fails on its own without holding up the rest."""
    miners = {t: MinerProbe(t) for t in {p.timeout_s for p in plans}}
    pdus = PduProbe(min((p.timeout_s for p in plans), default=5.0))
    gate = asyncio.Semaphore(concurrency)

    async def one(plan: Plan) -> Result:
        async with gate:
            try:
                run = commission(plan, miners[plan.timeout_s], pdus, heartbeat)
                result = await asyncio.wait_for(run, plan.deadline_s)
            except TimeoutError:
                result = _unidentified(plan, f"the run overran its {plan.deadline_s:.0f} s deadline")
        if on_result is not None:
            on_result(result)
        return result

    try:
        return list(await asyncio.gather(*(one(p) for p in plans)))
    finally:
        pdus.close()
