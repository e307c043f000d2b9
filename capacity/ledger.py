"""The capacity ledger: the only way to book power and slots, and the reading of the books.

Each write runs in a transaction that locks the rows the rule is about (site row for the
MW budget; feed, then circuit, then slot rows for watts), recomputes from the database
under that lock with the pure maths of `capacity.power`, and refuses with a typed
`capacity.errors.LedgerError` saying what is short and from when it would fit. Locks are
always taken in the same order (site; feed → circuit → slot, each by primary key), so two
bookings cannot deadlock each other.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, overload

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from capacity.errors import (
    CircuitOverloaded,
    FeedOverloaded,
    InsufficientCapacity,
    LedgerError,
    OverBudget,
    ReferenceConflict,
    SlotOccupied,
)
from capacity.models import BULK_BATCH_SIZE, Circuit, EnergizationPhase, PowerFeed, Reservation, Site, Slot
from capacity.power import PhaseLike, SiteBook, Timeline, apparent_va
from changelog import record as changes

capacity_freed = Signal()
"""Sent (after commit, with `site_id`) when a site may have room it did not have before:
a phase added or brought forward, a reservation released, PUE lowered. The waitlist
listens; capacity itself does not know who."""


# --------------------------------------------------------------------------------------
# Reading the books
# --------------------------------------------------------------------------------------


def _bookings_qs(now: dt.datetime):
    return Reservation.objects.active(now).values_list(
        "site_id", "starts_on", "ends_on", "it_kw", "expires_at", named=True
    )


def load_books(sites: Sequence[Site], now: dt.datetime | None = None) -> dict[int, SiteBook]:
    """SiteBooks for many sites in two queries (phases, counting reservations)."""
    now = now or timezone.now()
    ids = [s.pk for s in sites]
    phases: dict[int, list] = defaultdict(list)
    bookings: dict[int, list] = defaultdict(list)
    phase_rows = EnergizationPhase.objects.filter(site_id__in=ids).values_list(
        "site_id", "energized_on", "mw", named=True
    )
    for row in phase_rows:
        phases[row.site_id].append(row)
    for row in _bookings_qs(now).filter(site_id__in=ids):
        bookings[row.site_id].append(row)
    return {s.pk: SiteBook(s.slug, s.pue, phases[s.pk], bookings[s.pk]) for s in sites}


def load_book(site: Site, now: dt.datetime | None = None) -> SiteBook:
    return load_books([site], now)[site.pk]


# site id → (ledger_version, built at, valid until (next hold expiry), timeline)
_TIMELINES: dict[int, tuple[int, dt.datetime, dt.datetime | None, Timeline]] = {}


def availability(sites: Sequence[Site], now: dt.datetime | None = None) -> dict[int, Timeline]:
    """Compiled timelines for answering quotes and showing availability, without locks.

    Served from a per-process cache keyed by each site's `ledger_version` (bumped in the
    transaction of every booking and budget change) and dropped at the next hold expiry,
    so it is never staler than the caller's read of the site row. Advisory only: booking
    re-reads everything under the site lock.
    """
    now = now or timezone.now()
    found: dict[int, Timeline] = {}
    stale = []
    for site in sites:
        hit = _TIMELINES.get(site.pk)
        if hit and hit[0] == site.ledger_version and hit[1] <= now and (hit[2] is None or now < hit[2]):
            found[site.pk] = hit[3]
        else:
            stale.append(site)
    books = load_books(stale, now) if stale else {}
    for site in stale:
        book = books[site.pk]
        compiled = book.timeline(site.today(now) - dt.timedelta(days=1))
        next_expiry = min((b.expires_at for b in book.bookings if b.expires_at is not None), default=None)
        _TIMELINES[site.pk] = (site.ledger_version, now, next_expiry, compiled)
        found[site.pk] = compiled
    return found


def forget_cached() -> None:
    """Drop every cached timeline (tests roll the database back under the cache)."""
    _TIMELINES.clear()


# --------------------------------------------------------------------------------------
# Booking site power
# --------------------------------------------------------------------------------------


def _lock_site(site: Site | int) -> Site:
    return Site.objects.select_for_update().get(pk=getattr(site, "pk", site))


def _changed_power(site_id: int, *, freed: bool = False) -> None:
    """Record, inside the booking's transaction, that the site's power picture changed."""
    Site.objects.filter(pk=site_id).update(ledger_version=F("ledger_version") + 1)
    if freed:
        transaction.on_commit(lambda: capacity_freed.send(sender=Site, site_id=site_id))


def floor_changed(site_ids: Iterable[int]) -> None:
    """Record, inside the writing transaction, that these sites' floors changed."""
    Site.objects.filter(pk__in=set(site_ids)).update(floor_version=F("floor_version") + 1)


