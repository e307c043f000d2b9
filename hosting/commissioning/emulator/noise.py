"""Deterministic noise: every reading and delay of a miner is a pure function of its seed and a counter."""

from __future__ import annotations

import hashlib
import math

_M64 = (1 << 64) - 1


def mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def u(seed: int, key: int) -> float:
    """Deterministic noise in [-1, 1) for (seed, key)."""
    return mix(seed ^ ((key * 0xD1B54A32D192ED03) & _M64)) * (2.0 / 18446744073709551616.0) - 1.0


def seed_of(serial: str) -> int:
    return int.from_bytes(hashlib.sha256(serial.encode()).digest()[:8], "big")


def smooth(seed: int, x: float) -> float:
    """Deterministic noise in [-1, 1) that wanders smoothly with `x`: `u` at the integers, eased
    between them (value noise), so a reading drifts rather than jumps."""
    i = math.floor(x)
    f = x - i
    f = f * f * (3.0 - 2.0 * f)
    a = u(seed, 0x5E00_0000 ^ (i & _M64))
    b = u(seed, 0x5E00_0000 ^ ((i + 1) & _M64))
    return a + (b - a) * f
