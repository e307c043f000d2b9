"""One emulated miner: its spec, its faults, and the readings it gives (deterministic per serial).

A miner's stable biases come from a hash of its serial (or ``MinerSpec.seed``) and every reply of a
given kind uses the next sample of a per-miner counter, so the same sequence of requests gives the
same numbers run after run, varying a little from sample to sample.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hosting.commissioning.emulator.models import EMULATED_MODELS

if TYPE_CHECKING:
    from hosting.commissioning.emulator.server import Fleet


class Fault(StrEnum):
    """What can be wrong with an emulated miner; each is something commissioning must catch."""

    DEAD_BOARD = "dead_board"  # one hashboard not detected
    MISSING_CHIPS = "missing_chips"  # one board short of MISSING_CHIPS chips
    UNDER_HASHING = "under_hashing"  # every board at 80 %
    OVERHEATING = "overheating"  # every sensor hot; the firmware raises its over-temperature error
    STOPPED_FAN = "stopped_fan"  # one fan at 0 RPM
    OVER_DRAWING = "over_drawing"  # 25 % over its rated watts
    WRONG_MODEL = "wrong_model"  # reports its `impostor`'s model
    WRONG_MAC = "wrong_mac"  # reports another MAC than its packing list's
    UNREACHABLE = "unreachable"  # nothing listens (powered off); draws nothing
    HUNG = "hung"  # accepts connections, never answers
    FLAPPING = "flapping"  # answers, then its link comes and goes every `flap_period_s`


FAULTS = frozenset(Fault)

RPC_PORT = 4028
WEB_PORT = 80
WEB_REALM = "antMiner Configuration"
WEB_USER = "root"
LISTEN_BACKLOG = 128
MISSING_CHIPS = 20  # chips a board loses under the missing_chips fault


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass
class MinerSpec:
    ip: str  # 127.x.y.z
    model: str  # a key of EMULATED_MODELS
    serial: str
    mac: str  # "aa:bb:cc:dd:ee:ff"
    hostname: str = ""  # "" → the firmware default ("Antminer" / "WhatsMiner")
    faults: frozenset[Fault] = frozenset()
    inlet_temp_c: float = 25.0  # air at the miner's intake; temperatures follow it
    seed: int | None = None  # None → derived from the serial
    web_password: str = "root"  # noqa: S105 (the stock default) Antminer web UI digest password

    def __post_init__(self) -> None:
        self.faults = check_faults(self.faults)
        if self.model not in EMULATED_MODELS:
            raise ValueError(f"{self.ip}: unknown model {self.model!r}; known: {sorted(EMULATED_MODELS)}")
        try:
            addr = ipaddress.IPv4Address(self.ip)
        except ValueError:
            raise ValueError(f"not an IPv4 address: {self.ip!r}") from None
        if not addr.is_loopback:
            raise ValueError(f"{self.ip}: emulated miners live on 127.0.0.0/8 only")
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}", self.mac):
            raise ValueError(f"{self.ip}: bad MAC {self.mac!r}")
        self.mac = self.mac.replace("-", ":").lower()


def check_faults(faults: Iterable[str]) -> frozenset[Fault]:
    """`faults` as Fault members (names are accepted); an unknown name is a ValueError."""
    if isinstance(faults, str):
        faults = (faults,)
    names = {str(f) for f in faults}
    unknown = names - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
    return frozenset(Fault(f) for f in names)


# --------------------------------------------------------------------------------------------
# Deterministic noise
# --------------------------------------------------------------------------------------------

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


# Sample channels: each kind of reply draws from its own counter, so the n-th reply of a kind is
# the same whatever order concurrent requests arrive in.
CH_RPC_SUMMARY, CH_RPC_STATS, CH_WEB_STATS, CH_WEB_SUMMARY, CH_DEVS, CH_WM_SUMMARY, CH_POWER, CH_PSU = range(8)


# --------------------------------------------------------------------------------------------
# Per-miner state
# --------------------------------------------------------------------------------------------


class Board:
    __slots__ = ("asic", "chip_c", "chips", "ideal_ghs", "pcb_c", "rate_ghs", "slot", "sn")

    def __init__(self, slot, chips, rate_ghs, ideal_ghs, chip_c, pcb_c, sn, asic):
        self.slot = slot
        self.chips = chips  # 0 → dead (not reported)
        self.rate_ghs = rate_ghs
        self.ideal_ghs = ideal_ghs
        self.chip_c = chip_c
        self.pcb_c = pcb_c
        self.sn = sn
        self.asic = asic


def _asic_string(chips: int) -> str:
    """bmminer's chain map: one 'o' per good chip, in groups of eight."""
    groups = ["o" * 8] * (chips // 8)
    if chips % 8:
        groups.append("o" * (chips % 8))
    return " ".join(groups)


class Profile:
    """Everything a miner reports that only changes with its faults (rebuilt on set_faults)."""

    __slots__ = (
        "boards",
        "errors_am",
        "errors_wm",
        "fans",
        "faults",
        "hostname",
        "mac",
        "model",
        "power_w",
        "present",
        "rate_ideal_ghs",
        "static",
    )

    def __init__(self, spec: MinerSpec, seed: int, faults: frozenset[Fault]):
        declared = EMULATED_MODELS[spec.model]
        model = EMULATED_MODELS[declared.impostor] if Fault.WRONG_MODEL in faults else declared
        self.model = model
        self.faults = faults
        n = model.boards
        inlet = spec.inlet_temp_c - 25.0

        if Fault.WRONG_MAC in faults:
            octets = [int(x, 16) for x in spec.mac.split(":")]
            h = mix(seed ^ 0x5A5A)
            for i in range(3, 6):
                octets[i] ^= ((h >> (8 * i)) & 0xFF) or 0x5A
            mac = ":".join(f"{o:02X}" for o in octets)
        else:
            mac = spec.mac.upper()
        self.mac = mac
        self.hostname = spec.hostname or ("Antminer" if model.is_antminer else "WhatsMiner")

        dead = (mix(seed ^ 0xDEAD) % n) if Fault.DEAD_BOARD in faults else -1
        short = ((dead + 1) % n if dead >= 0 else mix(seed ^ 0xC41F) % n) if Fault.MISSING_CHIPS in faults else -1
        ideal = model.hashrate_ths * 1000.0 / n
        hashing = 0.80 if Fault.UNDER_HASHING in faults else 1.0
        hot = Fault.OVERHEATING in faults
        boards = []
        for slot in range(n):
            chips = model.chips_per_board
            if slot == dead:
                chips = 0
            elif slot == short:
                chips -= MISSING_CHIPS
            bias = 0.01 * u(seed, 0x100 + slot)  # ±1 % per board, stable per serial
            rate = ideal * hashing * (chips / model.chips_per_board) * (1.0 + bias)
            if hot:
                chip_c = 104.5 + 3.0 * u(seed, 0x200 + slot)
                pcb_c = 89.5 + 1.5 * u(seed, 0x300 + slot)
            else:
                chip_c = 68.5 + 2.0 * u(seed, 0x200 + slot)
                pcb_c = 60.0 + 1.5 * u(seed, 0x300 + slot)
            sn = f"{spec.serial[-10:]}B{slot}{mix(seed + slot) % 100000:05d}"
            boards.append(
                Board(slot, chips, rate, ideal, chip_c + inlet, pcb_c + inlet, sn, _asic_string(chips) if chips else "")
            )
        self.boards = tuple(boards)
        self.present = tuple(b for b in boards if b.chips)
        self.rate_ideal_ghs = model.hashrate_ths * 1000.0

        fans = []
        stopped = mix(seed ^ 0xFA11) % model.fans if Fault.STOPPED_FAN in faults else -1
        for i in range(model.fans):
            if i == stopped:
                fans.append(0.0)
            elif hot:
                fans.append(5940.0 + 20.0 * u(seed, 0x400 + i))
            else:
                fans.append(5450.0 + 350.0 * u(seed, 0x400 + i))
        self.fans = tuple(fans)

        power = float(model.power_w) * (1.0 + 0.02 * u(seed, 0x500))  # ±2 % per unit
        if dead >= 0:
            power *= (n - 1) / n
        if short >= 0:
            power *= 1.0 - 0.8 * MISSING_CHIPS / (model.chips_per_board * n)
        if Fault.OVER_DRAWING in faults:
            power *= 1.25
        self.power_w = power

        # Hard faults the firmware itself raises.
        am_err, wm_err = [], []
        if dead >= 0:
            am_err.append(("rate", "e", f"Chain {dead} not found, hashboard offline"))
            wm_err.append(530 + dead)  # "Slot {n} not found."
        if stopped >= 0:
            am_err.append(("fans", "e", f"Fan {stopped + 1} speed is 0, fan lost"))
            wm_err.append(110 + stopped)  # intake / exhaust fan speed error
        if hot:
            am_err.append(("temp", "e", "Temperature too high, over temp protect"))
            wm_err.extend(350 + b.slot for b in self.present)  # "Slot {n} temperature protecting."
        self.errors_am = am_err
        self.errors_wm = wm_err
        self.static: dict[str, bytes] = {}  # replies that never change, built on first use


class Miner:
    __slots__ = (
        "blink",
        "conns",
        "flap_since",
        "fleet",
        "ha1",
        "ip",
        "opening",
        "profile",
        "seed",
        "servers",
        "spec",
        "ticks",
        "uptime0",
    )

    def __init__(self, fleet: Fleet, spec: MinerSpec):
        self.fleet = fleet
        self.spec = spec
        self.ip = spec.ip
        self.seed = spec.seed if spec.seed is not None else seed_of(spec.serial)
        self.ticks = [0] * 8
        self.servers: list[asyncio.base_events.Server] = []
        self.opening = False
        self.blink = False
        self.conns: set[asyncio.Transport] = set()
        self.flap_since: float | None = None  # a flapping miner's first contact (monotonic)
        self.uptime0 = 900 + mix(self.seed ^ 0x0B) % 5400  # 15–105 min since boot at fleet start
        self.ha1 = hashlib.md5(f"{WEB_USER}:{WEB_REALM}:{spec.web_password}".encode()).hexdigest()  # noqa: S324
        self.profile = Profile(spec, self.seed, spec.faults)

    def tick(self, ch: int) -> int:
        k = self.ticks[ch]
        self.ticks[ch] = k + 1
        return k

    def elapsed(self) -> int:
        return self.uptime0 + int(time.monotonic() - self.fleet._t0)

    def power_sample(self, ch: int) -> float:
        p = self.profile
        if Fault.UNREACHABLE in p.faults:
            return 0.0
        return p.power_w * (1.0 + 0.005 * u(self.seed, (self.tick(ch) << 8) | 0xF0 | ch))

    def board_samples(self, ch: int) -> list[tuple[Board, float, float, float]]:
        """(board, GH/s, chip °C, PCB °C) for each present board, next sample of channel ``ch``."""
        k = self.tick(ch) << 12 | ch << 8
        seed = self.seed
        out = []
        for b in self.profile.present:
            key = k | b.slot << 2
            out.append(
                (
                    b,
                    b.rate_ghs * (1.0 + 0.005 * u(seed, key)),
                    b.chip_c + 0.8 * u(seed, key | 1),
                    b.pcb_c + 0.6 * u(seed, key | 2),
                )
            )
        return out

    def fan_samples(self, ch: int) -> list[int]:
        k = (self.tick(ch) << 12) | (ch << 8) | 0x80
        seed = self.seed
        return [round(f + 40.0 * u(seed, k | i)) if f else 0 for i, f in enumerate(self.profile.fans)]