def _validate_booking(
    it_kw: Decimal,
    starts_on: dt.date,
    ends_on: dt.date | None,
    kind: str,
    expires_at: dt.datetime | None,
    now: dt.datetime,
) -> None:
    errors: dict[str, str] = {}
    if not isinstance(it_kw, Decimal) or not it_kw.is_finite() or it_kw <= 0:
        errors["it_kw"] = f"IT kW must be a positive Decimal, not {it_kw!r}."
    if ends_on is not None and ends_on <= starts_on:
        errors["ends_on"] = f"A reservation must end after it starts ({starts_on} → {ends_on})."
    if kind == "hold":
        if expires_at is None:
            errors["expires_at"] = "A hold needs an expiry."
        elif expires_at <= now:
            errors["expires_at"] = f"The hold's expiry {expires_at:%Y-%m-%d %H:%M} is already past."
    elif kind == "firm":
        if expires_at is not None:
            errors["expires_at"] = "A firm reservation does not expire."
    else:
        errors["kind"] = f"Unknown reservation kind {kind!r} (hold or firm)."
    if errors:
        raise ValidationError(errors)


@overload
def reserve(
    site: Site | int,
    *,
    it_kw: Decimal,
    starts_on: dt.date,
    ends_on: dt.date | None,
    kind: str,
    reference: str,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    dry_run: Literal[False] = False,
) -> Reservation: ...
@overload
def reserve(
    site: Site | int,
    *,
    it_kw: Decimal,
    starts_on: dt.date,
    ends_on: dt.date | None,
    kind: str,
    reference: str,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    dry_run: Literal[True],
) -> None: ...
def reserve(
    site: Site | int,
    *,
    it_kw: Decimal,
    starts_on: dt.date,
    ends_on: dt.date | None,
    kind: str,
    reference: str,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> Reservation | None:
    """Book `it_kw` at a site over [starts_on, ends_on), or raise InsufficientCapacity.

    Idempotent per reference, at whichever site: asking again for the same booking under
    the same reference returns the reservation already made (a retried task, a
    double-clicked button); a different booking under it is a ReferenceConflict. One
    unreleased reservation per reference is also a database constraint.
    `dry_run` checks under the same lock and books nothing.
    """
    now = now or timezone.now()
    _validate_booking(it_kw, starts_on, ends_on, kind, expires_at, now)
    with transaction.atomic():
        locked = _lock_site(site)
        existing = Reservation.objects.filter(reference=reference, released_at__isnull=True).first()
        if existing is not None and Reservation.objects.active(now).filter(pk=existing.pk).exists():
            same = (existing.site_id, existing.it_kw, existing.starts_on, existing.ends_on, existing.kind)
            if same == (locked.pk, it_kw, starts_on, ends_on, kind):
                return existing
            raise ReferenceConflict(f"{reference} already holds a different reservation: {existing}")
        _check_fits(locked, it_kw, starts_on, ends_on, now)
        if dry_run:
            return None
        if existing is not None:  # an expired hold: it counts for nothing; its reference is free again
            changes.update(Reservation.objects.filter(pk=existing.pk), via="ledger.reserve", released_at=now)
        _changed_power(locked.pk)
        try:
            with transaction.atomic():
                return Reservation.objects.create(
                    site=locked,
                    it_kw=it_kw,
                    starts_on=starts_on,
                    ends_on=ends_on,
                    kind=kind,
                    expires_at=expires_at,
                    reference=reference,
                    created_at=now,
                )
        except IntegrityError:  # the same reference booked at another site meanwhile (another site lock)
            raise ReferenceConflict(f"{reference} was booked at another site at the same moment.") from None


def _check_fits(site: Site, it_kw: Decimal, starts_on: dt.date, ends_on: dt.date | None, now: dt.datetime) -> None:
    timeline = load_book(site, now).timeline(starts_on)
    short = timeline.shortfall(it_kw, starts_on, ends_on)
    if short is not None:
        term = None if ends_on is None else ends_on - starts_on
        raise InsufficientCapacity(
            site=site.slug,
            requested_kw=it_kw,
            starts_on=starts_on,
            available_kw=short.available_kw,
            short_kw=short.short_kw,
            short_from=short.short_from,
            fits_from=timeline.earliest_fit(it_kw, starts_on, term),
        )


def release(reservation: Reservation, now: dt.datetime | None = None) -> Reservation:
    """Free a reservation from now on; releasing twice is harmless."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_site(reservation.site_id)
        reservation.refresh_from_db()
        if reservation.released_at is None:
            reservation.released_at = now
            reservation.save(update_fields=["released_at"])
            _changed_power(reservation.site_id, freed=True)
    return reservation


def firm_up(reservation: Reservation, *, reference: str | None = None, now: dt.datetime | None = None) -> Reservation:
    """Turn a hold into a firm reservation, atomically.

    A live hold keeps its place; an expired or released one has given its power back, so
    it is booked again from scratch and refused if the power is gone meanwhile.
    """
    now = now or timezone.now()
    with transaction.atomic():
        site = _lock_site(reservation.site_id)
        reservation.refresh_from_db()
        still_counts = Reservation.objects.active(now).filter(pk=reservation.pk).exists()
        if reservation.kind == Reservation.Kind.FIRM and still_counts:
            return reservation
        if not still_counts:
            _check_fits(site, reservation.it_kw, reservation.starts_on, reservation.ends_on, now)
            reservation.released_at = None
        reservation.kind = Reservation.Kind.FIRM
        reservation.expires_at = None
        if reference is not None:
            reservation.reference = reference
        reservation.save(update_fields=["kind", "expires_at", "released_at", "reference"])
        _changed_power(site.pk)
    return reservation


# --------------------------------------------------------------------------------------
# Checked edits of what the budget is made of
# --------------------------------------------------------------------------------------


def _assert_within_budget(site: Site, phases: Sequence[PhaseLike], pue: Decimal, now: dt.datetime) -> None:
    bookings = list(_bookings_qs(now).filter(site_id=site.pk))
    over = SiteBook(site.slug, pue, phases, bookings).over_budget(site.today(now))
    if over is not None:
        raise OverBudget(site=site.slug, short_kw=over.short_kw, short_from=over.short_from)


def save_phase(phase, *, now: dt.datetime | None = None, dry_run: bool = False) -> None:
    """Add or change an energization phase, refusing a change that strands reservations."""
    now = now or timezone.now()
    with transaction.atomic():
        site = _lock_site(phase.site_id)
        others = list(site.phases.exclude(pk=phase.pk)) if phase.pk else list(site.phases.all())
        _assert_within_budget(site, [*others, phase], site.pue, now)
        if not dry_run:
            phase.save()
            _changed_power(site.pk, freed=True)


def cancel_phase(phase, *, now: dt.datetime | None = None) -> None:
    """Remove a phase (e.g. a cancelled build-out) if the reservations still fit without it."""
    now = now or timezone.now()
    with transaction.atomic():
        site = _lock_site(phase.site_id)
        _assert_within_budget(site, list(site.phases.exclude(pk=phase.pk)), site.pue, now)
        phase.delete()
        _changed_power(site.pk)


def save_site(site: Site, *, now: dt.datetime | None = None, dry_run: bool = False) -> None:
    """Save a site, refusing a PUE rise that would push its reservations over budget."""
    now = now or timezone.now()
    with transaction.atomic():
        pue_before = None
        if site.pk is not None:
            locked = _lock_site(site)
            pue_before = locked.pue
            if pue_before != site.pue:
                _assert_within_budget(locked, list(locked.phases.all()), site.pue, now)
        if not dry_run:
            site.save()
            if pue_before is not None and pue_before != site.pue:
                _changed_power(site.pk, freed=site.pue < pue_before)


# --------------------------------------------------------------------------------------
# Watts on circuits and feeds
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotRequest:
    slot_id: int
    watts: int
    occupant: str


def _lock_power_chain(feed_ids: Iterable[int], circuit_ids: Iterable[int]) -> tuple[dict, dict]:
    feeds = {f.pk: f for f in PowerFeed.objects.select_for_update().filter(pk__in=set(feed_ids)).order_by("pk")}
    circuits = {c.pk: c for c in Circuit.objects.select_for_update().filter(pk__in=set(circuit_ids)).order_by("pk")}
    return feeds, circuits


def _circuit_loads_w(circuit_ids: Iterable[int]) -> dict[int, int]:
    rows = Circuit.objects.filter(pk__in=set(circuit_ids)).with_load().values_list("pk", "load_w")
    return dict(rows)


def feed_loads_va(feed_ids: Iterable[int]) -> dict[int, Decimal]:
    """Apparent power (VA) allocated on each feed: Σ over its circuits of load W ÷ PF."""
    loads: dict[int, Decimal] = defaultdict(Decimal)
    rows = (
        Circuit.objects.filter(feed_id__in=set(feed_ids)).with_load().values_list("feed_id", "power_factor", "load_w")
    )
    for feed_id, power_factor, load_w in rows:
        loads[feed_id] += apparent_va(load_w, power_factor)
    return loads


def assign_slots(requests: Sequence[SlotRequest]) -> list[Slot]:
    """Put occupants into free slots, all or none, within circuit and feed limits."""
    if not requests:
        return []
    ids = [r.slot_id for r in requests]
    if len(set(ids)) != len(ids):
        raise SlotOccupied("The same slot is requested twice.")
    occupants = [r.occupant for r in requests]
    if len(set(occupants)) != len(occupants):
        raise SlotOccupied("The same occupant is given two slots.")
    for r in requests:
        if r.watts <= 0:
            raise ValidationError({"watts": f"An occupant must draw a positive number of watts, not {r.watts}."})
    with transaction.atomic():
        # Peek at the wiring without locks to learn which feeds and circuits to lock; the
        # slots are re-read under lock below and the wiring checked again.
        wiring = {
            row["pk"]: row for row in Slot.objects.filter(pk__in=ids).values("pk", "circuit_id", "circuit__feed_id")
        }
        missing = set(ids) - wiring.keys()
        if missing:
            raise Slot.DoesNotExist(f"No slot with id {sorted(missing)}.")
        feeds, circuits = _lock_power_chain(
            (w["circuit__feed_id"] for w in wiring.values()), (w["circuit_id"] for w in wiring.values())
        )
        slots = {s.pk: s for s in Slot.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        taken = [s for s in slots.values() if s.occupant is not None]
        if taken:
            raise SlotOccupied(f"Slot {taken[0]} is already occupied by {taken[0].occupant}.")
        clash = Slot.objects.filter(occupant__in=occupants).first()
        if clash is not None:
            raise SlotOccupied(f"{clash.occupant} already occupies slot {clash}.")
        if any(slots[i].circuit_id != wiring[i]["circuit_id"] for i in ids):
            raise LedgerError("A slot was rewired while it was being assigned; try again.")

        adding_w: dict[int, int] = defaultdict(int)
        adding_va: dict[int, Decimal] = defaultdict(Decimal)
        for r in requests:
            circuit = circuits[slots[r.slot_id].circuit_id]
            adding_w[circuit.pk] += r.watts
            adding_va[circuit.feed_id] += apparent_va(r.watts, circuit.power_factor)
        loads_w = _circuit_loads_w(adding_w)
        for circuit_id, extra_w in adding_w.items():
            circuit = circuits[circuit_id]
            if loads_w[circuit_id] + extra_w > circuit.usable_w:
                raise CircuitOverloaded(
                    circuit=str(circuit), load_w=loads_w[circuit_id], requested_w=extra_w, usable_w=circuit.usable_w
                )
        loads_va = feed_loads_va(adding_va)
        for feed_id, extra_va in adding_va.items():
            feed = feeds[feed_id]
            if loads_va[feed_id] + extra_va > feed.rating_va:
                raise FeedOverloaded(
                    feed=str(feed), load_va=loads_va[feed_id], requested_va=extra_va, rating_va=feed.rating_va
                )

        for r in requests:
            slots[r.slot_id].allocated_w = r.watts
            slots[r.slot_id].occupant = r.occupant
        changes.bulk_update(
            list(slots.values()), ["allocated_w", "occupant"], via="ledger.assign_slots", batch_size=BULK_BATCH_SIZE
        )
        floor_changed(f.site_id for f in feeds.values())
    return [slots[i] for i in ids]


def assign_slot(slot: Slot | int, *, watts: int, occupant: str) -> Slot:
    slot_id = slot if isinstance(slot, int) else slot.pk
    return assign_slots([SlotRequest(slot_id, watts, occupant)])[0]


def release_slots(slot_ids: Sequence[int]) -> None:
    """Empty slots (the machine left); freeing watts needs no check but keeps the lock order."""
    with transaction.atomic():
        wiring = list(Slot.objects.filter(pk__in=slot_ids).values_list("circuit_id", "circuit__feed_id"))
        feeds, _ = _lock_power_chain((f for _, f in wiring), (c for c, _ in wiring))
        locked = list(Slot.objects.select_for_update().filter(pk__in=slot_ids).order_by("pk"))
        for slot in locked:
            slot.allocated_w = 0
            slot.occupant = None
        changes.bulk_update(locked, ["allocated_w", "occupant"], via="ledger.release_slots", batch_size=BULK_BATCH_SIZE)
        floor_changed(f.site_id for f in feeds.values())


def save_circuit(circuit: Circuit, *, dry_run: bool = False) -> None:
    """Add or re-rate a circuit, refusing a rating below what is already allocated on it."""
    with transaction.atomic():
        feed_ids = {circuit.feed_id}
        if circuit.pk is not None:
            feed_ids.add(Circuit.objects.values_list("feed_id", flat=True).get(pk=circuit.pk))
        feeds, locked = _lock_power_chain(feed_ids, [circuit.pk] if circuit.pk else [])
        if circuit.pk is not None:
            load_w = _circuit_loads_w([circuit.pk])[circuit.pk]
            if load_w > circuit.usable_w:
                raise CircuitOverloaded(circuit=str(circuit), load_w=load_w, requested_w=0, usable_w=circuit.usable_w)
            loads_va = feed_loads_va([circuit.feed_id])
            previous = locked[circuit.pk]
            if previous.feed_id == circuit.feed_id:
                loads_va[circuit.feed_id] -= apparent_va(load_w, previous.power_factor)
            feed = feeds[circuit.feed_id]
            new_va = apparent_va(load_w, circuit.power_factor)
            if loads_va[circuit.feed_id] + new_va > feed.rating_va:
                raise FeedOverloaded(
                    feed=str(feed), load_va=loads_va[circuit.feed_id], requested_va=new_va, rating_va=feed.rating_va
                )
        if not dry_run:
            circuit.save()
            floor_changed(f.site_id for f in feeds.values())


def save_feed(feed: PowerFeed, *, dry_run: bool = False) -> None:
    """Add or re-rate a feed, refusing a rating below the load its circuits carry."""
    with transaction.atomic():
        if feed.pk is not None:
            _lock_power_chain([feed.pk], [])
            load_va = feed_loads_va([feed.pk])[feed.pk]
            if load_va > feed.rating_va:
                raise FeedOverloaded(feed=str(feed), load_va=load_va, requested_va=Decimal(0), rating_va=feed.rating_va)
        if not dry_run:
            feed.save()
            floor_changed([feed.site_id])
