"""Which machines an event curtails, pure: candidates with their contracts' rights and their
measured figures in, the chosen machines (in order), what they are expected to shed and the
shortfall out. No database: `hosting.curtailment.services` loads the rows and writes the choice.

The rules:
- A machine is eligible only within its contract's rights: the contract is curtailable (it
  has a priority), the machine's curtailed hours this month are below the contract's monthly
  maximum (none: no limit), and the notice given (from the event's announcement to the moment
  it curtails) is at least the contract's minimum notice.
- Eligible machines are taken by contract priority (lower first), then least efficient first
  (J/TH from the machine's measured windows; the model's nameplate J/TH when unmeasured),
  until their expected shed reaches the target. Expected shed = measured draw (else
  nameplate) minus the model's sleep draw: a sleeping miner still feeds its control board,
  PSU standby and fans.
- When the eligible machines do not reach the target, all of them are taken and the rest is
  the shortfall.
- The last machine needed, when stopping it would shed more than the target still needs and
  its firmware takes a power limit (Whatsminers: btminer's `adjust_power_limit`), is limited
  instead of stopped — to the draw that sheds just what is missing, if that is within the
  firmware's range; otherwise it is stopped.
- Resume goes the other way: most efficient first, so the hashrate comes back soonest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# What a miner draws asleep (Antminer sleep mode, Whatsminer power_off): control board, PSU
# standby and fans at idle — a few tens of watts (vendors' figures, as the emulator draws).
SLEEP_W_BY_VENDOR = {"bitmain": 36.0, "microbt": 42.0, "canaan": 45.0}
SLEEP_W_DEFAULT = 50.0

# Reasons a machine is not eligible.
NOT_CURTAILABLE = "not_curtailable"
HOURS_USED = "hours_used"
NOTICE = "notice"


# The least a power limit may be, as a share of the nameplate, for firmware that takes one:
# Whatsminer firmware accepts limits down to about half its rated power (M30S++: 1,700 of
# 3,600 W; M50: 1,650 of 3,500 W); a margin above that. Stock Antminer firmware has none.
POWER_LIMIT_FLOOR_SHARE = {"microbt": 0.55}


def sleep_w(vendor: str) -> float:
    return SLEEP_W_BY_VENDOR.get(vendor, SLEEP_W_DEFAULT)


def power_limit_min_w(vendor: str, nameplate_w: float) -> float | None:
    """The lowest power limit the firmware is sent (None: it takes no power limit)."""
    share = POWER_LIMIT_FLOOR_SHARE.get(vendor)
    return None if share is None else round(nameplate_w * share)


@dataclass(frozen=True)
class Candidate:
    """A live machine that could be curtailed, with its contract's rights and its figures."""

    machine_id: int
    contract_id: int
    priority: int | None  # None: the contract is not curtailable
    max_hours_month: int | None  # None: no monthly limit
    hours_used: float  # curtailed this month so far
    notice_min: int  # the contract's minimum notice
    nameplate_w: float
    nameplate_ths: float
    sleep_w: float
    measured_w: float | None = None  # its recent draw (PDU or the miner's own), if measured
    measured_j_per_th: float | None = None  # from its recent windows, if measured
    circuit_id: int | None = None
    power_limit_min_w: float | None = None  # None: its firmware takes no power limit

    @property
    def j_per_th(self) -> float:
        if self.measured_j_per_th is not None:
            return self.measured_j_per_th
        return self.nameplate_w / self.nameplate_ths if self.nameplate_ths > 0 else float("inf")

    @property
    def power_before_w(self) -> float:
        return self.measured_w if self.measured_w is not None else self.nameplate_w

    @property
    def expected_shed_w(self) -> float:
        return max(0.0, self.power_before_w - self.sleep_w)


