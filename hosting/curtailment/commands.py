"""Sending curtailment commands to miners through pyasic, and reading their outlets: asyncio,
no database (the on-site task records what comes back).

A command is pyasic's own method on the miner object (`stop_mining`, `resume_mining`,
`set_power_limit`), as pyasic sends it to each firmware (an Antminer's sleep mode through its
web UI's miner config, a Whatsminer's privileged `power_off`/`power_on`). Each attempt has a
timeout; a miner that does not answer, answers False or raises is tried again with backoff, up
to `attempts` times. Every attempt is returned as an `Attempt`, to be recorded as a Command row.
The miner object is built from the class telemetry already detected (`known`, shared through
the cache) when there is one, else by pyasic's detection. A stock Antminer's command runs in a
web session (`probes.web_session`, aiohttp): its config read and posted with one challenge.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from hosting.probes import Found, MinerProbe, PduAddress, PduProbe, PduWalk, ProbeLimiter, web_client, web_session

log = logging.getLogger(__name__)

STOP, RESUME, POWER_LIMIT = "stop_mining", "resume_mining", "set_power_limit"
ACTIONS = frozenset({STOP, RESUME, POWER_LIMIT})
ANSWER_MAX = 300  # Command.answer


@dataclass(frozen=True)
class Order:
    """One machine to command, `offset_s` after the task began (its place in the ramp)."""

    event_machine_id: int
    ip: str
    model: str  # the model's slug: with the IP, the key of its miner object
    action: str
    offset_s: float = 0.0
    power_limit_w: int | None = None

    @property
    def key(self) -> str:
        return f"{self.ip}|{self.model}"


@dataclass(frozen=True)
class Attempt:
    """One try of one command and what came of it."""

    event_machine_id: int
    command: str
    sent_at: dt.datetime
    answered_at: dt.datetime | None
    ok: bool
    answer: str


@dataclass
class Sent:
    attempts: list[Attempt] = field(default_factory=list)
    learned: dict[str, str] = field(default_factory=dict)  # key → pyasic class, detected now

    def ok(self) -> set[int]:
        return {a.event_machine_id for a in self.attempts if a.ok}


class Commander:
    """Sends the orders of one task, `concurrency` miners at a time."""

    def __init__(self, timeout_s: float, attempts: int = 3, backoff_s: float = 0.5, concurrency: int = 200):
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.probe = MinerProbe(timeout_s, attempts=1, limiter=ProbeLimiter(ceiling=concurrency, start=concurrency))
        self.gate = asyncio.Semaphore(concurrency)

    async def send(self, orders: Sequence[Order], known: Mapping[str, str] | None = None) -> Sent:
        known = known or {}
        sent = Sent()
        loop = asyncio.get_running_loop()
        began = loop.time()

        async def one(order: Order) -> None:
            delay = began + order.offset_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self.gate:
                await self._one(order, known, sent, client)

        async with web_client() as client:
            await asyncio.gather(*(one(o) for o in orders))
        return sent

    async def _one(self, order: Order, known: Mapping[str, str], sent: Sent, client: aiohttp.ClientSession) -> None:
        found: Found | None = None
        for attempt in range(self.attempts):
            at = _now()
            try:
                if found is None:
                    found = await self._miner(order, known, sent)
                if found is None:
                    sent.attempts.append(Attempt(order.event_machine_id, order.action, at, None, False, "no answer"))
                else:
                    ok = await asyncio.wait_for(self._call(found, order, client), self.timeout_s)
                    answer = "done" if ok else "the miner refused the command"
                    sent.attempts.append(Attempt(order.event_machine_id, order.action, at, _now(), bool(ok), answer))
                    if ok:
                        return
            except (TimeoutError, OSError) as exc:
                sent.attempts.append(
                    Attempt(order.event_machine_id, order.action, at, None, False, f"no answer ({type(exc).__name__})")
                )
                found = None  # look again: it may have rebooted into another address's state
            except Exception as exc:  # pyasic raises what it meets in odd answers (APIError, KeyError, …)
                log.info("%s: %s failed", order.ip, order.action, exc_info=True)
                sent.attempts.append(
                    Attempt(
                        order.event_machine_id,
                        order.action,
                        at,
                        _now(),
                        False,
                        f"{type(exc).__name__}: {exc}"[:ANSWER_MAX],
                    )
                )
            if attempt + 1 < self.attempts:
                await asyncio.sleep(self.backoff_s * 2**attempt)

    async def _miner(self, order: Order, known: Mapping[str, str], sent: Sent) -> Found | None:
        kind = known.get(order.key)
        if kind is not None and (found := MinerProbe.build(order.ip, kind)) is not None:
            return found
        found = await self.probe.find(order.ip)
        if found is not None and (kind := MinerProbe.kind_of(found)) is not None:
            sent.learned[order.key] = kind
        return found

    @staticmethod
    async def _call(found: Found, order: Order, client: aiohttp.ClientSession) -> bool:
        miner = found.miner
        async with web_session(miner, client):  # a stock Antminer's config read and post, one challenge
            if order.action == STOP:
                return bool(await miner.stop_mining())
            if order.action == RESUME:
                return bool(await miner.resume_mining())
            if order.action == POWER_LIMIT and order.power_limit_w:
                return bool(await miner.set_power_limit(order.power_limit_w))
        raise ValueError(f"unknown curtailment action {order.action!r}")


async def walk_pdus(pdus: Sequence[PduAddress], timeout_s: float, retries: int = 1) -> dict[PduAddress, PduWalk]:
    """Every outlet of each PDU, one walk each, all at once."""
    probe = PduProbe(timeout_s, retries=retries)
    try:
        walks = await asyncio.gather(*(probe.walk(p) for p in pdus))
    finally:
        probe.close()
    return dict(zip(pdus, walks, strict=True))


async def read_outlets(
    outlets: Mapping[PduAddress, Sequence[int]], timeout_s: float, retries: int = 1
) -> dict[PduAddress, PduWalk]:
    """The watts of these outlets only, each PDU asked once, all PDUs at once."""
    probe = PduProbe(timeout_s, retries=retries)
    try:
        reads = await asyncio.gather(*(probe.outlets(p, numbers) for p, numbers in outlets.items()))
    finally:
        probe.close()
    return dict(zip(outlets, reads, strict=True))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
