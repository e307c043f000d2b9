"""The floor map's layout: a site's racks as halls → rows → racks. Pure: rack figures in,
a nested list out (hosting.staff.svg.floor_map draws it).

Racks carry a `row` (e.g. ``A1``, ``H2-C3``) and a name; a hall is what the row name
says before its letter: the prefix of `capacity.layout.HallLayout` (``H2-``) or, without
one, the block number that follows the row letter (rows A1…Z1 are hall 1, A2… hall 2).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

ROW_NAME = re.compile(r"^(?P<prefix>.*?)(?P<letter>[A-Za-z]+)(?P<block>\d+)$")
NATURAL = re.compile(r"(\d+)")


def hall_of(row: str) -> str:
    """The hall a row belongs to (see the module's docstring); "—" for a rack without a row."""
    if not row:
        return "—"
    match = ROW_NAME.match(row)
    if match is None:
        return row
    prefix = match["prefix"].rstrip("-_ ")
    return prefix or match["block"]


def natural(text: str) -> tuple:
    """Sort key: A2 before A10."""
    return tuple(int(p) if p.isdigit() else p for p in NATURAL.split(text))


@dataclass(frozen=True)
class FloorRack:
    """One rack on the floor map: its latest measures and occupancy."""

    rack_id: int
    name: str
    row: str
    slots_total: int
    slots_used: int
    booked_w: int
    machines: int
    power_w: float
    hashrate_pct: float | None
    chip_temp_c: float | None
    href: str = ""

    @property
    def utilisation(self) -> float:
        return self.slots_used / self.slots_total if self.slots_total else 0.0

    @property
    def power_pct(self) -> float | None:
        """Measured ÷ booked, in %; None with nothing measured or booked."""
        return 100 * self.power_w / self.booked_w if self.machines and self.booked_w else None

    def value(self, measure: str) -> float | None:
        return {"power": self.power_pct, "hashrate": self.hashrate_pct, "temperature": self.chip_temp_c}[measure]

    @property
    def tooltip(self) -> str:
        parts = [f"{self.name}: {self.slots_used}/{self.slots_total} slots used"]
        if self.machines:
            parts.append(f"{self.power_w / 1000:,.1f} kW measured of {self.booked_w / 1000:,.1f} kW booked")
            if self.hashrate_pct is not None:
                parts.append(f"{self.hashrate_pct:.0f} % of nominal hashrate")
            if self.chip_temp_c is not None:
                parts.append(f"hottest chip {self.chip_temp_c:.0f} °C")
        else:
            parts.append("no measurement at the latest poll")
        return " · ".join(parts)


def layout(racks: Iterable[FloorRack]) -> list[tuple[str, list[tuple[str, list[FloorRack]]]]]:
    """Halls in natural order, each with its rows in natural order, each with its racks by name."""
    halls: dict[str, dict[str, list[FloorRack]]] = defaultdict(lambda: defaultdict(list))
    for rack in racks:
        halls[hall_of(rack.row)][rack.row or "—"].append(rack)
    out = []
    for hall, rows in sorted(halls.items(), key=lambda kv: natural(kv[0])):
        ordered = sorted(rows.items(), key=lambda kv: natural(kv[0]))
        out.append((hall, [(row, sorted(rs, key=lambda r: natural(r.name))) for row, rs in ordered]))
    return out


def floor_racks(figures: Iterable, href: Callable[[int], str]) -> list[FloorRack]:
    """FloorRacks from hosting.telemetry.reports.racks_now rows (with `name`, `row`, `booked_w`)."""
    return [
        FloorRack(r.rack_id, r.name, r.row, r.slots_total, r.slots_used, r.booked_w, r.machines, r.power_w,
                  r.hashrate_pct, r.chip_temp_c, href(r.rack_id))
        for r in figures
    ]  # fmt: skip
