"""One emulated miner: its spec, its faults, its story over time, the commands it took, and the
readings it gives (deterministic per serial).

A miner's stable biases come from a hash of its serial (or ``MinerSpec.seed``) and every reply of a
given kind uses the next sample of a per-miner counter, so the same sequence of requests gives the
same numbers run after run, varying a little from sample to sample.

What changes over time is a function of the fleet's emulated time (``clock``): the story's events
(``story``), the air at its intake (``clock.air_temp_c``), and what it was told (stop, resume, a power
limit, a reboot). Its chips run at ``air + rise × heat``: ``heat`` is 1 at full work, follows the work
it does (asleep, limited, ramping) with a thermal lag of ``HEAT_LAG_S``, and a stopped fan adds a rise
that climbs over minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from hosting.commissioning.emulator.clock import air_temp_c
from hosting.commissioning.emulator.latency import PROFILES, Latency, Line
from hosting.commissioning.emulator.models import EMULATED_MODELS
from hosting.commissioning.emulator.noise import mix, seed_of, u
from hosting.commissioning.emulator.story import Event, Plot, check_story

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
    # Curtailment must catch this one: told to stop, it answers success and goes on hashing and
    # drawing as before (and reads as mining); only its measured watts give it away.
    IGNORES_STOP = "ignores_stop"


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

# Over time.
IDLE_HEAT = 0.1  # asleep: the chips sit a few degrees over the air
HEAT_LAG_S = 90.0  # how fast the boards' temperature follows their work (time constant)
FAN_STOP_RISE_C = 24.0  # a stopped fan: the chips end up this much hotter …
FAN_STOP_LAG_S = 240.0  # … over about this long (time constant)
FAN_STOP_POWER = 0.99  # … and the miner draws a little less (one fan fewer, the rest flat out)
FAN_FLAT_OUT_RPM = 5950.0  # the other fans when one stops
REPLY_GRACE_S = 1.0  # a rebooting miner answers first, then goes down this much later


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
    inlet_temp_c: float = 25.0  # air at the miner's intake (its daily mean); temperatures follow it
    seed: int | None = None  # None → derived from the serial
    web_password: str = "root"  # noqa: S105 (the stock default) Antminer web UI digest password
    quirks: frozenset[Quirk] = frozenset()
    latency: str | None = None  # a key of latency.PROFILES; None → the fleet's
    story: tuple[Event, ...] = ()  # what happens to it over time (see story)
    # The air swings ± this over a day (0: constant), peaking at the site's own hour, with a
    # rack's own offset and slow wander (clock.air_temp_c): neighbours in a rack breathe the same air.
    inlet_swing_c: float = 0.0
    site: str = ""
    rack: str = ""
    # Whatsminer: btminer's privileged (write) API — enabled once per miner with WhatsMinerTool, as a
    # host that curtails does — and its password (pyasic's default_whatsminer_rpc_password). Off, it
    # answers every write "can't access write cmd", as from the factory.
    rpc_password: str = "admin"  # noqa: S105 (the stock default)
    privileged_api: bool = True

    def __post_init__(self) -> None:
        self.faults = check_faults(self.faults)
        self.quirks = frozenset(Quirk(q) for q in ((self.quirks,) if isinstance(self.quirks, str) else self.quirks))
        self.story = check_story(self.story)
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
# Commands received
# --------------------------------------------------------------------------------------------

STOP, RESUME, POWER_LIMIT, REBOOT = "stop", "resume", "power_limit", "reboot"
DONE, IGNORED, REFUSED = "done", "ignored", "refused"


@dataclass(frozen=True)
class Command:
    """One write a miner received, as its firmware took it: for tests (and benchmarks) to assert."""

    at_s: float  # the fleet's emulated time
    via: str  # "web" (Antminer CGI) or "rpc"
    command: str  # as sent: "set_miner_conf", "power_off", "adjust_power_limit", …
    params: dict[str, Any] = field(default_factory=dict)
    action: str | None = None  # STOP, RESUME, POWER_LIMIT, REBOOT, or None (no effect on its work)
    outcome: str = DONE  # DONE, IGNORED (answered success, did nothing), REFUSED (answered an error)


# --------------------------------------------------------------------------------------------
# What a miner reports that changes only with its faults and broken parts
# --------------------------------------------------------------------------------------------


class Board:
    """One hashboard: its chips and rate, and its four temperature sensors of each kind."""

    __slots__ = ("asic", "chip_sensors_c", "chips", "ideal_ghs", "pcb_sensors_c", "rate_ghs", "slot", "sn")

    def __init__(self, slot, chips, rate_ghs, ideal_ghs, chip_sensors_c, pcb_sensors_c, sn, asic):
        self.slot = slot
        self.chips = chips  # 0 → dead (not reported)
        self.rate_ghs = rate_ghs
        self.ideal_ghs = ideal_ghs
        # Stock S19 order: inlet, inlet, outlet, outlet (the air warms across the board). At full
        # work in 25 °C air; a reading moves them with the air and the board's heat.
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
_BASE_AIR_C = 25.0  # the air the sensor figures above are for


def _asic_string(chips: int) -> str:
    """bmminer's chain map: one 'o' per good chip, in groups of eight."""
    groups = ["o" * 8] * (chips // 8)
    if chips % 8:
        groups.append("o" * (chips % 8))
    return " ".join(groups)


class Profile:
    """Everything a miner reports that only changes with its faults and broken parts (boards died,
    fans stopped): rebuilt on set_faults, one per state its story reaches."""

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
        "stopped",
    )

    def __init__(
        self,
        spec: MinerSpec,
        seed: int,
        faults: frozenset[Fault],
        dead: frozenset[int] = frozenset(),
        stopped: frozenset[int] = frozenset(),
    ):
        declared = EMULATED_MODELS[spec.model]
        model = EMULATED_MODELS[declared.impostor] if Fault.WRONG_MODEL in faults else declared
        self.model = model
        self.faults = faults
        n = model.boards

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

        picked = (mix(seed ^ 0xDEAD) % n) if Fault.DEAD_BOARD in faults else -1
        dead = frozenset(d % n for d in dead) | ({picked} if picked >= 0 else set())
        first_dead = min(dead) if dead else -1
        short = -1
        if Fault.MISSING_CHIPS in faults:
            short = (first_dead + 1) % n if first_dead >= 0 else mix(seed ^ 0xC41F) % n
            if short in dead:
                short = -1
        ideal = model.hashrate_ths * 1000.0 / n
        hashing = 0.80 if Fault.UNDER_HASHING in faults else 1.0
        hot = Fault.OVERHEATING in faults
        boards = []
        for slot in range(n):
            chips = model.chips_per_board
            if slot in dead:
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
            chip_sensors = tuple(chip_c + d for d in _CHIP_SPREAD)
            pcb_sensors = tuple(pcb_c + d for d in _PCB_SPREAD)
            if Fault.HOT_OUTLET in faults and not hot:
                chip_sensors = _HOT_OUTLET_CHIP
                pcb_sensors = _HOT_OUTLET_PCB
            sn = f"{spec.serial[-10:]}B{slot}{mix(seed + slot) % 100000:05d}"
            asic = _asic_string(chips) if chips else ""
            boards.append(Board(slot, chips, rate, ideal, chip_sensors, pcb_sensors, sn, asic))
        self.boards = tuple(boards)
        self.present = tuple(b for b in boards if b.chips)
        self.rate_ideal_ghs = model.hashrate_ths * 1000.0

        fans = []
        picked_fan = mix(seed ^ 0xFA11) % model.fans if Fault.STOPPED_FAN in faults else -1
        self.stopped = frozenset(f % model.fans for f in stopped) | ({picked_fan} if picked_fan >= 0 else set())
        for i in range(model.fans):
            if i in self.stopped:
                fans.append(0.0)
            elif hot or self.stopped:  # the firmware runs the others flat out
                fans.append(FAN_FLAT_OUT_RPM - 10.0 + 20.0 * u(seed, 0x400 + i))
            else:
                fans.append(5450.0 + 350.0 * u(seed, 0x400 + i))
        self.fans = tuple(fans)

        power = float(model.power_w) * (1.0 + 0.02 * u(seed, 0x500))  # ±2 % per unit
        power *= (n - len(dead)) / n
        if short >= 0:
            power *= 1.0 - 0.8 * MISSING_CHIPS / (model.chips_per_board * n)
        if Fault.OVER_DRAWING in faults:
            power *= 1.25
        power *= FAN_STOP_POWER ** len(self.stopped)
        self.power_w = power

        # Hard faults the firmware itself raises.
        am_err, wm_err = [], []
        for slot in sorted(dead):
            am_err.append(("rate", "e", f"Chain {slot} not found, hashboard offline"))
            wm_err.append(530 + slot)  # "Slot {n} not found."
        for fan in sorted(self.stopped):
            am_err.append(("fans", "e", f"Fan {fan + 1} speed is 0, fan lost"))
            wm_err.append(110 + fan)  # intake / exhaust fan speed error
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


