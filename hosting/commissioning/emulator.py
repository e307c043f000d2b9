"""Emulated ASIC miners on loopback, real enough for the unmodified ``pyasic`` to detect and read.

Two vendors, each with its stock firmware as pyasic 0.79 expects it:

* **Antminer (bmminer)** — cgminer-style JSON RPC on TCP 4028 (one command per connection, reply
  NUL-terminated, joined ``a+b`` commands refused with bmminer's "Invalid command") and the lighttpd
  web UI on port 80 behind HTTP Digest auth (realm ``antMiner Configuration``, root/root) serving the
  ``/cgi-bin/*.cgi`` JSON pyasic's ``AntminerModern`` reads. ``/kaonsu/v1/brief`` answers 404 with an
  HTML body, so pyasic does not take the miner for Marathon firmware. Nothing listens on 443.
* **Whatsminer (btminer, API 2.0.x)** — RPC only on 4028: the cgminer-style ``summary``/``devs``/
  ``pools``/``devdetails`` (joinable: ``summary+devs+pools`` is how pyasic gets the wattage) and the
  btminer ``get_*``/``status`` commands. Nothing listens on 80, 443 or 4433 (btminer v3), so pyasic
  falls back to the v2 API.

Readings are deterministic per serial: a miner's stable biases come from a hash of its serial (or
``MinerSpec.seed``) and every reply of a given kind uses the next sample of a per-miner counter, so
the same sequence of requests gives the same numbers run after run, varying a little from sample
to sample. Faults (``FAULTS``) can be combined and changed at run time with ``Fleet.set_faults``.

The servers are plain asyncio protocols (no per-request objects beyond a few f-strings), so one
process hosts thousands of miners; ``serve_forever`` shards a larger fleet over forked processes.
No Django here: this module runs anywhere with the standard library (and ``pdu_agent`` needs pysnmp).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import multiprocessing
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hosting.commissioning.pdu_agent import PduSpec

log = logging.getLogger(__name__)

FAULTS = frozenset(
    {
        "dead_board",
        "missing_chips",
        "under_hashing",
        "overheating",
        "stopped_fan",
        "over_drawing",
        "wrong_model",
        "wrong_mac",
        "unreachable",
        "hung",
        "flapping",
    }
)

RPC_PORT = 4028
WEB_PORT = 80
WEB_REALM = "antMiner Configuration"
WEB_USER = "root"
LISTEN_BACKLOG = 128
MISSING_CHIPS = 20  # chips a board loses under the missing_chips fault


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatedModel:
    """A catalog model as its stock firmware reports it, and as pyasic 0.79 then names it."""

    slug: str
    vendor: str  # "bitmain" | "microbt" (the catalog's vendor slugs)
    name: str
    hashrate_ths: float
    power_w: int
    boards: int
    chips_per_board: int
    fans: int
    # What the firmware reports: Antminer ``minertype``/``Type``; Whatsminer DEVDETAILS ``Model``.
    reported_type: str
    # Antminer: bmminer ``CompileTime`` (pyasic's fw_ver); Whatsminer: ``fw_ver`` of get_version.
    firmware: str
    # ``str(miner.make)`` / ``MinerData.make`` and ``MinerData.model`` (== ``miner.raw_model``);
    # ``miner.model`` appends the firmware: ``f"{pyasic_model} (Stock)"``.
    pyasic_make: str
    pyasic_model: str
    pyasic_class: str  # type(miner).__name__ of what pyasic.get_miner returns
    impostor: str  # slug of the model this one claims to be under the wrong_model fault
    freq_mhz: int = 650
    power_limit_w: int = 0  # Whatsminer "Power Limit"
    psu_model: str = ""  # Whatsminer PSU

    @property
    def pyasic_model_label(self) -> str:
        """``miner.model`` of the object ``pyasic.get_miner`` returns."""
        return f"{self.pyasic_model} (Stock)"

    @property
    def is_antminer(self) -> bool:
        return self.vendor == "bitmain"


_ANTMINER = {"vendor": "bitmain", "boards": 3, "fans": 4, "pyasic_make": "AntMiner"}
_WHATSMINER = {"vendor": "microbt", "boards": 3, "fans": 2, "pyasic_make": "WhatsMiner", "freq_mhz": 590}

EMULATED_MODELS: dict[str, EmulatedModel] = {
    m.slug: m
    for m in (
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19",
            name="Antminer S19",
            hashrate_ths=95,
            power_w=3250,
            chips_per_board=76,
            reported_type="Antminer S19",
            firmware="Mon Nov 14 13:34:21 CST 2022",
            pyasic_model="S19",
            pyasic_class="BMMinerS19",
            impostor="antminer-s19-pro",
            freq_mhz=650,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19-pro",
            name="Antminer S19 Pro",
            hashrate_ths=110,
            power_w=3250,
            chips_per_board=114,
            reported_type="Antminer S19 Pro",
            firmware="Mon Nov 14 13:34:21 CST 2022",
            pyasic_model="S19 Pro",
            pyasic_class="BMMinerS19Pro",
            impostor="antminer-s19j-pro",
            freq_mhz=675,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19j-pro",
            name="Antminer S19j Pro",
            hashrate_ths=104,
            power_w=3068,
            chips_per_board=126,
            reported_type="Antminer S19j Pro",
            firmware="Thu Apr 27 15:22:41 CST 2023",
            pyasic_model="S19j Pro",
            pyasic_class="BMMinerS19jPro",
            impostor="antminer-s19-pro",
            freq_mhz=525,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19-xp",
            name="Antminer S19 XP",
            hashrate_ths=140,
            power_w=3010,
            chips_per_board=110,
            reported_type="Antminer S19 XP",
            firmware="Tue Jun 20 10:03:16 CST 2023",
            pyasic_model="S19 XP",
            pyasic_class="BMMinerS19XP",
            impostor="antminer-s19-pro",
            freq_mhz=540,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s21",
            name="Antminer S21",
            hashrate_ths=200,
            power_w=3500,
            chips_per_board=108,
            reported_type="Antminer S21",
            firmware="Fri Nov 24 16:33:21 CST 2023",
            pyasic_model="S21",
            pyasic_class="BMMinerS21",
            impostor="antminer-s19-xp",
            freq_mhz=490,
        ),
        EmulatedModel(
            **_WHATSMINER,
            slug="whatsminer-m30s-plus-plus",
            name="Whatsminer M30S++",
            hashrate_ths=112,
            power_w=3472,
            chips_per_board=117,
            # DEVDETAILS "Model": pyasic drops "_" and zeroes the last digit → "M30S++VG40".
            reported_type="M30S++_VG40",
            # get_version fw_ver: a date before 2024-11 makes pyasic pick its v2 API (BTMinerV2).
            firmware="20230911.22.REL",
            pyasic_model="M30S++ VG40",
            pyasic_class="BTMinerM30SPlusPlusVG40",
            impostor="whatsminer-m50",
            power_limit_w=3600,
            psu_model="P221B",
        ),
        EmulatedModel(
            **_WHATSMINER,
            slug="whatsminer-m50",
            name="Whatsminer M50",
            hashrate_ths=114,
            power_w=3306,
            chips_per_board=105,
            reported_type="M50_VH50",
            firmware="20240105.12.REL",
            pyasic_model="M50 VH50",
            pyasic_class="BTMinerM50VH50",
            impostor="whatsminer-m30s-plus-plus",
            power_limit_w=3500,
            psu_model="P222B",
        ),
    )
}


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
    faults: frozenset[str] = frozenset()
    inlet_temp_c: float = 25.0  # air at the miner's intake; temperatures follow it
    seed: int | None = None  # None → derived from the serial
    web_password: str = "root"  # noqa: S105 (the stock default) Antminer web UI digest password

    def __post_init__(self) -> None:
        self.faults = _check_faults(self.faults)
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


def _check_faults(faults: Iterable[str]) -> frozenset[str]:
    if isinstance(faults, str):
        faults = (faults,)
    faults = frozenset(faults)
    unknown = faults - FAULTS
    if unknown:
        raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
    return faults


# --------------------------------------------------------------------------------------------
# Deterministic noise
# --------------------------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _u(seed: int, key: int) -> float:
    """Deterministic noise in [-1, 1) for (seed, key)."""
    return _mix(seed ^ ((key * 0xD1B54A32D192ED03) & _M64)) * (2.0 / 18446744073709551616.0) - 1.0


def _seed_of(serial: str) -> int:
    return int.from_bytes(hashlib.sha256(serial.encode()).digest()[:8], "big")


# Sample channels: each kind of reply draws from its own counter, so the n-th reply of a kind is
# the same whatever order concurrent requests arrive in.
CH_RPC_SUMMARY, CH_RPC_STATS, CH_WEB_STATS, CH_WEB_SUMMARY, CH_DEVS, CH_WM_SUMMARY, CH_POWER, CH_PSU = range(8)


# --------------------------------------------------------------------------------------------
# Per-miner state
# --------------------------------------------------------------------------------------------


class _Board:
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


class _Profile:
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

    def __init__(self, spec: MinerSpec, seed: int, faults: frozenset[str]):
        declared = EMULATED_MODELS[spec.model]
        model = EMULATED_MODELS[declared.impostor] if "wrong_model" in faults else declared
        self.model = model
        self.faults = faults
        n = model.boards
        inlet = spec.inlet_temp_c - 25.0

        if "wrong_mac" in faults:
            octets = [int(x, 16) for x in spec.mac.split(":")]
            h = _mix(seed ^ 0x5A5A)
            for i in range(3, 6):
                octets[i] ^= ((h >> (8 * i)) & 0xFF) or 0x5A
            mac = ":".join(f"{o:02X}" for o in octets)
        else:
            mac = spec.mac.upper()
        self.mac = mac
        self.hostname = spec.hostname or ("Antminer" if model.is_antminer else "WhatsMiner")

        dead = (_mix(seed ^ 0xDEAD) % n) if "dead_board" in faults else -1
        short = ((dead + 1) % n if dead >= 0 else _mix(seed ^ 0xC41F) % n) if "missing_chips" in faults else -1
        ideal = model.hashrate_ths * 1000.0 / n
        hashing = 0.80 if "under_hashing" in faults else 1.0
        hot = "overheating" in faults
        boards = []
        for slot in range(n):
            chips = model.chips_per_board
            if slot == dead:
                chips = 0
            elif slot == short:
                chips -= MISSING_CHIPS
            bias = 0.01 * _u(seed, 0x100 + slot)  # ±1 % per board, stable per serial
            rate = ideal * hashing * (chips / model.chips_per_board) * (1.0 + bias)
            if hot:
                chip_c = 104.5 + 3.0 * _u(seed, 0x200 + slot)
                pcb_c = 89.5 + 1.5 * _u(seed, 0x300 + slot)
            else:
                chip_c = 68.5 + 2.0 * _u(seed, 0x200 + slot)
                pcb_c = 60.0 + 1.5 * _u(seed, 0x300 + slot)
            sn = f"{spec.serial[-10:]}B{slot}{_mix(seed + slot) % 100000:05d}"
            boards.append(
                _Board(
                    slot, chips, rate, ideal, chip_c + inlet, pcb_c + inlet, sn, _asic_string(chips) if chips else ""
                )
            )
        self.boards = tuple(boards)
        self.present = tuple(b for b in boards if b.chips)
        self.rate_ideal_ghs = model.hashrate_ths * 1000.0

        fans = []
        stopped = _mix(seed ^ 0xFA11) % model.fans if "stopped_fan" in faults else -1
        for i in range(model.fans):
            if i == stopped:
                fans.append(0.0)
            elif hot:
                fans.append(5940.0 + 20.0 * _u(seed, 0x400 + i))
            else:
                fans.append(5450.0 + 350.0 * _u(seed, 0x400 + i))
        self.fans = tuple(fans)

        power = float(model.power_w) * (1.0 + 0.02 * _u(seed, 0x500))  # ±2 % per unit
        if dead >= 0:
            power *= (n - 1) / n
        if short >= 0:
            power *= 1.0 - 0.8 * MISSING_CHIPS / (model.chips_per_board * n)
        if "over_drawing" in faults:
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


class _Miner:
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
        self.seed = spec.seed if spec.seed is not None else _seed_of(spec.serial)
        self.ticks = [0] * 8
        self.servers: list[asyncio.base_events.Server] = []
        self.opening = False
        self.blink = False
        self.conns: set[asyncio.Transport] = set()
        self.flap_since: float | None = None  # a flapping miner's first contact (monotonic)
        self.uptime0 = 900 + _mix(self.seed ^ 0x0B) % 5400  # 15–105 min since boot at fleet start
        self.ha1 = hashlib.md5(f"{WEB_USER}:{WEB_REALM}:{spec.web_password}".encode()).hexdigest()  # noqa: S324
        self.profile = _Profile(spec, self.seed, spec.faults)

    def tick(self, ch: int) -> int:
        k = self.ticks[ch]
        self.ticks[ch] = k + 1
        return k

    def elapsed(self) -> int:
        return self.uptime0 + int(time.monotonic() - self.fleet._t0)

    def power_sample(self, ch: int) -> float:
        p = self.profile
        if "unreachable" in p.faults:
            return 0.0
        return p.power_w * (1.0 + 0.005 * _u(self.seed, (self.tick(ch) << 8) | 0xF0 | ch))

    def board_samples(self, ch: int) -> list[tuple[_Board, float, float, float]]:
        """(board, GH/s, chip °C, PCB °C) for each present board, next sample of channel ``ch``."""
        k = self.tick(ch) << 12 | ch << 8
        seed = self.seed
        out = []
        for b in self.profile.present:
            key = k | b.slot << 2
            out.append(
                (
                    b,
                    b.rate_ghs * (1.0 + 0.005 * _u(seed, key)),
                    b.chip_c + 0.8 * _u(seed, key | 1),
                    b.pcb_c + 0.6 * _u(seed, key | 2),
                )
            )
        return out

    def fan_samples(self, ch: int) -> list[int]:
        k = (self.tick(ch) << 12) | (ch << 8) | 0x80
        seed = self.seed
        return [round(f + 40.0 * _u(seed, k | i)) if f else 0 for i, f in enumerate(self.profile.fans)]


# --------------------------------------------------------------------------------------------
# Antminer (bmminer) RPC replies
# --------------------------------------------------------------------------------------------

_BM_DESC = "cgminer 1.0.0"
_BM_MINER = "uart_trans.1.3"


def _bm_status(code: int, msg: str, when: int, status: str = "S") -> str:
    return f'"STATUS":[{{"STATUS":"{status}","When":{when},"Code":{code},"Msg":"{msg}","Description":"{_BM_DESC}"}}]'


def _bm_invalid(when: int) -> str:
    return "{" + _bm_status(14, "Invalid command", when, "E") + ',"id":1}'


def _am_version(m: _Miner, when: int) -> str:
    model = m.profile.model
    return (
        "{" + _bm_status(22, "CGMiner versions", when) + f',"VERSION":[{{"BMMiner":"1.0.0","API":"3.1",'
        f'"Miner":"{_BM_MINER}","CompileTime":"{model.firmware}","Type":"{model.reported_type}"}}],"id":1}}'
    )


def _am_summary(m: _Miner, when: int) -> str:
    samples = m.board_samples(CH_RPC_SUMMARY)
    ghs = sum(s[1] for s in samples)
    el = m.elapsed()
    acc = el // 14
    return (
        "{" + _bm_status(11, "Summary", when) + f',"SUMMARY":[{{"Elapsed":{el},"GHS 5s":{ghs:.2f},'
        f'"GHS av":{ghs * 0.999:.2f},"GHS 30m":{ghs * 1.001:.2f},"Found Blocks":0,"Getworks":{el // 30},'
        f'"Accepted":{acc},"Rejected":{acc // 400},"Hardware Errors":{el // 900},"Utility":{acc * 60 / max(el, 1):.2f},'
        f'"Discarded":{el // 5},"Stale":0,"Get Failures":0,"Local Work":{el * 60},"Remote Failures":0,'
        f'"Network Blocks":{el // 600},"Total MH":{ghs * el * 1000:.4e},"Work Utility":{ghs * 13.97:.2f},'
        f'"Difficulty Accepted":{acc * 65536:.8f},"Difficulty Rejected":{acc // 400 * 65536:.8f},'
        f'"Difficulty Stale":0.00000000,"Best Share":{1000000 + el * 37},"Device Hardware%":0.0001,'
        f'"Device Rejected%":0.2500,"Pool Rejected%":0.2500,"Pool Stale%":0.0000,"Last getwork":{when}}}],"id":1}}'
    )


def _am_stats(m: _Miner, when: int) -> str:
    p = m.profile
    model = p.model
    samples = {s[0].slot: s for s in m.board_samples(CH_RPC_STATS)}
    fans = m.fan_samples(CH_RPC_STATS)
    el = m.elapsed()
    ghs = sum(s[1] for s in samples.values())
    parts = [
        f'"STATS":0,"ID":"BTM_SOC0","Elapsed":{el},"Calls":0,"Wait":0.000000,"Max":0.000000,"Min":99999999.000000,'
        f'"GHS 5s":"{ghs:.2f}","GHS av":{ghs * 0.999:.2f},"rate_30m":{ghs * 1.001:.2f},"Mode":2,'
        f'"miner_count":{len(samples)},"frequency":{model.freq_mhz},"fan_num":{len(fans)}'
    ]
    parts.extend(f'"fan{i + 1}":{f}' for i, f in enumerate(fans))
    parts.append(f'"temp_num":{len(samples)}')
    tmax = 0
    for b in p.boards:
        i = b.slot + 1
        s = samples.get(b.slot)
        if s is None:
            parts.append(f'"temp{i}":0,"temp2_{i}":0,"temp_pcb{i}":"0-0-0-0","temp_chip{i}":"0-0-0-0"')
            continue
        c, t = s[2], s[3]
        tmax = max(tmax, round(t + 4))
        parts.append(
            f'"temp{i}":{round(c)},"temp2_{i}":{round(t)},'
            f'"temp_pcb{i}":"{round(t - 4)}-{round(t - 3)}-{round(t + 3)}-{round(t + 4)}",'
            f'"temp_chip{i}":"{round(c - 5)}-{round(c - 4)}-{round(c + 4)}-{round(c + 5)}"'
        )
    parts.append(
        f'"total_rateideal":{p.rate_ideal_ghs:.2f},"rate_unit":"GH","total_freqavg":{model.freq_mhz},'
        f'"total_acn":{sum(b.chips for b in p.boards)},"total rate":{ghs:.2f},"temp_max":{tmax},"no_matching_work":0'
    )
    for b in p.boards:
        i = b.slot + 1
        s = samples.get(b.slot)
        rate = f"{s[1]:.2f}" if s else "0.00"
        parts.append(
            f'"chain_acn{i}":{b.chips},"chain_acs{i}":"{b.asic}","chain_hw{i}":{el // 2700 if s else 0},'
            f'"chain_rate{i}":"{rate}","chain_freq{i}":{model.freq_mhz if s else 0}'
        )
    parts.append(f'"miner_version":"{_BM_MINER}","miner_id":"{m.spec.serial}"')
    # Real bmminer forgets the comma between the two STATS objects (pyasic mends "}{").
    return (
        "{" + _bm_status(70, "CGMiner stats", when) + f',"STATS":[{{"BMMiner":"1.0.0","Miner":"{_BM_MINER}",'
        f'"CompileTime":"{model.firmware}","Type":"{model.reported_type}"}}{{' + ",".join(parts) + '}],"id":1}'
    )


def _pools_body(m: _Miner, when: int, desc: str) -> str:
    el = m.elapsed()
    acc = el // 14
    user = json.dumps(f"haven.{m.profile.hostname}")
    rows = []
    for i, url in enumerate(
        ("stratum+tcp://stratum.haven.example:3333", "stratum+tcp://backup.haven.example:3333", "")
    ):
        active = i == 0
        rows.append(
            f'{{"POOL":{i},"URL":"{url}","Status":"{"Alive" if url else "Dead"}","Priority":{i},"Quota":1,'
            f'"Long Poll":"N","Getworks":{el // 30 if active else 0},"Accepted":{acc if active else 0},'
            f'"Rejected":{acc // 400 if active else 0},"Discarded":0,"Stale":0,"Get Failures":0,'
            f'"Remote Failures":0,"User":{user if url else chr(34) * 2},"Last Share Time":{when - 3 if active else 0},'
            f'"Diff":"65.5K","Diff1 Shares":0,"Proxy Type":"","Proxy":"",'
            f'"Difficulty Accepted":{acc * 65536 if active else 0},'
            f'"Difficulty Rejected":0,"Difficulty Stale":0,"Last Share Difficulty":{65536 if active else 0},'
            f'"Has Stratum":true,"Stratum Active":{"true" if active else "false"},'
            f'"Stratum URL":"{url[14:].split(":")[0]}","Best Share":{1000000 + el * 37 if active else 0},'
            f'"Pool Rejected%":0.2500,"Pool Stale%":0.0000,"Bad Work":0,"Current Block Height":0,'
            f'"Current Block Version":536870916}}'
        )
    status = f'"STATUS":[{{"STATUS":"S","When":{when},"Code":7,"Msg":"3 Pool(s)","Description":"{desc}"}}]'
    return "{" + status + ',"POOLS":[' + ",".join(rows) + '],"id":1}'


def _am_pools(m: _Miner, when: int) -> str:
    return _pools_body(m, when, _BM_DESC)


def _am_devdetails(m: _Miner, when: int) -> str:
    rows = ",".join(
        f'{{"DEVDETAILS":{i},"Name":"BTM_SOC{i}","ID":{i},"Driver":"bitmain_soc","Kernel":"","Model":"",'
        f'"Device Path":"","Target Temperature":0,"Cutoff Temperature":0}}'
        for i, _b in enumerate(m.profile.present)
    )
    return "{" + _bm_status(69, "Device Details", when) + ',"DEVDETAILS":[' + rows + '],"id":1}'


_AM_RPC: dict[str, Callable[[_Miner, int], str]] = {
    "version": _am_version,
    "summary": _am_summary,
    "stats": _am_stats,
    "pools": _am_pools,
    "devdetails": _am_devdetails,
}


# --------------------------------------------------------------------------------------------
# Antminer web UI (cgi-bin JSON)
# --------------------------------------------------------------------------------------------


def _web_info(m: _Miner, when: int, msg: str) -> str:
    model = m.profile.model
    return (
        f'"STATUS":{{"STATUS":"S","when":{when},"Msg":"{msg}","api_version":"1.0.0"}},'
        f'"INFO":{{"miner_version":"{_BM_MINER}","CompileTime":"{model.firmware}","type":"{model.reported_type}"}}'
    )


def _web_stats(m: _Miner) -> str:
    p = m.profile
    model = p.model
    samples = m.board_samples(CH_WEB_STATS)
    fans = m.fan_samples(CH_WEB_STATS)
    ghs = sum(s[1] for s in samples)
    chains = []
    for b, rate, c, t in samples:  # a dead board is simply not in the list
        pcb = f"{round(t - 4)},{round(t - 3)},{round(t + 3)},{round(t + 4)}"
        chains.append(
            f'{{"index":{b.slot},"freq_avg":{model.freq_mhz},"rate_ideal":{b.ideal_ghs:.2f},"rate_real":{rate:.2f},'
            f'"asic_num":{b.chips},"asic":"{b.asic}","temp_pic":[{pcb}],"temp_pcb":[{pcb}],'
            f'"temp_chip":[{round(c - 5)},{round(c - 4)},{round(c + 4)},{round(c + 5)}],"hw":0,'
            f'"eeprom_loaded":true,"sn":"{b.sn}","hwp":0.0,"tpl":[[{round(c)}]]}}'
        )
    el = m.elapsed()
    return (
        "{" + _web_info(m, int(time.time()), "stats") + f',"STATS":[{{"elapsed":{el},"rate_5s":{ghs:.2f},'
        f'"rate_30m":{ghs * 1.001:.2f},"rate_avg":{ghs * 0.999:.2f},"rate_ideal":{p.rate_ideal_ghs:.2f},'
        f'"rate_unit":"GH/s","chain_num":{len(chains)},"fan_num":{len(fans)},"fan":[{",".join(map(str, fans))}],'
        f'"hwp_total":0.0001,"miner-mode":0,"freq-level":100,"chain":[' + ",".join(chains) + "]}]}"
    )


def _web_summary(m: _Miner) -> str:
    p = m.profile
    samples = m.board_samples(CH_WEB_SUMMARY)
    ghs = sum(s[1] for s in samples)
    el = m.elapsed()
    bad = {kind: (st, msg) for kind, st, msg in p.errors_am}
    ok = ("s", "")
    status = ",".join(
        f'{{"type":"{kind}","status":"{bad.get(kind, ok)[0]}","code":0,"msg":{json.dumps(bad.get(kind, ok)[1])}}}'
        for kind in ("rate", "network", "fans", "temp")
    )
    return (
        "{" + _web_info(m, int(time.time()), "summary") + f',"SUMMARY":[{{"elapsed":{el},"rate_5s":{ghs:.2f},'
        f'"rate_30m":{ghs * 1.001:.2f},"rate_avg":{ghs * 0.999:.2f},"rate_ideal":{p.rate_ideal_ghs:.2f},'
        f'"rate_unit":"GH/s","hw_all":{el // 900},"bestshare":{1000000 + el * 37},"status":[{status}]}}]}}'
    )


def _web_system_info(m: _Miner) -> str:
    p = m.profile
    return json.dumps(
        {
            "minertype": p.model.reported_type,
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": p.mac,
            "hostname": p.hostname,
            "ipaddress": m.ip,
            "netmask": "255.0.0.0",
            "gateway": "127.0.0.1",
            "dnsservers": "127.0.0.1",
            "system_mode": "GNU/Linux",
            "system_kernel_version": "Linux 4.9.38 #1 SMP PREEMPT Fri Nov 11 15:53:43 CST 2022",
            "system_filesystem_version": p.model.firmware,
            "firmware_type": "Release",
            "serinum": m.spec.serial,
        },
        separators=(",", ":"),
    )


def _web_network_info(m: _Miner) -> str:
    p = m.profile
    return json.dumps(
        {
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": p.mac,
            "ipaddress": m.ip,
            "netmask": "255.0.0.0",
            "conf_nettype": "DHCP",
            "conf_hostname": p.hostname,
            "conf_ipaddress": "",
            "conf_netmask": "",
            "conf_gateway": "",
            "conf_dnsservers": "",
        },
        separators=(",", ":"),
    )


def _web_miner_conf(m: _Miner) -> str:
    user = f"haven.{m.profile.hostname}"
    return json.dumps(
        {
            "pools": [
                {"url": "stratum+tcp://stratum.haven.example:3333", "user": user, "pass": "x"},
                {"url": "stratum+tcp://backup.haven.example:3333", "user": user, "pass": "x"},
                {"url": "", "user": "", "pass": ""},
            ],
            "api-listen": True,
            "api-network": True,
            "api-groups": "A:stats:pools:devs:summary:version",
            "api-allow": "A:0/0,W:*",
            "bitmain-fan-ctrl": False,
            "bitmain-fan-pwm": "100",
            "bitmain-use-vil": True,
            "bitmain-freq": str(m.profile.model.freq_mhz),
            "bitmain-voltage": "1360",
            "bitmain-ccdelay": "0",
            "bitmain-pwth": "0",
            "bitmain-work-mode": "0",
            "bitmain-freq-level": "100",
        },
        separators=(",", ":"),
    )


def _web_pools(m: _Miner) -> str:
    data = json.loads(_pools_body(m, int(time.time()), _BM_DESC))
    return json.dumps({"STATUS": {"STATUS": "S", "Msg": "pools"}, "POOLS": data["POOLS"]}, separators=(",", ":"))


def _web_blink_status(m: _Miner) -> str:
    return '{"blink":true}' if m.blink else '{"blink":false}'


# path → (builder, cacheable)
_WEB_GET: dict[str, tuple[Callable[[_Miner], str], bool]] = {
    "/cgi-bin/stats.cgi": (_web_stats, False),
    "/cgi-bin/summary.cgi": (_web_summary, False),
    "/cgi-bin/get_system_info.cgi": (_web_system_info, True),
    "/cgi-bin/get_network_info.cgi": (_web_network_info, True),
    "/cgi-bin/get_miner_conf.cgi": (_web_miner_conf, True),
    "/cgi-bin/pools.cgi": (_web_pools, False),
    "/cgi-bin/get_blink_status.cgi": (_web_blink_status, False),
}

_HTML_PAGE = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Antminer</title></head>\n'
    b'<body><div id="app"></div><script src="/js/app.js"></script></body></html>\n'
)


def _lighttpd_error(code: int, reason: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '         "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        f" <head>\n  <title>{code} - {reason}</title>\n </head>\n <body>\n  <h1>{code} - {reason}</h1>\n"
        " </body>\n</html>\n"
    ).encode()


_BODY_401 = _lighttpd_error(401, "Unauthorized")
_BODY_404 = _lighttpd_error(404, "Not Found")
_BODY_405 = _lighttpd_error(405, "Method Not Allowed")

_NONCE_KEY = os.urandom(16)
_NONCE_TTL = 3600
_DIGEST_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


def _new_nonce() -> str:
    ts = f"{int(time.time()):08x}"
    return ts + hmac.new(_NONCE_KEY, ts.encode(), "md5").hexdigest()[:24]


def _nonce_ok(nonce: str) -> bool:
    if len(nonce) != 32:
        return False
    ts = nonce[:8]
    if not hmac.compare_digest(nonce[8:], hmac.new(_NONCE_KEY, ts.encode(), "md5").hexdigest()[:24]):
        return False
    try:
        return time.time() - int(ts, 16) < _NONCE_TTL
    except ValueError:
        return False


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()  # noqa: S324 (HTTP Digest is MD5 by definition)


def _digest_ok(m: _Miner, method: str, target: str, header: str) -> bool:
    if header[:7].lower() != "digest ":
        return False
    f = {k: (q if q else b) for k, q, b in _DIGEST_FIELD.findall(header[7:])}
    if f.get("username") != WEB_USER or f.get("realm") != WEB_REALM or f.get("uri") != target:
        return False
    if f.get("algorithm", "MD5").upper() != "MD5" or not _nonce_ok(f.get("nonce", "")):
        return False
    ha2 = _md5(f"{method}:{target}")
    qop = f.get("qop")
    if qop:
        if qop != "auth":
            return False
        expect = _md5(f"{m.ha1}:{f['nonce']}:{f.get('nc', '')}:{f.get('cnonce', '')}:{qop}:{ha2}")
    else:
        expect = _md5(f"{m.ha1}:{f['nonce']}:{ha2}")
    return hmac.compare_digest(expect, f.get("response", ""))


# --------------------------------------------------------------------------------------------
# Whatsminer (btminer 2.0.x) RPC replies
# --------------------------------------------------------------------------------------------

_BT_DESC = "btminer"


def _bt_status(code: int, msg: str, when: int) -> str:
    return f'"STATUS":[{{"STATUS":"S","When":{when},"Code":{code},"Msg":"{msg}","Description":"{_BT_DESC}"}}]'


def _bt_msg(when: int, msg: str, code: int = 131) -> str:
    return f'{{"STATUS":"S","When":{when},"Code":{code},"Msg":{msg},"Description":""}}'


def _bt_error(when: int, msg: str, code: int = 14) -> str:
    return f'{{"STATUS":"E","When":{when},"Code":{code},"Msg":"{msg}","Description":""}}'


def _wm_summary(m: _Miner, when: int) -> str:
    p = m.profile
    model = p.model
    samples = m.board_samples(CH_WM_SUMMARY)
    fans = m.fan_samples(CH_WM_SUMMARY)
    mhs = sum(s[1] for s in samples) * 1000.0
    el = m.elapsed()
    acc = el // 14
    watts = round(m.power_sample(CH_WM_SUMMARY))
    cmin = min((s[2] for s in samples), default=0.0) - 6.0
    cmax = max((s[2] for s in samples), default=0.0) + 7.0
    cavg = sum(s[2] for s in samples) / len(samples) if samples else 0.0
    temp = max((s[3] for s in samples), default=0.0)
    mhs_tgt = p.rate_ideal_ghs * 1000.0 * 0.98
    return (
        "{" + _bt_status(11, "Summary", when) + f',"SUMMARY":[{{"Elapsed":{el},"MHS av":{mhs * 0.999:.2f},'
        f'"MHS 5s":{mhs * 1.003:.2f},"MHS 1m":{mhs:.2f},"MHS 5m":{mhs * 0.998:.2f},"MHS 15m":{mhs * 0.999:.2f},'
        f'"HS RT":{mhs * 0.998:.2f},"Accepted":{acc},"Rejected":{acc // 400},"Total MH":{mhs * el:.4f},'
        f'"Temperature":{temp:.2f},"freq_avg":{model.freq_mhz},"Fan Speed In":{fans[0]},"Fan Speed Out":{fans[1]},'
        f'"Power":{watts},"Power Rate":{watts / max(mhs / 1e6, 0.001):.2f},"Pool Rejected%":0.2500,'
        f'"Pool Stale%":0.0000,"Last getwork":0,"Uptime":{el + 41},"Security Mode":0,"Hash Stable":true,'
        f'"Hash Stable Cost Seconds":{min(el, 1500)},"Hash Deviation%":0.1398,"Target Freq":{model.freq_mhz},'
        f'"Target MHS":{mhs_tgt:.0f},"Env Temp":{m.spec.inlet_temp_c:.2f},"Power Mode":"Normal",'
        f'"Factory GHS":{p.rate_ideal_ghs:.0f},"Power Limit":{model.power_limit_w},"Chip Temp Min":{cmin:.2f},'
        f'"Chip Temp Max":{cmax:.2f},"Chip Temp Avg":{cavg:.2f},"Debug":"-0.0_100.0_354",'
        f'"Btminer Fast Boot":"disable","MAC":"{p.mac}","Firmware Version":"\'{model.firmware}\'"}}],"id":1}}'
    )


def _wm_devs(m: _Miner, when: int) -> str:
    p = m.profile
    samples = m.board_samples(CH_DEVS)
    el = m.elapsed()
    rows = []
    for b, rate, c, t in samples:  # a dead board is simply not listed
        mhs = rate * 1000.0
        rows.append(
            f'{{"ASC":{b.slot},"Slot":{b.slot},"Enabled":"Y","Status":"Alive","Temperature":{t:.2f},'
            f'"Chip Frequency":{p.model.freq_mhz},"MHS av":{mhs * 0.999:.2f},"MHS 5s":{mhs * 1.004:.2f},'
            f'"MHS 1m":{mhs:.2f},"MHS 5m":{mhs * 0.998:.2f},"MHS 15m":{mhs * 0.999:.2f},"HS RT":{mhs * 0.998:.2f},'
            f'"Accepted":{el // 42},"Rejected":0,"Last Valid Work":{when - 2},"Upfreq Complete":1,'
            f'"Effective Chips":{b.chips},"PCB SN":"{b.sn}","Chip Data":"K88Z347-2039 BINV01-195001D",'
            f'"Chip Temp Min":{c - 6:.2f},"Chip Temp Max":{c + 7:.2f},"Chip Temp Avg":{c:.2f},"chip_vol_diff":9}}'
        )
    return "{" + _bt_status(9, f"{len(rows)} ASC(s)", when) + ',"DEVS":[' + ",".join(rows) + '],"id":1}'


def _wm_pools(m: _Miner, when: int) -> str:
    return _pools_body(m, when, _BT_DESC)


def _wm_devdetails(m: _Miner, when: int) -> str:
    model = m.profile.model.reported_type
    rows = ",".join(
        f'{{"DEVDETAILS":{b.slot},"Name":"SM","ID":{b.slot},"Driver":"bitmicro","Kernel":"","Model":"{model}"}}'
        for b in m.profile.present
    )
    return "{" + _bt_status(69, "Device Details", when) + ',"DEVDETAILS":[' + rows + '],"id":1}'


def _wm_version(m: _Miner, when: int) -> str:
    return "{" + _bt_status(22, "CGMiner versions", when) + ',"VERSION":[{"CGMiner":"4.9.2","API":"3.7"}],"id":1}'


def _wm_get_version(m: _Miner, when: int) -> str:
    fw = m.profile.model.firmware
    return _bt_msg(when, f'{{"api_ver":"2.0.5","fw_ver":"{fw}","platform":"H6OS","chip":"K1.5"}}')


def _wm_get_miner_info(m: _Miner, when: int) -> str:
    p = m.profile
    msg = json.dumps(
        {
            "ip": m.ip,
            "proto": "dhcp",
            "netmask": "255.0.0.0",
            "gateway": "127.0.0.1",
            "dns": "127.0.0.1",
            "hostname": p.hostname,
            "mac": p.mac,
            "ledstat": "manual" if m.blink else "auto",
            "minersn": m.spec.serial,
            "powersn": f"P{m.spec.serial[-12:]}",
        },
        separators=(",", ":"),
    )
    return _bt_msg(when, msg)


def _wm_get_psu(m: _Miner, when: int) -> str:
    watts = m.power_sample(CH_PSU)
    fan = 6900 + round(60 * _u(m.seed, m.tick(CH_PSU) << 4))
    msg = (
        f'{{"name":"{m.profile.model.psu_model}","hw_version":"V01.00","sw_version":"V01.00.V01.03",'
        f'"model":"{m.profile.model.psu_model}","iin":"{round(watts / 0.23):d}","vin":"23000",'
        f'"fan_speed":"{fan}","version":"-1","serial_no":"A{m.spec.serial[-14:]}","vender":"7"}}'
    )
    return _bt_msg(when, msg)


def _wm_get_error_code(m: _Miner, when: int) -> str:
    t0 = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when - m.elapsed() + 120))
    codes = ",".join(f'{{"{c}":"{t0}"}}' for c in m.profile.errors_wm)
    return _bt_msg(when, f'{{"error_code":[{codes}]}}', 133)


def _wm_status(m: _Miner, when: int) -> str:
    fw = m.profile.model.firmware
    return _bt_msg(
        when,
        f'{{"mineroff":"false","mineroff_reason":"","mineroff_time":"","FirmwareVersion":"\'{fw}\'",'
        f'"power_mode":"","hash_percent":""}}',
    )


def _wm_get_token(m: _Miner, when: int) -> str:
    h = _mix(m.seed ^ (when // 1800))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    salt = "".join(alphabet[(h >> (6 * i)) % 62] for i in range(8))
    newsalt = "".join(alphabet[(h >> (6 * i + 3)) % 62] for i in range(8))
    return _bt_msg(when, f'{{"time":"{when % 10000:04d}","salt":"{salt}","newsalt":"{newsalt}"}}', 134)


_WM_RPC: dict[str, Callable[[_Miner, int], str]] = {
    "summary": _wm_summary,
    "devs": _wm_devs,
    "edevs": _wm_devs,
    "pools": _wm_pools,
    "devdetails": _wm_devdetails,
    "version": _wm_version,
    "get_version": _wm_get_version,
    "get_miner_info": _wm_get_miner_info,
    "get_psu": _wm_get_psu,
    "get_error_code": _wm_get_error_code,
    "status": _wm_status,
    "get_token": _wm_get_token,
}
# btminer joins the cgminer-style reads with "+"; its own get_*/status commands are not joinable.
_WM_JOINABLE = frozenset({"summary", "devs", "edevs", "pools", "devdetails", "version"})


def _rpc_reply(m: _Miner, raw: bytes) -> bytes:
    when = int(time.time())
    am = m.profile.model.is_antminer
    try:
        req = json.loads(raw)
        cmd = req.get("command") if isinstance(req, dict) else None
    except ValueError:
        req, cmd = None, None
    if not isinstance(cmd, str):
        if am:
            body = "{" + _bm_status(23, "Invalid JSON", when, "E") + ',"id":1}'
        elif isinstance(req, dict) and "enc" in req:  # an encrypted (privileged) command
            body = _bt_error(when, "can't access write cmd", 45)
        else:
            body = _bt_error(when, "invalid cmd")
        return body.encode() + b"\x00"
    if am:
        fn = _AM_RPC.get(cmd)
        body = fn(m, when) if fn is not None else _bm_invalid(when)  # incl. joined "a+b"
    elif "+" in cmd:
        cmds = cmd.split("+")
        if all(c in _WM_JOINABLE for c in cmds):
            body = "{" + ",".join(f'"{c}":[{_WM_RPC[c](m, when)}]' for c in cmds) + ',"id":1}'
        else:
            body = _bt_error(when, "invalid cmd")
    else:
        fn = _WM_RPC.get(cmd)
        body = fn(m, when) if fn is not None else _bt_error(when, "invalid cmd")
    return body.encode() + b"\x00"


# --------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """A connection to one emulated miner, tracked so that faults can cut it."""

    __slots__ = ("buf", "m", "t")

    def __init__(self, m: _Miner):
        self.m = m
        self.t: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport):
        self.t = transport
        self.m.conns.add(transport)
        if self.m.flap_since is None and "flapping" in self.m.profile.faults:
            self.m.flap_since = time.monotonic()  # its link starts to flap once somebody talks to it

    def connection_lost(self, exc):
        self.m.conns.discard(self.t)


class _RpcProtocol(_Connection):
    """One JSON command per connection, answered then closed (cgminer style)."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        if "hung" in self.m.profile.faults:
            return  # swallow everything, never answer, never close
        buf = self.buf + data if self.buf else data
        s = buf.strip()
        if s.startswith(b"{") and not s.endswith(b"}") and len(buf) < 65536:
            self.buf = buf  # wait for the rest of the JSON
            return
        self.buf = b""
        t = self.t
        t.write(_rpc_reply(self.m, s))
        t.close()

    def eof_received(self):
        return False


