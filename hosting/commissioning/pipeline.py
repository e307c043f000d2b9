"""One commissioning, start to verdict, with the probes injected: identity → power and
hashing burn-in (sampled together) → thermal → verdict. Many run at once on one event loop.

No database here either: the task hands in `Plan`s and stores the `Result`s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from hosting.commissioning import checks
from hosting.probes import NO_PDU_READING, MinerProbe, PduAddress, PduProbe, PduReading, ProbeLimiter
from hosting.readings import Reading

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    run_id: int
    ip: str | None
    expected: checks.Expected
    pdu: PduAddress | None  # with `outlet`, the outlet is metered; without either it is not
    outlet: int | None
    burn_in_s: float
    interval_s: float
    timeout_s: float  # each probe call
    deadline_s: float  # the whole run, from its first probe to its verdict


@dataclass
class Result:
    run_id: int
    outcomes: list[checks.Outcome]
    readings: list[Reading] = field(default_factory=list)

    @property
    def verdict(self) -> tuple[bool, list[str]]:
        return checks.verdict(self.outcomes)


@dataclass
class Evidence:
    """What a run has measured so far: judged as it stands if the run is cut short."""

    identity: checks.Outcome | None = None
    readings: list[Reading] = field(default_factory=list)


def burn_in_schedule(burn_in_s: float, interval_s: float) -> list[float]:
    """When to sample, in seconds after the first sample (identification's): every interval
    and at the end of the window, so that the samples cover the whole of it."""
    if burn_in_s <= 0:
        return []
    if interval_s <= 0:
        return [burn_in_s]
    offsets, k = [], 1
    while k * interval_s < burn_in_s - 1e-9:
        offsets.append(k * interval_s)
        k += 1
    return [*offsets, burn_in_s]


def _with_pdu(reading: Reading, pdu: PduReading) -> Reading:
    return replace(
        reading,
        outlet_w=pdu.outlet_w,
        circuit_w=pdu.circuit_w,
        inlet_temp_c=pdu.inlet_temp_c,
        outlet_error=pdu.error,
    )


async def commission(
    plan: Plan,
    miners: MinerProbe,
    pdus: PduProbe,
    evidence: Evidence | None = None,
    started: Callable[[], None] = lambda: None,
) -> Result:
    """Measure one machine and judge it. Every check is recorded, failed ones with reasons;
    what was measured is kept in `evidence` as it comes."""
    evidence = evidence if evidence is not None else Evidence()

    async def pdu_reading() -> PduReading:
        if plan.pdu is None or plan.outlet is None:
            return NO_PDU_READING
        return await pdus.read(plan.pdu, plan.outlet)

    if plan.ip is None:
        return _unidentified(plan, "the machine has no IP address")

    (seen, first, found), pdu = await asyncio.gather(miners.identify(plan.ip, started), pdu_reading())
    evidence.identity = checks.identity(plan.expected, seen)
    evidence.readings.append(_with_pdu(first, pdu))
    if found is None:
        power = checks.power(plan.expected, evidence.readings)
        why = "the miner does not answer"
        return Result(plan.run_id, [evidence.identity, power, *_skipped(why, "hashing", "thermal")], evidence.readings)

    first_at = time.monotonic()
    for offset in burn_in_schedule(plan.burn_in_s, plan.interval_s):
        await asyncio.sleep(max(0.0, first_at + offset - time.monotonic()))
        sample, pdu = await asyncio.gather(miners.sample(found), pdu_reading())
        evidence.readings.append(_with_pdu(sample, pdu))
    return _judged(plan, evidence)


def _judged(plan: Plan, evidence: Evidence, cut_short: str | None = None) -> Result:
    """Every check on what was measured; a burn-in cut short fails hashing, saying why."""
    assert evidence.identity is not None
    hashing = checks.hashing(plan.expected, evidence.readings)
    if cut_short:
        hashing = replace(hashing, passed=False, reasons=(*hashing.reasons, cut_short))
    outcomes = [
        evidence.identity,
        checks.power(plan.expected, evidence.readings),
        hashing,
        checks.thermal(plan.expected, evidence.readings),
    ]
    return Result(plan.run_id, outcomes, evidence.readings)


def _skipped(why: str, *names: str) -> list[checks.Outcome]:
    return [checks.not_measured(name, why) for name in names or ("power", "hashing", "thermal")]


def _unidentified(plan: Plan, why: str) -> Result:
    """Failed on identity for `why`, nothing else measured."""
    return Result(plan.run_id, [checks.Outcome("identity", False, (why,)), *_skipped(why)])


def _cut_short(plan: Plan, evidence: Evidence, why: str) -> Result:
    if evidence.identity is None:  # before it was identified: nothing was measured
        return Result(plan.run_id, _skipped(why, "identity", "power", "hashing", "thermal"))
    samples = len(evidence.readings)
    return _judged(plan, evidence, f"the burn-in stopped after {samples} sample{'s' * (samples != 1)}: {why}")


class Pipeline:
    """Commissions machines on one event loop, each run on its own deadline, the probes shared
    and their number in flight adapted to what the process can answer in time (ProbeLimiter):
    at most `ceiling` at once, however many runs are under way."""

    def __init__(self, ceiling: int, on_result: Callable[[Result], None] | None = None):
        self.limiter = ProbeLimiter(ceiling)
        self.on_result = on_result
        self._miners: dict[float, MinerProbe] = {}
        self._pdus: dict[float, PduProbe] = {}

    async def run(self, plan: Plan) -> Result:
        """One run to its verdict. One that overruns its deadline or fails unexpectedly is
        judged on what it measured, without holding up or taking down the others."""
        miners = self._miners.setdefault(plan.timeout_s, MinerProbe(plan.timeout_s, limiter=self.limiter))
        pdus = self._pdus.setdefault(plan.timeout_s, PduProbe(plan.timeout_s))
        evidence = Evidence()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:

                def started() -> None:  # the clock starts with the first probe, not in the queue
                    if deadline.when() is None:
                        deadline.reschedule(loop.time() + plan.deadline_s)

                result = await commission(plan, miners, pdus, evidence, started)
        except TimeoutError:
            result = _cut_short(plan, evidence, f"the run overran its {plan.deadline_s:.0f} s deadline")
        except Exception as exc:
            log.exception("self-test run %s failed", plan.run_id)
            result = _cut_short(plan, evidence, f"the run failed ({type(exc).__name__}: {exc})")
        if self.on_result is not None:
            self.on_result(result)
        return result

    def close(self) -> None:
        for pdus in self._pdus.values():
            pdus.close()
        self._pdus.clear()


async def commission_many(
    plans: Sequence[Plan], *, concurrency: int, on_result: Callable[[Result], None] | None = None
) -> list[Result]:
    """Commission many machines on one event loop, at most `concurrency` at a time."""
    pipeline = Pipeline(concurrency, on_result)
    gate = asyncio.Semaphore(concurrency)

    async def one(plan: Plan) -> Result:
        async with gate:
            return await pipeline.run(plan)

    try:
        return list(await asyncio.gather(*(one(p) for p in plans)))
    finally:
        pipeline.close()
