"""The planner: which circuits and slots would take N machines, and booking that.

`plan` is pure over a `Floor` (a site's built floor read in one aggregate query): it
spreads the machines over the circuits, emptiest first, so that every circuit stays
within its 80 % limit and every feed within its rating, and returns how many go on each
circuit without touching anything. `apply` picks the concrete free slots (spreading over
the legs of three-phase circuits) and books them through `ledger.assign_slots`, which
re-checks everything under its locks.

Floors are cached per process by the site's `floor_version`, which the ledger bumps in
every transaction that changes a floor, so quotes read them without scanning slots.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple

from django.db.models import Count, Q

from capacity import errors, ledger, power
from capacity.models import Circuit, PowerFeed, Site, Slot, load_w

LEGS = 3  # three-phase circuits: consecutive slots are wired L1-L2, L2-L3, L3-L1 in turn


class CircuitRoom(NamedTuple):
    """One circuit as the planner sees it. A tuple of numbers: tens of thousands of them
    sit in each web process's cache, and the garbage collector need not track tuples."""

    circuit_id: int
    feed_id: int
    usable_w: int
    load_w: int
    power_factor: Decimal
    phases: int
    slots: int
    free_slots: int

    def takes(self, watts: int) -> int:
        """Machines of `watts` this circuit can still take, by slots and by the 80 % rule."""
        return max(0, min(self.free_slots, (self.usable_w - self.load_w) // watts))


@dataclass
class Floor:
    """A site's built floor: per circuit the watts and slots still free; per feed the VA."""

    site_id: int
    circuits: list[CircuitRoom]
    feed_room_va: dict[int, Decimal]
    _placeable: dict[int, int] = field(default_factory=dict, repr=False)

    @cached_property
    def standard_circuit(self) -> CircuitRoom | None:
        """The most common circuit design at the site (rating and slot count)."""
        if not self.circuits:
            return None
        designs = Counter((c.usable_w, c.slots) for c in self.circuits)
        usable_w, slots = designs.most_common(1)[0][0]
        return next(c for c in self.circuits if (c.usable_w, c.slots) == (usable_w, slots))

    def circuits_for(self, watts: int, machines: int) -> int:
        """How many circuits of the standard design `machines` fill (the electrical footprint)."""
        standard = self.standard_circuit
        if standard is None:
            return 0
        per_circuit = min(standard.slots, standard.usable_w // watts)
        return -(-machines // per_circuit) if per_circuit else 0

    def placeable(self, watts: int) -> int:
        """Machines of `watts` the built floor could take today, within circuit and feed limits."""
        if watts not in self._placeable:
            by_feed: dict[int, list[CircuitRoom]] = defaultdict(list)
            for c in self.circuits:
                by_feed[c.feed_id].append(c)
            total = 0
            for feed_id, circuits in by_feed.items():
                # Conservative: price the feed's VA at its worst power factor.
                worst_pf = min(c.power_factor for c in circuits)
                feed_cap = int(self.feed_room_va.get(feed_id, Decimal(0)) // power.apparent_va(watts, worst_pf))
                total += min(feed_cap, sum(c.takes(watts) for c in circuits))
            self._placeable[watts] = total
        return self._placeable[watts]


@dataclass(frozen=True)
class Plan:
    """Where `count` machines of `watts` would go at a site: machines per circuit."""

    site_id: int
    watts: int
    count: int
    per_circuit: dict[int, int]

    @property
    def placed(self) -> int:
        return sum(self.per_circuit.values())

    @property
    def unplaced(self) -> int:
        return self.count - self.placed

    @property
    def circuits(self) -> int:
        return len(self.per_circuit)


def plan(floor: Floor, watts: int, count: int) -> Plan:
    """Spread `count` machines over the floor, always onto the least-loaded circuit that
    still takes one (by share of its usable watts), within each feed's rating.

    Pure and exact per machine: O(count · log circuits). What does not fit is `unplaced`.
    """
    if watts <= 0 or count < 0:
        raise ValueError("watts must be positive and count not negative")
    feed_room = dict(floor.feed_room_va)
    load = {c.circuit_id: c.load_w for c in floor.circuits}
    left = {c.circuit_id: c.takes(watts) for c in floor.circuits}
    va = {c.circuit_id: power.apparent_va(watts, c.power_factor) for c in floor.circuits}
    heap = [(c.load_w / c.usable_w, c.circuit_id, c) for c in floor.circuits if left[c.circuit_id] > 0]
    heapq.heapify(heap)
    per_circuit: dict[int, int] = defaultdict(int)
    placed = 0
    while placed < count and heap:
        _, circuit_id, circuit = heapq.heappop(heap)
        if feed_room.get(circuit.feed_id, Decimal(0)) < va[circuit_id]:
            continue  # its feed is full: drop the circuit
        feed_room[circuit.feed_id] -= va[circuit_id]
        load[circuit_id] += watts
        left[circuit_id] -= 1
        per_circuit[circuit_id] += 1
        placed += 1
        if left[circuit_id] > 0:
            heapq.heappush(heap, (load[circuit_id] / circuit.usable_w, circuit_id, circuit))
    return Plan(floor.site_id, watts, count, dict(per_circuit))


# --------------------------------------------------------------------------------------
# Reading floors
# --------------------------------------------------------------------------------------


def load_floors(sites: Sequence[Site]) -> dict[int, Floor]:
    """Floors of many sites in two queries (circuits with their slot aggregates; feeds)."""
    ids = [s.pk for s in sites]
    rows = (
        Circuit.objects.filter(feed__site_id__in=ids)
        .values("pk", "feed_id", "feed__site_id", "voltage_v", "breaker_amps", "phases", "power_factor")
        .annotate(
            load_w=load_w(),
            slot_count=Count("slots"),
            free_count=Count("slots", filter=Q(slots__occupant__isnull=True)),
        )
        .order_by("pk")
    )
    circuits: dict[int, list[CircuitRoom]] = defaultdict(list)
    feed_load_va: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        circuits[row["feed__site_id"]].append(
            CircuitRoom(
                circuit_id=row["pk"],
                feed_id=row["feed_id"],
                usable_w=power.circuit_usable_w(
                    row["voltage_v"], row["breaker_amps"], row["phases"], row["power_factor"]
                ),
                load_w=row["load_w"],
                power_factor=row["power_factor"],
                phases=row["phases"],
                slots=row["slot_count"],
                free_slots=row["free_count"],
            )
        )
        feed_load_va[row["feed_id"]] += power.apparent_va(row["load_w"], row["power_factor"])
    feed_room: dict[int, dict[int, Decimal]] = defaultdict(dict)
    for feed_id, site_id, rating_kva in PowerFeed.objects.filter(site_id__in=ids).values_list(
        "pk", "site_id", "rating_kva"
    ):
        feed_room[site_id][feed_id] = Decimal(rating_kva * 1000) - feed_load_va[feed_id]
    return {s.pk: Floor(s.pk, circuits[s.pk], feed_room[s.pk]) for s in sites}


# site id → (floor_version, floor)
_FLOORS: dict[int, tuple[int, Floor]] = {}


def floors(sites: Sequence[Site]) -> dict[int, Floor]:
    """Floors from a per-process cache keyed by each site's `floor_version`."""
    found: dict[int, Floor] = {}
    stale = []
    for site in sites:
        hit = _FLOORS.get(site.pk)
        if hit and hit[0] == site.floor_version:
            found[site.pk] = hit[1]
        else:
            stale.append(site)
    loaded = load_floors(stale) if stale else {}
    for site in stale:
        _FLOORS[site.pk] = (site.floor_version, loaded[site.pk])
        found[site.pk] = loaded[site.pk]
    return found


def forget_cached() -> None:
    _FLOORS.clear()


# --------------------------------------------------------------------------------------
# From a plan to booked slots
# --------------------------------------------------------------------------------------


def pick_slots(a_plan: Plan) -> list[int]:
    """Concrete free slots for a plan: per circuit, the legs with the fewest machines first."""
    rows = Slot.objects.filter(circuit_id__in=a_plan.per_circuit).values_list(
        "pk", "circuit_id", "position", "occupant"
    )
    free: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    leg_load: dict[int, Counter] = defaultdict(Counter)
    for pk, circuit_id, position, occupant in rows.order_by("circuit_id", "position"):
        leg = (position - 1) % LEGS
        if occupant is None:
            free[circuit_id][leg].append((position, pk))
        else:
            leg_load[circuit_id][leg] += 1
    chosen: list[int] = []
    for circuit_id, n in a_plan.per_circuit.items():
        legs = free[circuit_id]
        if sum(len(leg) for leg in legs.values()) < n:
            raise errors.SlotOccupied(
                f"Circuit {circuit_id} has fewer free slots than planned: the floor changed; plan again."
            )
        for positions in legs.values():
            positions.reverse()  # pop() from the end takes the lowest position first
        for _ in range(n):
            leg = min((leg for leg in legs if legs[leg]), key=lambda leg: (leg_load[circuit_id][leg], leg))
            chosen.append(legs[leg].pop()[1])
            leg_load[circuit_id][leg] += 1
    return chosen


def apply(a_plan: Plan, occupants: Sequence[str]) -> list[Slot]:
    """Book the planned machines into concrete slots; all or nothing, re-checked under lock."""
    if len(occupants) != a_plan.placed:
        raise ValueError(f"the plan places {a_plan.placed} machines but {len(occupants)} occupants were given")
    slot_ids = pick_slots(a_plan)
    requests = [
        ledger.SlotRequest(slot_id, a_plan.watts, occ) for slot_id, occ in zip(slot_ids, occupants, strict=True)
    ]
    return ledger.assign_slots(requests)
