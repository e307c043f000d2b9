"""Building a site's power chain in bulk: feeds → circuits, racks → slots.

For seeding a new build-out (the demo, the benchmark, an import of a new hall). It only
inserts empty slots and new circuits, which cannot overload anything, so it bypasses the
ledger's per-row checks and writes with bulk inserts (tens of thousands of slots a
second).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from capacity.ledger import floor_changed
from capacity.models import Circuit, PowerFeed, Rack, Site, Slot
from changelog import record as changes


def name(row: Rack | Circuit) -> str:
    return row.name


@dataclass(frozen=True)
class HallLayout:
    """A repeated unit: each feed feeds `racks_per_feed` racks; each rack has
    `circuits_per_rack` circuits of `slots_per_circuit` slots."""

    feeds: int
    racks_per_feed: int = 22
    circuits_per_rack: int = 2
    slots_per_circuit: int = 16
    feed_kva: int = 2500
    voltage_v: int = 415
    phases: int = 3
    breaker_amps: int = 100
    power_factor: Decimal = Decimal("0.95")
    prefix: str = ""

    @property
    def slot_count(self) -> int:
        return self.feeds * self.racks_per_feed * self.circuits_per_rack * self.slots_per_circuit


def build_hall(site: Site, layout: HallLayout, batch_size: int = 5000) -> int:
    """Insert the feeds, circuits, racks and slots of `layout` at `site`; return the slot count.

    Relies on bulk_create returning primary keys (PostgreSQL; SQLite ≥ 3.35).
    """
    p = layout.prefix
    with transaction.atomic():
        feeds = PowerFeed.objects.bulk_create(
            [PowerFeed(site=site, name=f"{p}T{f + 1:03d}", rating_kva=layout.feed_kva) for f in range(layout.feeds)]
        )
        changes.created(feeds, via="layout.build_hall", describe=lambda f: f.name)
        racks: list[Rack] = []
        circuits_of: dict[str, list[Circuit]] = {}
        for f, feed in enumerate(feeds):
            row = f"{p}{chr(ord('A') + f % 26)}{f // 26 + 1}"
            for r in range(layout.racks_per_feed):
                rack = Rack(site=site, feed=feed, row=row, name=f"{row}-R{r + 1:02d}")
                racks.append(rack)
                circuits_of[rack.name] = [
                    Circuit(
                        feed=feed,
                        name=f"{rack.name}-C{c + 1}",
                        voltage_v=layout.voltage_v,
                        phases=layout.phases,
                        breaker_amps=layout.breaker_amps,
                        power_factor=layout.power_factor,
                    )
                    for c in range(layout.circuits_per_rack)
                ]
        changes.created(Rack.objects.bulk_create(racks, batch_size=batch_size), via="layout.build_hall", describe=name)
        circuits = Circuit.objects.bulk_create([c for cs in circuits_of.values() for c in cs], batch_size=batch_size)
        changes.created(circuits, via="layout.build_hall", describe=name)
        # The slots come with their racks (recorded above); their occupancy is recorded by the ledger.
        slots = [
            Slot(rack=rack, position=c * layout.slots_per_circuit + s + 1, circuit=circuit)
            for rack in racks
            for c, circuit in enumerate(circuits_of[rack.name])
            for s in range(layout.slots_per_circuit)
        ]
        Slot.objects.bulk_create(slots, batch_size=batch_size)
        floor_changed([site.pk])
    return len(slots)
