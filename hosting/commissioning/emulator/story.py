"""A miner's story: what happens to it over time — a board that dies, a fan that stops, an outage and
a reboot, a slow loss of hashrate.

A story is a tuple of ``Event``s on ``MinerSpec.story`` (or set at run time, ``Fleet.set_story``).
Each event happens ``at_s`` emulated seconds after its origin: the fleet's start (``START``) or the
miner's first contact (``CONTACT``: the first connection anyone opens to it, so a machine racked
later, or commissioned first, lives its story from then). Times are in the fleet's emulated seconds
(``clock``), so a test scripts "board 1 dies 40 s after start" and jumps there with
``Fleet.advance``. Which board or fan, when not given, follows the miner's seed: the same serial
tells the same story every run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from hosting.commissioning.emulator.noise import mix

START = "start"
CONTACT = "contact"
ORIGINS = (START, CONTACT)


class Happening(StrEnum):
    """What an event does to the miner."""

    BOARD_DIES = "board_dies"  # its chips and hashrate go, the firmware flags the chain, it draws 1/n less
    FAN_STOPS = "fan_stops"  # 0 RPM: the firmware flags it, the others run flat out, the chips heat up
    OFFLINE = "offline"  # powered off for `for_s` (refused, ~0 W), then boots: uptime from zero, ramps up
    DECAY = "decay"  # hashrate falls `pct_per_h` % an hour (worn chips), down to `floor_pct` % of nominal


@dataclass(frozen=True)
class Event:
    """One thing that happens to a miner, `at_s` seconds after `origin` (START or CONTACT)."""

    what: Happening
    at_s: float
    origin: str = START
    for_s: float = 0.0  # OFFLINE: how long it stays off (0: for good)
    board: int | None = None  # BOARD_DIES: the slot (None: by the miner's seed)
    fan: int | None = None  # FAN_STOPS: which fan, from 0 (None: by the miner's seed)
    pct_per_h: float = 6.0  # DECAY
    floor_pct: float = 75.0  # DECAY

    def __post_init__(self) -> None:
        object.__setattr__(self, "what", Happening(self.what))
        if self.origin not in ORIGINS:
            raise ValueError(f"an event happens after {' or '.join(ORIGINS)}, not {self.origin!r}")
        if self.at_s < 0 or self.for_s < 0:
            raise ValueError("an event's times are seconds from now on")

    @classmethod
    def board_dies(cls, at_s: float, board: int | None = None, origin: str = START) -> Event:
        return cls(Happening.BOARD_DIES, at_s, origin, board=board)

    @classmethod
    def fan_stops(cls, at_s: float, fan: int | None = None, origin: str = START) -> Event:
        return cls(Happening.FAN_STOPS, at_s, origin, fan=fan)

    @classmethod
    def offline(cls, at_s: float, for_s: float = 0.0, origin: str = START) -> Event:
        return cls(Happening.OFFLINE, at_s, origin, for_s=for_s)

    @classmethod
    def decay(cls, at_s: float, pct_per_h: float = 6.0, floor_pct: float = 75.0, origin: str = START) -> Event:
        return cls(Happening.DECAY, at_s, origin, pct_per_h=pct_per_h, floor_pct=floor_pct)


def check_story(events: Iterable[Event]) -> tuple[Event, ...]:
    events = tuple(events)
    if not all(isinstance(e, Event) for e in events):
        raise ValueError("a story is a sequence of Event")
    return tuple(sorted(events, key=lambda e: (e.origin, e.at_s)))


class Plot:
    """A story resolved for one miner: when each event happens on the fleet's clock."""

    __slots__ = ("boards", "decays", "fans", "outages", "pending")

    def __init__(self, story: tuple[Event, ...], seed: int, boards: int, fans: int, contact_s: float | None):
        self.boards: list[tuple[float, int]] = []  # (when, slot)
        self.fans: list[tuple[float, int]] = []  # (when, fan)
        self.outages: list[tuple[float, float]] = []  # [start, end), end = inf for good
        self.decays: list[tuple[float, float, float]] = []  # (when, %/h, floor %)
        self.pending = False  # events after a contact that has not happened yet
        for i, e in enumerate(story):
            origin_s = 0.0
            if e.origin == CONTACT:
                if contact_s is None:
                    self.pending = True
                    continue
                origin_s = contact_s
            at = e.at_s + origin_s
            pick = mix(seed ^ (0x5707 + i))
            if e.what is Happening.BOARD_DIES:
                self.boards.append((at, (e.board if e.board is not None else pick) % boards))
            elif e.what is Happening.FAN_STOPS:
                self.fans.append((at, (e.fan if e.fan is not None else pick) % fans))
            elif e.what is Happening.OFFLINE:
                self.outages.append((at, at + e.for_s if e.for_s else float("inf")))
            else:
                self.decays.append((at, e.pct_per_h, e.floor_pct))

    def dead_boards(self, t: float) -> frozenset[int]:
        return frozenset(slot for at, slot in self.boards if at <= t)

    def stopped_fans(self, t: float) -> dict[int, float]:
        """Each fan stopped by `t` and since when."""
        out: dict[int, float] = {}
        for at, fan in self.fans:
            if at <= t:
                out[fan] = min(at, out.get(fan, at))
        return out

    def decay(self, t: float) -> float:
        """The share of its hashrate a worn miner still makes at `t`."""
        k = 1.0
        for at, pct, floor in self.decays:
            if at <= t:
                k = min(k, max(floor / 100.0, 1.0 - pct / 100.0 * (t - at) / 3600.0))
        return k