@dataclass(frozen=True)
class Choice:
    """A chosen machine: its rank (1 = first to go), efficiency and expected shed."""

    machine_id: int
    contract_id: int
    rank: int
    j_per_th: float
    expected_shed_w: float
    power_before_w: float
    circuit_id: int | None
    power_limit_w: int | None = None  # limited to this instead of stopped


@dataclass(frozen=True)
class Plan:
    chosen: tuple[Choice, ...]
    target_w: float
    planned_w: float
    shortfall_w: float
    ineligible: dict[int, str] = field(default_factory=dict)  # machine id → reason


def ineligible_reason(candidate: Candidate, notice_given_min: float) -> str | None:
    """Why the contract's rights do not allow curtailing this machine now (None: they do)."""
    if candidate.priority is None:
        return NOT_CURTAILABLE
    if candidate.max_hours_month is not None and candidate.hours_used >= candidate.max_hours_month:
        return HOURS_USED
    if notice_given_min < candidate.notice_min:
        return NOTICE
    return None


def order_key(candidate: Candidate) -> tuple:
    """Priority first (lower first), then least efficient (highest J/TH) first; the machine
    id last, so that the same fleet always gives the same order."""
    return (candidate.priority, -candidate.j_per_th, candidate.machine_id)


def choose(candidates: Iterable[Candidate], target_w: float, notice_given_min: float) -> Plan:
    """The machines to curtail for `target_w` watts, within rights, in the order they go."""
    target_w = max(0.0, target_w)
    eligible: list[Candidate] = []
    ineligible: dict[int, str] = {}
    for c in candidates:
        reason = ineligible_reason(c, notice_given_min)
        if reason is None:
            eligible.append(c)
        else:
            ineligible[c.machine_id] = reason
    chosen: list[Choice] = []
    planned = 0.0
    for c in sorted(eligible, key=order_key):
        if planned >= target_w:
            break
        shed = c.expected_shed_w
        if shed <= 0:
            continue
        limit_w = _trim(c, target_w - planned)
        if limit_w is not None:
            shed = c.power_before_w - limit_w
        chosen.append(
            Choice(
                c.machine_id, c.contract_id, len(chosen) + 1, c.j_per_th, shed, c.power_before_w, c.circuit_id,
                limit_w,
            )
        )  # fmt: skip
        planned += shed
    return Plan(tuple(chosen), target_w, planned, max(0.0, target_w - planned), ineligible)


def _trim(c: Candidate, missing_w: float) -> int | None:
    """The power limit that sheds `missing_w` from this machine, when stopping it would shed
    more and its firmware takes a limit that low; None: stop it."""
    if c.power_limit_min_w is None or missing_w >= c.expected_shed_w:
        return None
    limit_w = math.floor(c.power_before_w - missing_w)  # down to the watt, never short
    return limit_w if limit_w >= c.power_limit_min_w else None


def resume_order(chosen: Sequence[Choice]) -> list[Choice]:
    """Most efficient (lowest J/TH) first."""
    return sorted(chosen, key=lambda c: (c.j_per_th, c.machine_id))


def release_offsets_s(
    chosen: Sequence[tuple[int | None, float]], ramp_w_per_s: float | None, circuit_gap_s: float
) -> list[float]:
    """When each machine's command goes, in seconds from the start, for machines given in the
    order they go as (circuit, watts they move): the ramp spreads the load over time (the n-th
    machine goes when the watts before it have had their time at `ramp_w_per_s`; None: no ramp),
    and two machines of one circuit go at least `circuit_gap_s` apart, so no circuit steps its
    whole load at once."""
    offsets: list[float] = []
    moved = 0.0
    last_on: dict[int | None, float] = {}
    for circuit, watts in chosen:
        at = moved / ramp_w_per_s if ramp_w_per_s else 0.0
        if circuit is not None and circuit in last_on:
            at = max(at, last_on[circuit] + circuit_gap_s)
        last_on[circuit] = at
        offsets.append(round(at, 3))
        moved += watts
    return offsets