class Now(NamedTuple):
    """A miner's condition at one moment of the fleet's clock."""

    t: float
    down: bool  # powered off (an outage, a reboot): refuses connections, draws nothing
    boot_t: float | None  # when it last booted on the clock (None: before the fleet started)
    asleep: bool
    work: float  # share of its full rate it hashes at: 0 asleep, the ramp × its power limit's share
    ramp: float  # 0 → 1 after waking, booting or a new power limit
    limit: float  # its power limit's share of its stock draw (1: none)
    heat: float  # the boards' heat: 1 at full work, IDLE_HEAT asleep (lagging the work)
    air_c: float
    climb_c: float  # the extra rise from stopped fans
    decay: float  # share of its hashrate a worn miner still makes


# --------------------------------------------------------------------------------------------
# Per-miner state
# --------------------------------------------------------------------------------------------


class Miner:
    """One emulated miner's state on its fleet's loop: readings, listeners, connections, pace, and
    what happened to it over time."""

    __slots__ = (
        "_plot",
        "_profiles",
        "asleep",
        "blink",
        "cgi_line",
        "commands",
        "conns",
        "contact_s",
        "downs",
        "flap_since",
        "fleet",
        "ha1",
        "ip",
        "latency",
        "limit_w",
        "mark",
        "opening",
        "ramp_t",
        "rpc_line",
        "seed",
        "servers",
        "spec",
        "steady",
        "story",
        "ticks",
        "tokens",
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
        self._profiles: dict[tuple[frozenset[int], frozenset[int]], Profile] = {}
        self.set_faults(spec.faults)
        self.latency = Latency.of(spec.latency or fleet.latency, self.seed)
        # Stock firmware serves one RPC command and one CGI at a time: requests wait their turn.
        self.rpc_line = Line()
        self.cgi_line = Line()
        # Over time.
        self.story: tuple[Event, ...] = spec.story
        self.contact_s: float | None = None  # its first contact on the fleet's clock
        self._plot: Plot | None = None
        self.asleep = False
        self.limit_w: float | None = None  # a power limit it was given (None: its stock draw)
        self.ramp_t: float | None = None  # when it last started ramping up (woken, re-limited)
        self.downs: list[tuple[float, float]] = []  # reboots: [start, end) on the clock
        self.mark: tuple[float, float, float] | None = None  # (t, heat then, target then): heat's last turn
        self.commands: list[Command] = []
        self.tokens: dict[str, float] = {}  # Whatsminer: privileged tokens issued, host_sign → wall time
        self._steady()

    # -- the static part -----------------------------------------------------------------------

    def set_faults(self, faults: frozenset[Fault]) -> None:
        self._profiles.clear()
        self._profiles[(frozenset(), frozenset())] = Profile(self.spec, self.seed, faults)

    @property
    def base(self) -> Profile:
        return self._profiles[(frozenset(), frozenset())]

    @property
    def profile(self) -> Profile:
        """What it reports now, its story's broken boards and fans included."""
        plot = self.plot()
        if not (plot.boards or plot.fans):
            return self.base
        t = self.fleet.clock.now_s()
        key = (plot.dead_boards(t), frozenset(plot.stopped_fans(t)))
        p = self._profiles.get(key)
        if p is None:
            p = self._profiles[key] = Profile(self.spec, self.seed, self.base.faults, *key)
        return p

    def _steady(self) -> None:
        """Whether nothing about it changes over time (the common case, read without the sums)."""
        self.steady = not (
            self.story or self.spec.inlet_swing_c or self.downs or self.mark or self.asleep or self.limit_w
        )

    # -- the story -------------------------------------------------------------------------------

    def plot(self) -> Plot:
        if self._plot is None:
            model = self.base.model
            self._plot = Plot(self.story, self.seed, model.boards, model.fans, self.contact_s)
        return self._plot

    def set_story(self, story: Iterable[Event]) -> None:
        self.story = check_story(story)
        self._plot = None
        self._steady()

    def contacted(self) -> None:
        """Somebody opened a connection to it (its story's CONTACT events count from the first)."""
        if self.contact_s is None:
            self.contact_s = self.fleet.clock.now_s()
            if self.plot().pending:
                self._plot = None
            if self.plot().outages:
                self.fleet.watch(self)

    def _outage(self, t: float) -> tuple[bool, float | None]:
        """Whether it is powered off at `t`, and when it last booted (None: before the fleet started)."""
        down, boot = Fault.UNREACHABLE in self.base.faults, None
        for start, end in (*self.plot().outages, *self.downs):
            if start <= t < end:
                down = True
            elif end <= t and (boot is None or end > boot):
                boot = end
        return down, boot

    def is_down(self) -> bool:
        if self.steady and not self.plot().outages:
            return Fault.UNREACHABLE in self.base.faults
        return self._outage(self.fleet.clock.now_s())[0]

    def has_timed_outages(self) -> bool:
        return bool(self.downs or self.plot().outages)

    # -- its condition now -----------------------------------------------------------------------

    def now(self) -> Now:
        clock = self.fleet.clock
        t = clock.now_s()
        spec = self.spec
        if self.steady:
            down = Fault.UNREACHABLE in self.base.faults
            return Now(t, down, None, False, 1.0, 1.0, 1.0, 1.0, spec.inlet_temp_c, 0.0, 1.0)
        down, boot = self._outage(t)
        plot = self.plot()
        limit = self._limit_share()
        starts = [s for s in (boot, self.ramp_t) if s is not None]
        since = max(starts) if starts else None
        ramp = 1.0 if since is None else min(1.0, max(0.0, (t - since) / self.base.model.ramp_s))
        work = 0.0 if self.asleep else ramp * limit
        heat = self._heat(t, boot, work)
        air = air_temp_c(spec.inlet_temp_c, spec.inlet_swing_c, spec.site, spec.rack, clock.wall_s(t))
        climb = 0.0
        for since_s in plot.stopped_fans(t).values():
            climb = max(climb, FAN_STOP_RISE_C * (1.0 - math.exp(-(t - since_s) / FAN_STOP_LAG_S)))
        return Now(t, down, boot, self.asleep, work, ramp, limit, heat, air, climb * heat, plot.decay(t))

    def _limit_share(self) -> float:
        if self.limit_w is None:
            return 1.0
        return min(1.0, self.limit_w / self.profile.power_w)

    def _target_heat(self, work: float) -> float:
        return IDLE_HEAT if self.asleep else max(IDLE_HEAT, work)

    def _heat(self, t: float, boot: float | None, work: float) -> float:
        """The boards' heat at `t`: the work's, reached exponentially since its last turn."""
        target = self._target_heat(work)
        mark = self.mark
        if boot is not None and (mark is None or boot > mark[0]):
            mark = (boot, 0.0, IDLE_HEAT)  # booted cold
        if mark is None:
            return target
        since, h0, target0 = mark
        return target + (h0 - target0) * math.exp(-(t - since) / HEAT_LAG_S)

    def elapsed(self) -> int:
        """Seconds since it booted (the firmware's uptime)."""
        n = self.now()
        return int(n.t - n.boot_t) if n.boot_t is not None else self.uptime0 + int(n.t)

    def air_c(self) -> float:
        return self.now().air_c

    def work_mode(self) -> int:
        """Antminer's bitmain-work-mode: 0 normal, 1 sleep."""
        return 1 if self.asleep else 0

    # -- readings --------------------------------------------------------------------------------

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

    def power_sample(self, ch: int) -> float:
        """What it draws at the wall now (W): nothing powered off, its sleep draw asleep, its stock
        draw (or its power limit) hashing, in between while it ramps up."""
        n = self.now()
        if n.down:
            return 0.0
        model = self.base.model
        noise = 1.0 + 0.005 * u(self.seed, (self.tick(ch) << 8) | 0xF0 | ch)
        sleep_w = model.sleep_w * (1.0 + 0.1 * u(self.seed, 0x510))
        if n.asleep:
            return sleep_w * noise
        full = self.profile.power_w * n.limit
        return (sleep_w + (full - sleep_w) * n.ramp) * noise

    def board_samples(self, ch: int) -> list[Sample]:
        """Each present board's next sample of channel ``ch``: its rate and every sensor."""
        k = self.tick(ch) << 12 | ch << 8
        seed = self.seed
        n = self.now()
        rate_k = n.work * n.decay
        air, heat, climb = n.air_c, n.heat, n.climb_c
        out = []
        for b in self.profile.present:
            key = k | b.slot << 2
            chip = 0.8 * u(seed, key | 1)  # a board's sensors drift together
            pcb = 0.6 * u(seed, key | 2)
            out.append(
                Sample(
                    b,
                    b.rate_ghs * rate_k * (1.0 + 0.005 * u(seed, key)) if rate_k else 0.0,
                    tuple(air + (t - _BASE_AIR_C) * heat + climb + chip for t in b.chip_sensors_c),
                    tuple(air + (t - _BASE_AIR_C) * heat + 0.8 * climb + pcb for t in b.pcb_sensors_c),
                )
            )
        return out

    def fan_samples(self, ch: int) -> list[int]:
        k = (self.tick(ch) << 12) | (ch << 8) | 0x80
        seed = self.seed
        n = self.now()
        fans = self.profile.fans
        if n.asleep:
            idle = self.base.model.idle_fan_rpm
            return [round(idle * (1.0 + 0.05 * u(seed, 0x480 + i)) + 20.0 * u(seed, k | i)) if f else 0
                    for i, f in enumerate(fans)]  # fmt: skip
        # The firmware's fan control follows the boards' heat and the air.
        pace = (0.75 + 0.25 * min(1.0, n.heat)) * (1.0 + 0.012 * (n.air_c - _BASE_AIR_C))
        return [round(min(6200.0, f * pace) + 40.0 * u(seed, k | i)) if f else 0 for i, f in enumerate(fans)]

    # -- commands --------------------------------------------------------------------------------

    def _record(self, via: str, command: str, params: dict, action: str | None, outcome: str) -> Command:
        c = Command(self.fleet.clock.now_s(), via, command, dict(params), action, outcome)
        self.commands.append(c)
        return c

    def _turn(self, change) -> None:
        """Apply `change` (a state change, given the time) with the boards' heat carried over: they
        cool or warm from where they were towards what the new state makes them."""
        before = self.now()
        change(before.t)
        self.steady = False
        after = self.now()
        self.mark = (before.t, before.heat, self._target_heat(after.work))

    def stop(self, via: str, command: str, params: dict) -> Command:
        """Stop hashing (Antminer sleep mode, Whatsminer power_off): the API answers, fans idle."""
        if Fault.IGNORES_STOP in self.base.faults:
            return self._record(via, command, params, STOP, IGNORED)
        if not self.asleep:
            self._turn(lambda t: setattr(self, "asleep", True))
        return self._record(via, command, params, STOP, DONE)

    def resume(self, via: str, command: str, params: dict) -> Command:
        """Hash again: back to its full rate after its ramp."""
        if self.asleep:

            def wake(t: float) -> None:
                self.asleep = False
                self.ramp_t = t

            self._turn(wake)
        return self._record(via, command, params, RESUME, DONE)

    def set_power_limit(self, watts: float, via: str, command: str, params: dict) -> Command:
        """Cap its draw at `watts` within the model's range (its hashrate in proportion); the mining
        process restarts on it (pyasic: "the miner will reboot"), so it ramps up to the new level."""
        model = self.base.model
        if not model.power_limit_min_w or not model.power_limit_min_w <= watts <= model.power_limit_w:
            return self._record(via, command, params, POWER_LIMIT, REFUSED)

        def limit(t: float) -> None:
            self.limit_w = float(watts)
            self.ramp_t = t

        self._turn(limit)
        return self._record(via, command, params, POWER_LIMIT, DONE)

    def reboot(self, via: str, command: str, params: dict) -> Command:
        """Answer, go off the network for the model's boot time, come back with its uptime reset."""
        t = self.fleet.clock.now_s() + REPLY_GRACE_S
        self.downs.append((t, t + self.base.model.boot_s))
        self.steady = False
        self.fleet.watch(self)
        return self._record(via, command, params, REBOOT, DONE)

    def refused(self, via: str, command: str, params: dict) -> Command:
        return self._record(via, command, params, None, REFUSED)

    def took(self, via: str, command: str, params: dict) -> Command:
        """A write with no effect on its work (a pool change, the LED): recorded all the same."""
        return self._record(via, command, params, None, DONE)
