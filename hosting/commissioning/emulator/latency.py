"""How fast an emulated miner answers, and in what order: real firmware is slow, uneven and
single-threaded.

Measured on stock fleets: bmminer's RPC answers a command in a few to tens of milliseconds, the
Antminer web UI's CGIs (lighttpd forking shell and C programs on a small ARM board) in tens to
hundreds, lighttpd's own answers (a Digest challenge, a 404) in a millisecond or two; some units
are several times slower than their neighbours, and now and then one stalls for a second or more.
Each miner serves one RPC command and one CGI at a time, so concurrent requests to it queue.

A profile (``PROFILES``) gives the spread; each miner draws its own pace from it by its seed, and
each request's delay from a per-miner counter, so a fleet is slow in the same places run after run.
Delays never block the event loop: a ``Line`` schedules each answer with ``loop.call_later``.
``instant`` answers at once (unit tests that need speed); ``realistic`` is the default.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hosting.commissioning.emulator.noise import mix, u


@dataclass(frozen=True)
class LatencyProfile:
    """The spread of a fleet's answer times. Ranges are (low, high) of each miner's median."""

    rpc_ms: tuple[float, float]  # one RPC command
    cgi_ms: tuple[float, float]  # one web UI CGI
    quick_ms: tuple[float, float]  # lighttpd's own answers: a challenge, a page, an error
    jitter: float  # per request: the median × e^(jitter · t), t in [-2, 2)
    slow_share: float  # miners far slower than the rest …
    slow_factor: float  # … by this factor
    stall_share: float  # requests that stall (a slow miner's: × 8) …
    stall_s: tuple[float, float]  # … for this long


INSTANT = "instant"
REALISTIC = "realistic"
PROFILES: dict[str, LatencyProfile | None] = {
    INSTANT: None,
    REALISTIC: LatencyProfile(
        rpc_ms=(3.0, 20.0),
        cgi_ms=(40.0, 200.0),
        quick_ms=(0.5, 3.0),
        jitter=0.35,
        slow_share=0.08,
        slow_factor=4.0,
        stall_share=0.004,
        stall_s=(1.0, 2.5),
    ),
}
HEAVY_RPC = frozenset({"stats", "devs", "edevs"})  # long replies: twice the work
HEAVY_CGI = frozenset({"/cgi-bin/stats.cgi"})

_RPC, _CGI, _QUICK = 1, 2, 3


def _between(lo: float, hi: float, x: float) -> float:
    """`x` in [-1, 1) mapped onto [lo, hi), spread evenly on a log scale."""
    return lo * (hi / lo) ** ((x + 1.0) / 2.0)


class Latency:
    """One miner's pace: how long each of its answers takes, in seconds."""

    __slots__ = ("cgi_s", "k", "profile", "quick_s_", "rpc_s_", "seed", "slow", "stall_share")

    def __init__(self, profile: LatencyProfile, seed: int):
        self.profile = profile
        self.seed = mix(seed ^ 0x1A7E)
        self.slow = (u(self.seed, 1) + 1.0) / 2.0 < profile.slow_share
        factor = profile.slow_factor if self.slow else 1.0
        self.rpc_s_ = _between(*profile.rpc_ms, u(self.seed, 2)) * factor / 1000.0
        self.cgi_s = _between(*profile.cgi_ms, u(self.seed, 3)) * factor / 1000.0
        self.quick_s_ = _between(*profile.quick_ms, u(self.seed, 4)) / 1000.0
        self.stall_share = profile.stall_share * (8.0 if self.slow else 1.0)
        self.k = 0

    @classmethod
    def of(cls, name: str, seed: int) -> Latency | None:
        """A miner's pace under profile `name` (None: it answers at once)."""
        profile = PROFILES[name]
        return None if profile is None else cls(profile, seed)

    def _draw(self, kind: int, median_s: float, may_stall: bool) -> float:
        self.k = k = self.k + 1
        key = (k << 4) | kind
        t = u(self.seed, key) + u(self.seed, key ^ 0x55)  # roughly normal, in [-2, 2)
        delay = median_s * math.exp(self.profile.jitter * t)
        if may_stall and (u(self.seed, key ^ 0xAA) + 1.0) / 2.0 < self.stall_share:
            delay += _between(*self.profile.stall_s, u(self.seed, key ^ 0xCC))
        return delay

    def rpc_s(self, command: str) -> float:
        parts = command.split("+")  # btminer's joined reads cost each part
        weight = sum(2.0 if c in HEAVY_RPC else 1.0 for c in parts)
        return self._draw(_RPC, self.rpc_s_ * weight, True)

    def cgi(self, path: str) -> float:
        return self._draw(_CGI, self.cgi_s * (1.5 if path in HEAVY_CGI else 1.0), True)

    def quick_s(self) -> float:
        return self._draw(_QUICK, self.quick_s_, False)


class Line:
    """One firmware thread: requests are served one at a time in arrival order, each after its
    delay on the event loop. A request whose client gave up while it waited is dropped."""

    __slots__ = ("busy", "waiting")

    def __init__(self) -> None:
        self.busy = False
        self.waiting: deque[tuple[float, Callable[[], None], Callable[[], bool]]] = deque()

    def submit(self, delay_s: float, serve: Callable[[], None], alive: Callable[[], bool]) -> None:
        if delay_s <= 0 and not self.busy and not self.waiting:
            serve()  # the instant profile: no timer at all
            return
        self.waiting.append((delay_s, serve, alive))
        if not self.busy:
            self._next()

    def _next(self) -> None:
        while self.waiting:
            delay_s, serve, alive = self.waiting.popleft()
            if not alive():
                continue
            self.busy = True
            asyncio.get_running_loop().call_later(delay_s, self._done, serve, alive)
            return
        self.busy = False

    def _done(self, serve: Callable[[], None], alive: Callable[[], bool]) -> None:
        try:
            if alive():
                serve()
        finally:
            self._next()
