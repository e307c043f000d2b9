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
from typing import TYPE_CHECKING, NamedTuple

from hosting.commissioning.emulator.latency import PROFILES, Latency, Line
from hosting.commissioning.emulator.models import EMULATED_MODELS
from hosting.commissioning.emulator.noise import mix, seed_of, u

if TYPE_CHECKING:
    from hosting.commissioning.emulator.server import Fleet


class Fault(StrEnum):
    """What can be wrong with an emulated miner; each is something commissioning must catch."""

    DEAD_BOARD = "dead_board"  # one hashboard not detected
    MISSING_CHIPS = "missing_chips"  # one board short of MISSING_CHIPS chips
    UNDER_HASHING = "under_hashing"  # every board at 80 %
    OVERHEATING = "overheating"  # every sensor hot; the firmware raises its over-temperature error
    # Only the outlet side hot: outlet chip sensors ~97–98 °C and PCB ~91–92 °C, inlet ones ~82–83 °C
    # and ~75–76 °C. Averages stay under the limits and the firmware raises nothing: only a check
    # that reads every sensor catches it.
    HOT_OUTLET = "hot_outlet"
    STOPPED_FAN = "stopped_fan"  # one fan at 0 RPM
    OVER_DRAWING = "over_drawing"  # 25 % over its rated watts
    WRONG_MODEL = "wrong_model"  # reports its `impostor`'s model
    WRONG_MAC = "wrong_mac"  # reports another MAC than its packing list's
    UNREACHABLE = "unreachable"  # nothing listens (powered off); draws nothing
    HUNG = "hung"  # accepts connections, never answers
    FLAPPING = "flapping"  # answers, then its link comes and goes every `flap_period_s`
    # Antminer: lighttpd still answers (challenges, 404s) but its CGIs never do, while the RPC
    # answers: identified, but nothing the web UI alone reports (serial, hashboards) can be read.
    WEB_TIMEOUT = "web_timeout"


class Quirk(StrEnum):
    """Habits of real, healthy firmware that commissioning must live with (not faults)."""

    SLOW_PSU = "slow_psu"  # Whatsminer: get_psu takes 2–4 s (the PSU's slow bus), holding up its RPC


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
    quirks: frozenset[Quirk] = frozenset()
    latency: str | None = None  # a key of latency.PROFILES; None → the fleet's

    def __post_init__(self) -> None:
        self.faults = check_faults(self.faults)
        self.quirks = frozenset(Quirk(q) for q in ((self.quirks,) if isinstance(self.quirks, str) else self.quirks))
        if self.latency is not None and self.latency not in PROFILES:
            raise ValueError(f"{self.ip}: unknown latency profile {self.latency!r}; known: {sorted(PROFILES)}")
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


# Sample channels: each kind of reply draws from its own counter, so the n-th reply of a kind is
# the same whatever order concurrent requests arrive in.
(CH_RPC_SUMMARY, CH_RPC_STATS, CH_WEB_STATS, CH_WEB_SUMMARY, CH_DEVS, CH_WM_SUMMARY, CH_POWER, CH_PSU, CH_SLOW_PSU) = (
    range(9)
)


# --------------------------------------------------------------------------------------------
# Per-miner state
# --------------------------------------------------------------------------------------------


class Board:
    """One hashboard: its chips and rate, and its four temperature sensors of each kind."""

    __slots__ = ("asic", "chip_sensors_c", "chips", "ideal_ghs", "pcb_sensors_c", "rate_ghs", "slot", "sn")

    def __init__(self, slot, chips, rate_ghs, ideal_ghs, chip_sensors_c, pcb_sensors_c, sn, asic):
        self.slot = slot
        self.chips = chips  # 0 → dead (not reported)
        self.rate_ghs = rate_ghs
        self.ideal_ghs = ideal_ghs
        # Stock S19 order: inlet, inlet, outlet, outlet (the air warms across the board).
        self.chip_sensors_c: tuple[float, ...] = chip_sensors_c
        self.pcb_sensors_c: tuple[float, ...] = pcb_sensors_c
        self.sn = sn
        self.asic = asic


