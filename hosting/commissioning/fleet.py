"""What the emulator should pretend to be: machines and PDUs from the database, as specs."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping

from capacity.models import Pdu, Slot
from hosting.commissioning.emulator import CONTACT, EMULATED_MODELS, Event, Fault, MinerSpec, PduSpec, Quirk
from hosting.models import Machine
from hosting.services import ON_THE_FLOOR

# What the demo's emulated fleet gets wrong, one machine in `every`: the commissioning
# pipeline should catch each of these.
DEMO_FAULTS = (
    Fault.DEAD_BOARD,
    Fault.MISSING_CHIPS,
    Fault.UNDER_HASHING,
    Fault.OVERHEATING,
    Fault.STOPPED_FAN,
    Fault.OVER_DRAWING,
    Fault.WRONG_MAC,
)


def demo_faults(serial: str, every: int = 4) -> frozenset[Fault]:
    """A deterministic fault for about one machine in `every`, by its serial."""
    digest = int(hashlib.sha256(serial.encode()).hexdigest(), 16)
    if digest % every:
        return frozenset()
    return frozenset({DEMO_FAULTS[(digest // every) % len(DEMO_FAULTS)]})


# What happens to about one healthy machine in `every` while the demo runs, so that its charts and
# alerts have something to show: a board dies, a fan stops, it drops off the network for a few
# minutes and reboots, its hashrate wears down, or it ignores a stop command (curtailment must see
# it by its watts).
DEMO_STORIES = ("board_dies", "fan_stops", "offline", "decay", "ignores_stop")
STORY_FROM_S, STORY_TO_S = 300, 1800  # 5–30 minutes after its first contact: after commissioning


def demo_story(serial: str, every: int = 8) -> tuple[tuple[Event, ...], frozenset[Fault]]:
    """A deterministic story (events, and a fault for the stubborn one) for about one machine in
    `every`, by its serial, timed 5–30 minutes after its first contact."""
    digest = int(hashlib.sha256(f"story:{serial}".encode()).hexdigest(), 16)
    if digest % every:
        return (), frozenset()
    digest //= every
    kind = DEMO_STORIES[digest % len(DEMO_STORIES)]
    digest //= len(DEMO_STORIES)
    at_s = STORY_FROM_S + digest % (STORY_TO_S - STORY_FROM_S + 1)
    digest //= STORY_TO_S - STORY_FROM_S + 1
    if kind == "board_dies":
        return (Event.board_dies(at_s, origin=CONTACT),), frozenset()
    if kind == "fan_stops":
        return (Event.fan_stops(at_s, origin=CONTACT),), frozenset()
    if kind == "offline":
        return (Event.offline(at_s, for_s=180 + digest % 421, origin=CONTACT),), frozenset()  # 3–10 min
    if kind == "decay":
        return (Event.decay(at_s, pct_per_h=8.0, floor_pct=70.0, origin=CONTACT),), frozenset()
    return (), frozenset({Fault.IGNORES_STOP})


def demo_quirks(serial: str, every: int = 6) -> frozenset[Quirk]:
    """Firmware habits of about one healthy machine in `every` (a Whatsminer's slow get_psu)."""
    digest = int(hashlib.sha256(f"quirk:{serial}".encode()).hexdigest(), 16)
    return frozenset() if digest % every else frozenset({Quirk.SLOW_PSU})


def miner_specs(
    machines: Iterable[Machine],
    faults: Mapping[str, Iterable[str]] | None = None,
    quirks: Mapping[str, Iterable[Quirk]] | None = None,
    stories: Mapping[str, Iterable[Event]] | None = None,
    air_swing_c: float = 0.0,
) -> list[MinerSpec]:
    """One spec per machine with an IP and an emulated model; `faults`, `quirks` and `stories` by
    serial. With `air_swing_c` the air swings over the day, per site and rack (read from the slot)."""
    faults = faults or {}
    quirks = quirks or {}
    stories = stories or {}
    specs = []
    for m in machines:
        if not (m.ip and m.model.slug in EMULATED_MODELS):
            continue
        site = rack = ""
        if air_swing_c and m.slot is not None:
            site, rack = m.slot.rack.site.slug, m.slot.rack.name
        specs.append(
            MinerSpec(
                ip=m.ip,
                model=m.model.slug,
                serial=m.serial,
                mac=m.mac,
                hostname=m.serial.lower(),
                faults=frozenset(Fault(f) for f in faults.get(m.serial, ())),
                quirks=frozenset(quirks.get(m.serial, ())),
                story=tuple(stories.get(m.serial, ())),
                inlet_swing_c=air_swing_c,
                site=site,
                rack=rack,
            )
        )
    return specs


def pdu_specs(pdus: Iterable[Pdu], inlet_temp_c: float = 27.0, air_swing_c: float = 0.0) -> list[PduSpec]:
    """Each PDU with its outlets mapped to the IP of the machine in the slot they feed (its inlet
    sensor in the site's air, swinging over the day with `air_swing_c`)."""
    pdus = list(pdus)
    outlets: dict[int, dict[int, str]] = defaultdict(dict)
    wired = Slot.objects.filter(circuit__pdu__in=pdus, outlet__isnull=False, machine__ip__isnull=False).values_list(
        "circuit__pdu_id", "outlet", "machine__ip"
    )
    for pdu_id, outlet, ip in wired:  # outlet and IP are not null (the filter)
        outlets[pdu_id][int(outlet or 0)] = str(ip)
    return [
        PduSpec(
            host=p.host,
            port=p.port,
            community=p.community,
            profile=p.profile,
            inlet_temp_c=inlet_temp_c,
            outlets=outlets[p.pk],
            inlet_swing_c=air_swing_c,
            site=p.site.slug if air_swing_c else "",
        )
        for p in pdus
    ]


def from_database(
    site_slug: str | None = None,
    fault_every: int | None = None,
    stories_every: int | None = None,
    air_swing_c: float = 0.0,
) -> tuple[list[MinerSpec], list[PduSpec]]:
    """Specs for every machine on the floor that has an IP (and every PDU) — at one site or all.

    About one machine in `fault_every` gets a fault commissioning must catch; about one of the
    others in `stories_every` a story that unfolds after it went live (`demo_story`)."""
    machines_qs = Machine.objects.filter(status__in=ON_THE_FLOOR, ip__isnull=False).select_related(
        "model", "slot__rack__site"
    )
    pdus = Pdu.objects.select_related("site")
    if site_slug:
        machines_qs = machines_qs.filter(contract__site__slug=site_slug)
        pdus = pdus.filter(site__slug=site_slug)
    machines = list(machines_qs)
    faults: dict[str, frozenset[Fault]] = (
        {m.serial: demo_faults(m.serial, fault_every) for m in machines} if fault_every else {}
    )
    quirks = {m.serial: demo_quirks(m.serial) for m in machines} if fault_every else {}
    stories: dict[str, tuple[Event, ...]] = {}
    if stories_every:
        for m in machines:
            if faults.get(m.serial):
                continue  # it never goes live: its story would never be seen
            story, stubborn = demo_story(m.serial, stories_every)
            stories[m.serial] = story
            if stubborn:
                faults[m.serial] = stubborn
    return miner_specs(machines, faults, quirks, stories, air_swing_c), pdu_specs(pdus, air_swing_c=air_swing_c)
