"""The fleet's emulated time, and the air at the miners' intakes as it changes over a day.

Everything that happens to a miner over time (a story's events, a ramp after resuming, the air's
drift) is a function of the fleet's emulated time ``Clock.now_s()``: seconds since the fleet
started, running ``scale`` times as fast as the wall clock and moved on at once by ``advance`` —
so a test jumps forty seconds instead of sleeping them, and a demo can run a day in an hour.
The request timing (``latency``) and a flapping link stay on the wall clock: they are about the
network, not about the machine's day.
"""

from __future__ import annotations

import math
import time

from hosting.commissioning.emulator.noise import seed_of, smooth, u

DAY_S = 86400.0


class Clock:
    """Emulated seconds since the fleet started (``epoch``: the Unix time of its second 0)."""

    __slots__ = ("epoch", "mono0", "offset_s", "scale")

    def __init__(self, scale: float = 1.0, epoch: float | None = None, mono0: float | None = None):
        if not scale > 0:
            raise ValueError(f"the time scale must be positive, not {scale!r}")
        self.scale = float(scale)
        self.epoch = epoch
        self.mono0 = mono0
        self.offset_s = 0.0

    @property
    def started(self) -> bool:
        return self.mono0 is not None

    def start(self) -> None:
        """Second 0 is now, unless the clock was started already (shared by a fleet's shards)."""
        if self.mono0 is None:
            self.mono0 = time.monotonic()
        if self.epoch is None:
            self.epoch = time.time()

    def now_s(self) -> float:
        if self.mono0 is None:
            return self.offset_s
        return (time.monotonic() - self.mono0) * self.scale + self.offset_s

    def advance(self, seconds: float) -> None:
        """Move emulated time on by `seconds` at once (tests: a minute without waiting it)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.offset_s += float(seconds)

    def wall_s(self, t: float | None = None) -> float:
        """The Unix time that emulated second `t` (now by default) stands for."""
        return (self.epoch if self.epoch is not None else time.time()) + (self.now_s() if t is None else t)


# The air: a day's swing peaking mid-afternoon (each site at its own hour), a rack's own offset (near
# the intake or the hot aisle), and a slow wander shared by the rack (weather, the hall's load).
_PEAK_S = 15 * 3600.0  # the hottest hour of the day, UTC, before a site's own shift
_SITE_SHIFT_S = 3 * 3600.0  # ± a site's hour of the hottest air
_RACK_SHARE = 0.3  # a rack's offset, ± this share of the day's swing
_WANDER_SHARE = 0.25  # the slow wander, ± this share of the swing …
_WANDER_KNOT_S = 1200.0  # … turning about every 20 minutes


def air_temp_c(mean_c: float, swing_c: float, site: str, rack: str, wall_s: float) -> float:
    """The intake air at Unix time `wall_s` of a rack at a site whose air averages `mean_c` and
    swings ± `swing_c` over a day (0: constant air, exactly `mean_c`)."""
    if not swing_c:
        return mean_c
    site_seed = seed_of(f"air-site:{site}")
    rack_seed = seed_of(f"air-rack:{site}/{rack}")
    peak = _PEAK_S + _SITE_SHIFT_S * u(site_seed, 1)
    day = swing_c * math.cos(2.0 * math.pi * ((wall_s - peak) % DAY_S) / DAY_S)
    offset = _RACK_SHARE * swing_c * u(rack_seed, 2)
    wander = _WANDER_SHARE * swing_c * smooth(rack_seed, wall_s / _WANDER_KNOT_S)
    return mean_c + day + offset + wander
