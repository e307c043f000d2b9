"""Programs turned into events: the writes of the signal side of curtailment.

`evaluate_programs(site, now)` reads each active price and 4CP program's prices or watch
window (hosting.curtailment.triggers decides) and opens or ends its event. Each program is
evaluated under a lock on its row, so two evaluations at the same moment (two beat ticks, a
retried task) open one event, not two; a partial unique constraint is the backstop.

`post_event` records an event a QSE (or staff) posts for an event program (ERS-10/30, RRS,
voluntary), idempotent by the QSE's id; `end_event_now` ends one.

Acting on an event (choosing machines, sending commands) is hosting.curtailment.services'
`start_event(event_id)` / `end_event(event_id)`, called once the event's row is committed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from capacity.models import Site
from hosting.curtailment import services, signals, triggers
from hosting.curtailment.models import Event, EventStatus, Program, ProgramKind, SettlementPrice

log = logging.getLogger(__name__)

TRIGGERED = {ProgramKind.PRICE: Event.Source.PRICE, ProgramKind.FOUR_CP: Event.Source.FOUR_CP}
OPEN_STATUSES = (EventStatus.SCHEDULED, EventStatus.ACTIVE)
# How far back prices are read: enough for any sensible hold or resume time.
PRICE_LOOKBACK = dt.timedelta(hours=24)


def is_open(now: dt.datetime) -> Q:
    """Events on or coming whose end (if any) has not come."""
    return Q(status__in=OPEN_STATUSES) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))


def open_events() -> QuerySet[Event]:
    """Events on or coming that nobody has ended, nor given an end (a trigger's events)."""
    return Event.objects.filter(status__in=OPEN_STATUSES, ends_at__isnull=True)


@dataclass(frozen=True)
class Change:
    """What one evaluation did to a program's event."""

    program_id: int
    decision: triggers.Decision
    reason: str
    event_id: int | None = None


def price_series(point: str, now: dt.datetime) -> list[triggers.Price]:
    rows = SettlementPrice.objects.filter(
        settlement_point=point, interval_start__gt=now - PRICE_LOOKBACK, interval_start__lte=now
    ).values_list("interval_start", "price_usd_per_mwh")
    return [triggers.Price(start, price) for start, price in rows]


def verdict(program: Program, now: dt.datetime, *, curtailed: bool) -> triggers.Verdict:
    """What the program's rules say at `now` (reads prices or avoid intervals, writes nothing)."""
    if program.kind == ProgramKind.PRICE:
        if program.strike_usd_per_mwh is None:
            return triggers.Verdict(triggers.Decision.HOLD, "no strike price set")
        grid = getattr(program.site, "grid", None)
        point = grid.settlement_point if grid is not None else ""
        if not point:
            return triggers.Verdict(triggers.Decision.HOLD, "the site names no settlement point")
        rules = triggers.PriceRules(program.strike_usd_per_mwh, program.hold_minutes, program.resume_minutes)
        return triggers.price_verdict(rules, price_series(point, now), now, curtailed=curtailed)
    avoid = tuple(
        program.avoid_intervals.filter(starts_at__lte=now, ends_at__gt=now).values_list("starts_at", "ends_at")
    )
    rules_4cp = triggers.FourCpRules(program.site.timezone, program.watch_from, program.watch_until, avoid)
    return triggers.four_cp_verdict(rules_4cp, now, curtailed=curtailed)


def evaluate_programs(site: Site, now: dt.datetime | None = None) -> list[Change]:
    """Open or end the events of the site's active price and 4CP programs, as their rules say
    at `now`. Safe to run twice and at once: one open event per program."""
    now = now or timezone.now()
    ids = Program.objects.filter(site=site, active=True, kind__in=list(TRIGGERED)).order_by("pk")
    return [_evaluate(program_id, now) for program_id in ids.values_list("pk", flat=True)]


def _evaluate(program_id: int, now: dt.datetime) -> Change:
    with transaction.atomic():
        # Only the program's row is locked (the site's grid is an outer join).
        locked = Program.objects.select_for_update(of=("self",)).select_related("site", "site__grid")
        program = locked.get(pk=program_id)
        source = TRIGGERED[ProgramKind(program.kind)]
        current = open_events().filter(program=program, source=source).order_by("pk").first()
        result = verdict(program, now, curtailed=current is not None)
        if result.decision is triggers.Decision.CURTAIL and current is None:
            event = Event.objects.create(
                site=program.site,
                program=program,
                source=source,
                target=Event.Target.REACH,
                target_mw=Decimal(0),  # as far down as the contracts' rights allow
                starts_at=now,
                deadline_at=triggers.deadline(program.kind, now, program.response_minutes),
                notes=result.reason,
            )
            transaction.on_commit(lambda: services.start_event(event.pk))
            log.info("program %s: curtail, event %s (%s)", program.pk, event.pk, result.reason)
            return Change(program.pk, result.decision, result.reason, event.pk)
        if result.decision is triggers.Decision.RESUME and current is not None:
            _end(current, now, f"resume: {result.reason}")
            log.info("program %s: resume, event %s ended (%s)", program.pk, current.pk, result.reason)
            return Change(program.pk, result.decision, result.reason, current.pk)
        return Change(program.pk, triggers.Decision.HOLD, result.reason, current.pk if current else None)


def _end(event: Event, now: dt.datetime, note: str) -> None:
    event.ends_at = max(now, event.starts_at)
    event.notes = f"{event.notes}\n{note}".strip()
    fields = ["ends_at", "notes"]
    if event.starts_at > now:  # it never began: nothing to bring back
        event.status = EventStatus.CANCELLED
        fields.append("status")
        transaction.on_commit(lambda: signals.event_ended.send(sender=Event, event_id=event.pk))
    event.save(update_fields=fields)
    transaction.on_commit(lambda: services.end_event(event.pk))


def end_event_now(event: Event, *, now: dt.datetime | None = None, note: str = "ended") -> tuple[Event, bool]:
    """End an event (idempotent): (the event, whether this call ended it)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Event.objects.select_for_update().get(pk=event.pk)
        if locked.status not in OPEN_STATUSES or (locked.ends_at is not None and locked.ends_at <= now):
            return locked, False
        _end(locked, now, note)
        return locked, True


class EventRefused(ValueError):
    """A posted event that cannot be recorded; `errors` per field, as an API's 400."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))


def post_event(
    *,
    site: Site,
    kind: str,
    target: str,
    target_mw: Decimal,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    deadline_at: dt.datetime | None = None,
    external_id: str = "",
    source: str = Event.Source.QSE,
    created_by: Any = None,
    now: dt.datetime | None = None,
) -> tuple[Event, bool]:
    """Record an event of the site's active program of `kind`: (the event, created?). An
    `external_id` already posted for the site returns that event instead (idempotent)."""
    now = now or timezone.now()
    if external_id:
        existing = Event.objects.filter(site=site, external_id=external_id).first()
        if existing is not None:
            return existing, False
    errors: dict[str, list[str]] = {}
    if kind not in triggers.EVENT_KINDS:
        kinds = ", ".join(sorted(triggers.EVENT_KINDS))
        errors["program"] = [f"{kind!r} is triggered by Haven itself; post one of {kinds}."]
    program = Program.objects.filter(site=site, kind=kind, active=True).order_by("pk").first()
    if program is None and not errors:
        errors["program"] = [f"{site.slug} takes part in no active {kind} program."]
    if target_mw < 0:
        errors["target_mw"] = ["Must not be negative."]
    elif target == Event.Target.SHED and target_mw == 0:
        errors["target_mw"] = ["Shedding 0 MW is no event."]
    if ends_at is not None and ends_at <= starts_at:
        errors["ends_at"] = ["Must be after starts_at."]
    elif ends_at is not None and ends_at <= now:
        errors["ends_at"] = ["Is in the past: the event is already over."]
    if program is not None and deadline_at is None:
        deadline_at = triggers.deadline(kind, starts_at, program.response_minutes)
    if deadline_at is not None and "deadline_at" not in errors:
        if deadline_at < starts_at:
            errors["deadline_at"] = ["Must not be before starts_at."]
        elif deadline_at <= now:
            errors["deadline_at"] = [f"Is in the past ({deadline_at:%Y-%m-%d %H:%M:%S} UTC)."]
    if errors:
        raise EventRefused(errors)
    assert program is not None
    assert deadline_at is not None
    try:
        with transaction.atomic():
            event = Event.objects.create(
                site=site, program=program, source=source, external_id=external_id, target=target,
                target_mw=target_mw, starts_at=starts_at, ends_at=ends_at, deadline_at=deadline_at,
                created_by=created_by, created_at=now,
            )  # fmt: skip
            if starts_at <= now:  # a later start is started by the beat (services.check_events)
                transaction.on_commit(lambda: services.start_event(event.pk))
    except IntegrityError:
        if not external_id:
            raise
        # The same id posted at the same moment: the other request created it.
        return Event.objects.get(site=site, external_id=external_id), False
    return event, True


def sites_with_triggered_programs() -> QuerySet[Site]:
    return Site.objects.filter(
        Q(curtailment_programs__active=True) & Q(curtailment_programs__kind__in=list(TRIGGERED))
    ).distinct()
