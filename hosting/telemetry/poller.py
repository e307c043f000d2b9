"""The on-site poll of a chunk of machines: asyncio, no database.

Each worker process keeps one `Poller`: the pyasic miner object of every machine it has
polled (by IP and model, so a swapped machine gets a new one), built once and reused poll
after poll, and dropped when a read fails so the next poll looks again. A miner object is
built from its class when another process already detected what answers there (`known`,
shared through the cache), else by pyasic's detection. A poll asks each miner only for
what a window records (`probes.POLL`), spreads its reads over `spread_s`, and walks each
PDU once for all its outlets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hosting.probes import POLL, Found, MinerProbe, PduAddress, PduProbe, PduWalk, ProbeLimiter
from hosting.readings import Reading

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One machine to poll: where it answers, what model it is, and its outlet."""

    machine_id: int
    ip: str
    model: str  # the model's slug: with the IP, the key of its miner object
    pdu: PduAddress | None = None
    outlet: int | None = None

    @property
    def key(self) -> str:
        return f"{self.ip}|{self.model}"


@dataclass
class Polled:
    """What one poll of a chunk found."""

    readings: dict[int, Reading] = field(default_factory=dict)  # machine id → reading (its outlet filled in)
    walks: dict[PduAddress, PduWalk] = field(default_factory=dict)
    built: int = 0  # miner objects built by detection during this poll
    rebuilt: int = 0  # built from a class another process detected (no request)
    reused: int = 0  # taken from this process's cache
    learned: dict[str, str] = field(default_factory=dict)  # key → miner class, detected now
    forgotten: list[str] = field(default_factory=list)  # keys whose read failed: detect again next time


class Poller:
    """The polls of one worker process (see the module's docstring)."""

    def __init__(self, timeout_s: float, concurrency: int, pdu_retries: int = 1):
        self.limiter = ProbeLimiter(ceiling=concurrency, start=concurrency)
        self.miners = MinerProbe(timeout_s, attempts=1, limiter=self.limiter)
        self.pdus = PduProbe(timeout_s, retries=pdu_retries)
        self.cache: dict[str, Found] = {}

    async def poll(
        self, targets: Sequence[Target], *, spread_s: float = 0.0, known: Mapping[str, str] | None = None
    ) -> Polled:
        """Read every target once: the PDUs walked first (each once), then the miners, the i-th
        of n starting at i/n of `spread_s`."""
        known = known or {}
        polled = Polled()
        pdus = list(dict.fromkeys(t.pdu for t in targets if t.pdu is not None and t.outlet is not None))
        walks = await asyncio.gather(*(self.pdus.walk(p) for p in pdus))
        polled.walks = dict(zip(pdus, walks, strict=True))
        loop = asyncio.get_running_loop()
        began = loop.time()
        step = spread_s / len(targets) if targets else 0.0

        async def one(n: int, target: Target) -> None:
            delay = began + n * step - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            polled.readings[target.machine_id] = self._metered(await self._read(target, known, polled), target, polled)

        await asyncio.gather(*(one(n, t) for n, t in enumerate(targets)))
        return polled

    async def _read(self, target: Target, known: Mapping[str, str], polled: Polled) -> Reading:
        key = target.key
        found = self.cache.get(key)
        if found is not None:
            polled.reused += 1
        elif key in known and (found := MinerProbe.build(target.ip, known[key])) is not None:
            polled.rebuilt += 1
        else:
            found = await self.miners.find(target.ip)
            if found is None:
                polled.forgotten.append(key)
                return Reading(_now(), reachable=False)
            polled.built += 1
            if (kind := MinerProbe.kind_of(found)) is not None:
                polled.learned[key] = kind
        reading = await self.miners.sample(found, include=POLL, kind="poll")
        if reading.reachable:
            self.cache[key] = found
        else:  # gone, or no longer what we took it for: look again next time
            self.cache.pop(key, None)
            polled.learned.pop(key, None)
            polled.forgotten.append(key)
        return reading

    @staticmethod
    def _metered(reading: Reading, target: Target, polled: Polled) -> Reading:
        if target.pdu is None or target.outlet is None:
            return reading
        walk = polled.walks[target.pdu]
        outlet_w = walk.outlet_w.get(target.outlet)
        error = walk.error or (None if outlet_w is not None else f"the PDU has no metered outlet {target.outlet}")
        return dataclasses.replace(
            reading, outlet_w=outlet_w, outlet_error=error, circuit_w=walk.device_w, inlet_temp_c=walk.inlet_temp_c
        )

    def close(self) -> None:
        self.pdus.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