# Sensor offsets from a board's mean, inlet side first.
_CHIP_SPREAD = (-5.0, -4.0, 4.0, 5.0)
_PCB_SPREAD = (-4.0, -3.0, 3.0, 4.0)
# HOT_OUTLET's sensors: outlet chips over a 95 °C limit, PCB outlet over 85 °C, every mean under.
_HOT_OUTLET_CHIP = (82.0, 83.0, 97.0, 98.0)
_HOT_OUTLET_PCB = (75.0, 76.0, 91.0, 92.0)


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
            chip_sensors = tuple(chip_c + inlet + d for d in _CHIP_SPREAD)
            pcb_sensors = tuple(pcb_c + inlet + d for d in _PCB_SPREAD)
            if Fault.HOT_OUTLET in faults and not hot:
                chip_sensors = tuple(t + inlet for t in _HOT_OUTLET_CHIP)
                pcb_sensors = tuple(t + inlet for t in _HOT_OUTLET_PCB)
            sn = f"{spec.serial[-10:]}B{slot}{mix(seed + slot) % 100000:05d}"
            asic = _asic_string(chips) if chips else ""
            boards.append(Board(slot, chips, rate, ideal, chip_sensors, pcb_sensors, sn, asic))
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


class Sample(NamedTuple):
    """One reading of one board: GH/s and its sensors (°C, inlet side first)."""

    board: Board
    rate_ghs: float
    chip_c: tuple[float, ...]
    pcb_c: tuple[float, ...]

    @property
    def chip_mean_c(self) -> float:
        return sum(self.chip_c) / len(self.chip_c)

    @property
    def pcb_mean_c(self) -> float:
        return sum(self.pcb_c) / len(self.pcb_c)


class Miner:
    """One emulated miner's state on its fleet's loop: readings, listeners, connections, pace."""

    __slots__ = (
        "blink",
        "cgi_line",
        "conns",
        "flap_since",
        "fleet",
        "ha1",
        "ip",
        "latency",
        "opening",
        "profile",
        "rpc_line",
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
        self.ticks = [0] * 9
        self.servers: list[asyncio.base_events.Server] = []
        self.opening = False
        self.blink = False
        self.conns: set[asyncio.Transport] = set()
        self.flap_since: float | None = None  # a flapping miner's first contact (monotonic)
        self.uptime0 = 900 + mix(self.seed ^ 0x0B) % 5400  # 15–105 min since boot at fleet start
        self.ha1 = hashlib.md5(f"{WEB_USER}:{WEB_REALM}:{spec.web_password}".encode()).hexdigest()  # noqa: S324
        self.profile = Profile(spec, self.seed, spec.faults)
        self.latency = Latency.of(spec.latency or fleet.latency, self.seed)
        # Stock firmware serves one RPC command and one CGI at a time: requests wait their turn.
        self.rpc_line = Line()
        self.cgi_line = Line()

    def tick(self, ch: int) -> int:
        k = self.ticks[ch]
        self.ticks[ch] = k + 1
        return k

    def rpc_delay_s(self, command: str) -> float:
        """How long the RPC takes over `command` (its turn on the line aside)."""
        delay = self.latency.rpc_s(command) if self.latency is not None else 0.0
        if command == "get_psu" and Quirk.SLOW_PSU in self.spec.quirks:
            delay += 3.0 + u(self.seed, self.tick(CH_SLOW_PSU))  # 2–4 s
        return delay

    def cgi_delay_s(self, path: str) -> float:
        return self.latency.cgi(path) if self.latency is not None else 0.0

    def quick_delay_s(self) -> float:
        return self.latency.quick_s() if self.latency is not None else 0.0

    def elapsed(self) -> int:
        return self.uptime0 + int(time.monotonic() - self.fleet._t0)

    def power_sample(self, ch: int) -> float:
        p = self.profile
        if Fault.UNREACHABLE in p.faults:
            return 0.0
        return p.power_w * (1.0 + 0.005 * u(self.seed, (self.tick(ch) << 8) | 0xF0 | ch))

    def board_samples(self, ch: int) -> list[Sample]:
        """Each present board's next sample of channel ``ch``: its rate and every sensor."""
        k = self.tick(ch) << 12 | ch << 8
        seed = self.seed
        out = []
        for b in self.profile.present:
            key = k | b.slot << 2
            chip = 0.8 * u(seed, key | 1)  # a board's sensors drift together
            pcb = 0.6 * u(seed, key | 2)
            out.append(
                Sample(
                    b,
                    b.rate_ghs * (1.0 + 0.005 * u(seed, key)),
                    tuple(t + chip for t in b.chip_sensors_c),
                    tuple(t + pcb for t in b.pcb_sensors_c),
                )
            )
        return out

    def fan_samples(self, ch: int) -> list[int]:
        k = (self.tick(ch) << 12) | (ch << 8) | 0x80
        seed = self.seed
        return [round(f + 40.0 * u(seed, k | i)) if f else 0 for i, f in enumerate(self.profile.fans)]