class _HttpProtocol(_Connection):
    """Just enough HTTP/1.1 (keep-alive, Content-Length bodies) for lighttpd's Antminer UI."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        if "hung" in self.m.profile.faults:
            return
        buf = self.buf + data if self.buf else data
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 16384:
                    self._send(400, "Bad Request", b"", close=True)
                    return
                break
            lines = buf[:end].decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self._send(400, "Bad Request", b"", close=True)
                return
            auth = ""
            length = 0
            close = version == "HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "authorization":
                    auth = value.strip()
                elif name == "content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        length = 0
                elif name == "connection":
                    v = value.strip().lower()
                    close = v == "close" or (close and v != "keep-alive")
            if len(buf) < end + 4 + length:
                break  # body not complete yet
            body = buf[end + 4 : end + 4 + length]
            buf = buf[end + 4 + length :]
            self._handle(method, target, auth, body, close)
            if close or self.t.is_closing():
                return
        self.buf = buf

    def _send(self, code: int, reason: str, body: bytes, *, close: bool, extra: str = "", ctype="text/html") -> None:
        head = (
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\nServer: lighttpd/1.4.32\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        self.t.write(head.encode() + body)
        if close:
            self.t.close()

    def _handle(self, method: str, target: str, auth: str, body: bytes, close: bool) -> None:
        m = self.m
        if not auth or not _digest_ok(m, method, target, auth):
            challenge = (
                f'WWW-Authenticate: Digest realm="{WEB_REALM}", charset="UTF-8", algorithm="MD5", '
                f'nonce="{_new_nonce()}", qop="auth"\r\n'
            )
            self._send(401, "Unauthorized", _BODY_401, close=close, extra=challenge)
            return
        path = target.split("?", 1)[0]
        if method == "GET":
            route = _WEB_GET.get(path)
            if route is not None:
                fn, cacheable = route
                if cacheable:
                    p = m.profile
                    out = p.static.get(path)
                    if out is None:
                        out = p.static[path] = fn(m).encode()
                else:
                    out = fn(m).encode()
                self._send(200, "OK", out, close=close, ctype="text/plain")
                return
            if path in ("/", "/index.html"):
                self._send(200, "OK", _HTML_PAGE, close=close)
                return
        elif method == "POST":
            reply = self._post(path, body)
            if reply is not None:
                self._send(200, "OK", reply, close=close, ctype="text/plain")
                return
        else:
            self._send(405, "Method Not Allowed", _BODY_405, close=close)
            return
        self._send(404, "Not Found", _BODY_404, close=close)  # incl. /kaonsu/v1/brief

    def _post(self, path: str, body: bytes) -> bytes | None:
        m = self.m
        if path == "/cgi-bin/blink.cgi":
            try:
                on = str(json.loads(body or b"{}").get("blink", "false")).lower() == "true"
            except (ValueError, AttributeError):
                on = False
            m.blink = on
            return b'{"code":"B000"}' if on else b'{"code":"B100"}'
        if path in ("/cgi-bin/set_miner_conf.cgi", "/cgi-bin/reboot.cgi", "/cgi-bin/set_network_conf.cgi"):
            return b'{"stats":"success","code":"M000","msg":"OK!"}'
        return None


# --------------------------------------------------------------------------------------------
# Fleet
# --------------------------------------------------------------------------------------------


def _may_bind_port_80(ip: str) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, WEB_PORT))
    except PermissionError:
        return False
    except OSError as e:
        return e.errno != errno.EACCES  # in use by someone else: we may bind, just not there
    finally:
        s.close()
    return True


def _listen(ip: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(LISTEN_BACKLOG)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


_warned_no_web = False


class Fleet:
    """Emulated miners served on one asyncio loop (see ``running`` to run it in a thread)."""

    def __init__(self, miners: list[MinerSpec], *, web: bool | None = None, flap_period_s: float = 2.0):
        self._miners: dict[str, _Miner] = {}
        for spec in miners:
            if spec.ip in self._miners:
                raise ValueError(f"two miners on {spec.ip}")
            self._miners[spec.ip] = _Miner(self, spec)
        self._web_req = web
        self._web = bool(web)
        self.flap_period_s = float(flap_period_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._flap_task: asyncio.Task | None = None
        self._started = False
        self._t0 = time.monotonic()

    # -- public API ------------------------------------------------------------------------

    @property
    def web(self) -> bool:
        """Whether the Antminer web UIs (port 80) are served."""
        return self._web

    def reported_mac(self, ip: str) -> str:
        return self._get(ip).profile.mac

    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._t0 = time.monotonic()
        if self._web_req is None:
            first = next(iter(self._miners), "127.0.0.1")
            self._web = _may_bind_port_80(first)
            if not self._web and any(m.profile.model.is_antminer for m in self._miners.values()):
                global _warned_no_web
                if not _warned_no_web:
                    _warned_no_web = True
                    log.warning(
                        "emulator: this process may not bind port 80; Antminer web UIs are off, so only "
                        "Whatsminers (RPC-only) are fully readable"
                    )
        self._started = True
        try:
            for m in self._miners.values():
                if self._should_listen(m):
                    await self._open(m)
        except BaseException:
            await self.stop()
            raise
        self._flap_task = asyncio.create_task(self._flap_loop(), name="emulator-flap")

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._flap_task is not None:
            self._flap_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flap_task
            self._flap_task = None
        for m in self._miners.values():
            self._close(m)
            for t in list(m.conns):
                t.abort()
            m.conns.clear()
        await asyncio.sleep(0)

    def set_faults(self, ip: str, faults: Iterable[str]) -> None:
        """Replace a miner's faults, effective for the next request (and its listeners at once)."""
        m = self._get(ip)
        faults = _check_faults(faults)
        m.profile = _Profile(m.spec, m.seed, faults)
        m.flap_since = None
        if not self._started or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._reconcile_nowait(m)
        else:
            fut = asyncio.run_coroutine_threadsafe(self._reconcile(m), self._loop)
            fut.result(timeout=30)

    def power_w(self, ip: str) -> float:
        """What the miner draws at the wall right now (0 when unreachable, i.e. powered off)."""
        return self._get(ip).power_sample(CH_POWER)

    def inlet_temp_c(self, ip: str) -> float:
        return self._get(ip).spec.inlet_temp_c

    # -- listeners ---------------------------------------------------------------------------

    def _get(self, ip: str) -> _Miner:
        try:
            return self._miners[str(ip)]
        except KeyError:
            raise KeyError(f"no emulated miner on {ip}") from None

    def _ports(self, m: _Miner) -> tuple[int, ...]:
        if m.profile.model.is_antminer and self._web:
            return (RPC_PORT, WEB_PORT)
        return (RPC_PORT,)

    def flap_elapsed_s(self, ip: str) -> float | None:
        """Seconds since a flapping miner was first contacted (None before). It answers for
        ``flap_period_s`` from then, refuses connections for the next, and so on: a link that
        holds long enough to be identified and then comes and goes during the burn-in."""
        since = self._get(ip).flap_since
        return None if since is None else time.monotonic() - since

    def flap_down(self, ip: str) -> bool:
        """Whether the flapping miner at `ip` refuses connections now (its odd periods)."""
        elapsed = self.flap_elapsed_s(ip)
        return elapsed is not None and int(elapsed // self.flap_period_s) % 2 == 1

    def _should_listen(self, m: _Miner) -> bool:
        f = m.profile.faults
        if not self._started or "unreachable" in f:
            return False
        return not ("flapping" in f and self.flap_down(m.ip))

    async def _open(self, m: _Miner) -> None:
        if m.opening or m.servers:
            return
        m.opening = True
        try:
            socks = []
            try:
                for port in self._ports(m):
                    socks.append((port, _listen(m.ip, port)))
            except OSError as e:
                for _, s in socks:
                    s.close()
                raise OSError(e.errno, f"emulator: cannot listen on {m.ip}: {e.strerror}") from e
            loop = asyncio.get_running_loop()
            servers = []
            for port, s in socks:
                proto = _HttpProtocol if port == WEB_PORT else _RpcProtocol
                servers.append(await loop.create_server(lambda p=proto: p(m), sock=s, backlog=LISTEN_BACKLOG))
            m.servers = servers
        finally:
            m.opening = False
        if not self._should_listen(m):  # changed while we were opening
            self._close(m)

    def _close(self, m: _Miner) -> None:
        servers, m.servers = m.servers, []
        for s in servers:
            s.close()

    async def _reconcile(self, m: _Miner) -> None:
        if self._should_listen(m):
            if not m.servers:
                await self._open(m)
        elif m.servers:
            self._close(m)

    def _reconcile_nowait(self, m: _Miner) -> None:
        if not self._should_listen(m):
            self._close(m)  # synchronous: refused from now on
        elif not m.servers:
            t = asyncio.get_running_loop().create_task(self._open(m))
            t.add_done_callback(_log_task_error)

    async def _flap_loop(self) -> None:
        """Open and close flapping miners' listeners as their periods turn (to within 1/20)."""
        while True:
            await asyncio.sleep(self.flap_period_s / 20)
            for m in self._miners.values():
                if m.flap_since is not None and "flapping" in m.profile.faults:
                    try:
                        await self._reconcile(m)
                    except OSError as e:  # e.g. the address got taken meanwhile
                        log.warning("emulator: %s", e)


def _log_task_error(t: asyncio.Task) -> None:
    if not t.cancelled() and t.exception() is not None:
        log.warning("emulator: %s", t.exception())


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _serving(fleet: Fleet, pdus: Iterable[PduSpec], power_source: Fleet | None = None):
    """The fleet and PDU agents for ``pdus`` (reading ``power_source``, the fleet by default)
    started, and stopped in reverse order however the block ends."""
    agents = []
    if pdus:
        from hosting.commissioning.pdu_agent import PduAgent

        agents = [PduAgent(p, power_source or fleet) for p in pdus]
    try:
        await fleet.start()
        for a in agents:
            await a.start()
        yield agents
    finally:
        for a in agents:
            await a.stop()
        await fleet.stop()


@contextlib.contextmanager
def running(fleet: Fleet, pdus: Iterable[PduSpec] = ()) -> Iterator[Fleet]:
    """Run ``fleet`` (and PDU agents for ``pdus``) on an asyncio loop in a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="miner-emulator", daemon=True)
    thread.start()
    serving = _serving(fleet, pdus)
    try:
        asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(timeout=600)
        try:
            yield fleet
        finally:
            asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(timeout=60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=60)
        loop.close()


def _raise_fd_limit() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


async def _serve(miners: list[MinerSpec], pdus: list[PduSpec], power_source: Fleet | None, web: bool | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with _serving(Fleet(miners, web=web), pdus, power_source) as agents:
        log.info("emulator: pid %d serves %d miners, %d PDUs", os.getpid(), len(miners), len(agents))
        await stop.wait()


def _child(miners, pdus, all_miners, web) -> None:
    power_source = Fleet(all_miners, web=False) if all_miners is not None else None
    asyncio.run(_serve(miners, pdus, power_source, web))


def serve_forever(
    miners: list[MinerSpec], pdus: Iterable[PduSpec] = (), processes: int = 1, *, web: bool | None = None
) -> None:
    """Serve ``miners`` (and PDU agents) until SIGINT/SIGTERM, sharded over ``processes`` forks.

    With several processes the miners are dealt round-robin; the PDU agents run in the first
    process and compute outlet power from a non-serving copy of the whole fleet (same specs, same
    deterministic readings), so a PDU may feed miners served by any process.
    """
    _raise_fd_limit()
    pdus = list(pdus)
    processes = max(1, min(int(processes), max(1, len(miners))))
    if processes == 1:
        asyncio.run(_serve(list(miners), pdus, None, web))
        return
    if web is None:
        first = miners[0].ip if miners else "127.0.0.1"
        web = _may_bind_port_80(first)
    ctx = multiprocessing.get_context("fork")
    procs = []
    for i in range(processes):
        shard = miners[i::processes]
        args = (shard, pdus if i == 0 else [], list(miners) if i == 0 and pdus else None, web)
        procs.append(ctx.Process(target=_child, args=args, name=f"miner-emulator-{i}", daemon=False))
    stopping = threading.Event()

    def _on_signal(signum, frame):
        stopping.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        while not stopping.is_set():
            if any(not p.is_alive() for p in procs):
                log.error("emulator: a shard process exited; stopping the others")
                break
            stopping.wait(0.5)
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        for s, h in old.items():
            signal.signal(s, h)
