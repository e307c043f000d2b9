"""Curtailment's writes: starting and ending an event (choosing its machines under the event's
lock, moving them live ↔ curtailed, sending their commands to the site's queue in ramp order),
and recording what the on-site tasks did (commands sent and answered, outlets measured).

`start_event` and `end_event` are the two entry points (a price trigger, a 4CP watch, staff or
the QSE's API call them). Each locks the event row and does only what its status still allows,
so calling either twice — or twice at once — sends nothing twice. The commands are published
once the transaction commits; an on-site task claims each machine (a conditional UPDATE on its
status) before it sends anything, so a redelivered message sends nothing twice either.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, F, Q, Sum
from django.utils import timezone

from capacity.models import Pdu
from changelog import record as changes
from hosting import queues
from hosting.billing.services import terms_for
from hosting.curtailment import selection, signals
from hosting.curtailment.commands import POWER_LIMIT, RESUME, STOP, Attempt, Order
from hosting.curtailment.models import Command, CurtailmentStatus, Event, EventMachine, EventSample, EventStatus
from hosting.lifecycle import MachineStatus
from hosting.models import Contract, Machine
from hosting.probes import PduAddress, PduWalk
from hosting.services import move_machines
from hosting.telemetry.models import Window

log = logging.getLogger(__name__)

CS = CurtailmentStatus
MW = Decimal(1_000_000)
# Told to stop and not yet seen off by its outlet.
AWAITING_VERIFICATION = frozenset({CS.SENT, CS.CURTAILED, CS.FAILED, CS.STILL_DRAWING})
MEASURED_SOURCES = ("pdu", "miner")
# An event is started this close to its start (the beat's tick), not earlier: its machines are
# curtailed — and billed as such — from then on.
START_EARLY = dt.timedelta(seconds=1)


def _mw(watts: float) -> Decimal:
    return (Decimal(str(round(watts, 1))) / MW).quantize(Decimal("0.001"))


# --------------------------------------------------------------------------------------
# Choosing (central)
# --------------------------------------------------------------------------------------


def month_start(site_tz: str, now: dt.datetime) -> dt.datetime:
    """The start of the site's local calendar month (billing's period), in UTC."""
    tz = zoneinfo.ZoneInfo(site_tz)
    local = now.astimezone(tz)
    return dt.datetime.combine(local.date().replace(day=1), dt.time(), tz).astimezone(dt.UTC)


def hours_used(machine_ids: Sequence[int], since: dt.datetime, now: dt.datetime) -> dict[int, float]:
    """machine id → hours curtailed since `since`: each curtailment from its first stop command
    to its resumption (or now)."""
    used: dict[int, float] = defaultdict(float)
    rows = (
        EventMachine.objects.filter(machine_id__in=list(machine_ids))
        .filter(Q(resumed_at__isnull=True) | Q(resumed_at__gt=since))
        .filter(sent_at__isnull=False)  # never told to stop: never curtailed
        .values_list("machine_id", "sent_at", "resumed_at")
    )
    for machine_id, sent_at, resumed_at in rows:
        begin = max(since, sent_at or now)  # sent_at is set (the filter)
        end = min(now, resumed_at or now)
        if end > begin:
            used[machine_id] += (end - begin).total_seconds() / 3600
    return dict(used)


def measured(
    site_id: int, machine_ids: Sequence[int], now: dt.datetime
) -> dict[int, tuple[float | None, float | None]]:
    """machine id → (average measured watts, J/TH) over its live windows of the last
    CURTAILMENT_MEASURE_S: PDU or miner-reported watts only (nameplate is assumed, not measured),
    J/TH from the windows that hashed."""
    since = now - dt.timedelta(seconds=settings.CURTAILMENT_MEASURE_S)
    base = Window.objects.filter(
        site_id=site_id,
        start__gt=since,
        start__lte=now,
        machine_id__in=list(machine_ids),
        machine_status=MachineStatus.LIVE,
        reachable=True,
        power_source__in=MEASURED_SOURCES,
        power_w__isnull=False,
    )
    out: dict[int, tuple[float | None, float | None]] = {}
    for row in base.order_by().values("machine_id").annotate(w=Avg("power_w")):
        out[row["machine_id"]] = (row["w"], None)
    hashing = base.filter(hashrate_ths__gt=0).order_by().values("machine_id")
    for row in hashing.annotate(w=Sum("power_w"), ths=Sum("hashrate_ths")):
        watts, _ = out.get(row["machine_id"], (None, None))
        out[row["machine_id"]] = (watts, row["w"] / row["ths"] if row["ths"] else None)
    return out


def candidates(event: Event, now: dt.datetime) -> list[selection.Candidate]:
    """The site's live machines with an address, their contracts' rights and their figures."""
    machines = list(
        Machine.objects.filter(contract__site_id=event.site_id, status=MachineStatus.LIVE, slot__isnull=False)
        .exclude(ip__isnull=True)
        .select_related("model", "slot")
        .order_by("pk")
    )
    ids = [m.pk for m in machines]
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in={m.contract_id for m in machines})}
    terms = {pk: terms_for(c) for pk, c in contracts.items()}
    used = hours_used(ids, month_start(event.site.timezone, now), now)
    figures = measured(event.site_id, ids, now)
    out = []
    for m in machines:
        t = terms[m.contract_id]
        watts, j_per_th = figures.get(m.pk, (None, None))
        out.append(
            selection.Candidate(
                machine_id=m.pk,
                contract_id=m.contract_id,
                priority=t.curtailment_priority,
                max_hours_month=t.max_curtailed_hours_month,
                hours_used=used.get(m.pk, 0.0),
                notice_min=t.curtailment_notice_min,
                nameplate_w=float(m.model.nameplate_power_w),
                nameplate_ths=float(m.model.nominal_hashrate_ths),
                sleep_w=selection.sleep_w(m.model.vendor),
                measured_w=watts,
                measured_j_per_th=j_per_th,
                circuit_id=m.slot.circuit_id if m.slot else None,
                power_limit_min_w=selection.power_limit_min_w(m.model.vendor, float(m.model.nameplate_power_w)),
            )
        )
    return out


def target_w(event: Event, cands: Sequence[selection.Candidate]) -> float:
    if event.target == Event.Target.SHED:
        return float(event.target_mw) * 1_000_000
    load = sum(c.power_before_w for c in cands)
    return max(0.0, load - float(event.target_mw) * 1_000_000)


def start_event(event_id: int, now: dt.datetime | None = None) -> Event:
    """Curtail for the event: choose its machines within rights, move them to `curtailed` and
    send their stop commands on the site's queue in ramp order. Only a scheduled event starts;
    anything else returns the event as it is (started twice, it sends nothing twice)."""
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.select_for_update(of=("self",)).select_related("site", "program").get(pk=event_id)
        if event.status != EventStatus.SCHEDULED or event.starts_at > now + START_EARLY:
            return event  # started already, cancelled, or not yet due: the beat starts it when it is
        cands = candidates(event, now)
        curtail_at = max(now, event.starts_at)
        notice_min = (curtail_at - event.created_at).total_seconds() / 60
        plan = selection.choose(cands, target_w(event, cands), notice_min)
        chosen_ids = [c.machine_id for c in plan.chosen]
        # Lock the chosen machines (pk order, no deadlocks) and keep those still live.
        locked = {m.pk: m for m in Machine.objects.select_for_update().filter(pk__in=chosen_ids).order_by("pk")}
        chosen = [c for c in plan.chosen if locked[c.machine_id].status == MachineStatus.LIVE]
        rows = [
            EventMachine(
                event=event, machine_id=c.machine_id, contract_id=c.contract_id, rank=c.rank,
                j_per_th=None if c.j_per_th == float("inf") else round(c.j_per_th, 2),
                expected_shed_w=round(c.expected_shed_w), power_before_w=round(c.power_before_w, 1),
                action=STOP if c.power_limit_w is None else POWER_LIMIT, power_limit_w=c.power_limit_w,
            )
            for c in chosen
        ]  # fmt: skip
        EventMachine.objects.bulk_create(rows, batch_size=1000)
        ids = list(
            EventMachine.objects.filter(event=event)
            .order_by("rank")
            .values_list("pk", "machine__slot__circuit_id", "expected_shed_w")
        )
        slug = event.site.slug
        ramp = _ramp_w_per_s(event)
        deadline_s = max(0.0, (event.deadline_at - now).total_seconds())
        # The commands go first once this commits (the deadline waits for them); the machines'
        # move below queues its own webhooks after them.
        transaction.on_commit(lambda: _dispatch(event.pk, slug, STOP, ids, ramp, deadline_s))
        move_machines(
            [locked[c.machine_id] for c in chosen], MachineStatus.CURTAILED, now=now,
            reason=f"curtailment event {event.pk} ({event.get_source_display()})",
        )  # fmt: skip
        planned = sum(c.expected_shed_w for c in chosen)
        event.status = EventStatus.ACTIVE
        event.planned_mw = _mw(planned)
        event.shortfall_mw = _mw(max(0.0, plan.target_w - planned))
        event.save(update_fields=["status", "planned_mw", "shortfall_mw"])
        transaction.on_commit(lambda: signals.event_started.send(sender=Event, event_id=event.pk))
    log.info(
        "event %s: %d machine(s) chosen, %.3f MW planned, %s MW short",
        event.pk,
        len(chosen),
        planned / 1e6,
        event.shortfall_mw,
    )
    return event


def end_event(event_id: int, now: dt.datetime | None = None) -> Event:
    """Bring the event's machines back, most efficient first: curtailed → live and their
    resume commands on the site's queue in ramp order. Only an active event ends."""
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.select_for_update(of=("self",)).select_related("site", "program").get(pk=event_id)
        if event.status != EventStatus.ACTIVE:
            return event
        ems = list(EventMachine.objects.filter(event=event, resumed_at__isnull=True).select_related("machine__slot"))
        locked = {
            m.pk: m
            for m in Machine.objects.select_for_update().filter(pk__in=[e.machine_id for e in ems]).order_by("pk")
        }
        back = [locked[e.machine_id] for e in ems if locked[e.machine_id].status == MachineStatus.CURTAILED]
        order = sorted(
            (e for e in ems if e.status != CS.CHOSEN),
            key=lambda e: (e.j_per_th if e.j_per_th is not None else float("inf"), e.machine_id),
        )
        ids = [(e.pk, e.machine.slot.circuit_id if e.machine.slot else None, e.expected_shed_w) for e in order]
        slug = event.site.slug
        ramp = _ramp_w_per_s(event)
        transaction.on_commit(lambda: _dispatch(event.pk, slug, RESUME, ids, ramp, None))  # before the webhooks
        move_machines(back, MachineStatus.LIVE, now=now, reason=f"curtailment event {event.pk} ended")
        # Never told to stop (its chunk had not gone yet): nothing to resume.
        EventMachine.objects.filter(event=event, status=CS.CHOSEN).update(status=CS.RESUMED, resumed_at=now)
        event.status = EventStatus.ENDED
        fields = ["status"]
        if event.ends_at is None or event.ends_at > now:
            event.ends_at = now
            fields.append("ends_at")
        event.save(update_fields=fields)
        transaction.on_commit(lambda: signals.event_ended.send(sender=Event, event_id=event.pk))
    return event


def act_on_due_events(now: dt.datetime) -> tuple[int, int, int]:
    """The one place events are started and ended by the clock: cancel the scheduled events
    whose end passed before they began, start those whose start has come, end the active
    ones whose end has. (started, ended, cancelled); each start and end locks its event, so
    two beats at once act once."""
    with transaction.atomic():
        stale = Event.objects.select_for_update().filter(status=EventStatus.SCHEDULED, ends_at__lte=now)
        stale_ids = list(stale.order_by("pk").values_list("pk", flat=True))
        cancelled = changes.update(
            Event.objects.filter(pk__in=stale_ids), via="curtailment.act_on_due_events", status=EventStatus.CANCELLED
        )
        for event_id in stale_ids:
            transaction.on_commit(partial(signals.event_ended.send, sender=Event, event_id=event_id))
    starting = Event.objects.filter(status=EventStatus.SCHEDULED, starts_at__lte=now + START_EARLY)
    ending = Event.objects.filter(status=EventStatus.ACTIVE, ends_at__isnull=False, ends_at__lte=now)
    started = [start_event(pk, now=now) for pk in starting.order_by("starts_at", "pk").values_list("pk", flat=True)]
    ended = [end_event(pk, now=now) for pk in ending.order_by("ends_at", "pk").values_list("pk", flat=True)]
    active = sum(e.status == EventStatus.ACTIVE for e in started)
    return active, sum(e.status == EventStatus.ENDED for e in ended), cancelled


def _ramp_w_per_s(event: Event) -> float | None:
    if event.program is None or not event.program.ramp_mw_per_min:
        return None
    return float(event.program.ramp_mw_per_min) * 1_000_000 / 60


def chunks(offsets: Sequence[tuple[int, float]], size: int) -> list[tuple[float, list[tuple[int, float]]]]:
    """(event machine id, offset s) in release order → chunks of at most `size`, each with its
    countdown (its first machine's offset) and each machine's offset within the chunk."""
    out: list[tuple[float, list[tuple[int, float]]]] = []
    for i in range(0, len(offsets), size):
        part = offsets[i : i + size]
        start = part[0][1]
        out.append((start, [(pk, round(at - start, 3)) for pk, at in part]))
    return out


def _dispatch(
    event_id: int, slug: str, action: str, rows: Sequence[tuple[int, int | None, float]], ramp: float | None,
    deadline_s: float | None,
) -> int:  # fmt: skip
    """Publish the event's commands in chunks, each at its place in the ramp; then its
    verification, at the deadline (stop) — the beat verifies open events besides."""
    from hosting.curtailment.tasks import send_commands, verify_event

    gap = settings.CURTAILMENT_CIRCUIT_GAP_MS / 1000
    offsets = selection.release_offsets_s([(circuit, float(w)) for _, circuit, w in rows], ramp, gap)
    timed = sorted(zip((r[0] for r in rows), offsets, strict=True), key=lambda x: x[1])
    messages = [
        ((event_id, action, [pk for pk, _ in part], [o for _, o in part]), {"countdown": countdown})
        for countdown, part in chunks(timed, settings.CURTAILMENT_CHUNK)
    ]
    queue = queues.control_queue_for(slug)
    timeout_s = settings.CURTAILMENT_PUBLISH_TIMEOUT_MS / 1000
    sent = queues.publish(send_commands, messages, queue, timeout_s)
    if sent < len(messages):
        log.warning("event %s: %d of %d command chunk(s) not sent", event_id, len(messages) - sent, len(messages))
    if action == STOP and deadline_s is not None:
        queues.publish(verify_event, [((event_id,), {"countdown": round(deadline_s + 1, 3)})], queue, timeout_s)
    return sent


# --------------------------------------------------------------------------------------
# On site: claiming, recording, verifying
# --------------------------------------------------------------------------------------


def claim(event_machine_ids: Sequence[int], action: str, now: dt.datetime) -> list[EventMachine]:
    """The machines of these ids still waiting for `action`, marked as sent (a conditional
    UPDATE: of two tasks with the same chunk, one claims each machine)."""
    ids = list(event_machine_ids)
    if action == STOP:
        waiting = Q(status=CS.CHOSEN, event__status=EventStatus.ACTIVE)
        claimed = EventMachine.objects.filter(waiting, pk__in=ids)
        with transaction.atomic():
            rows = list(claimed.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True))
            EventMachine.objects.filter(pk__in=rows).update(status=CS.SENT, sent_at=now, attempts=F("attempts") + 1)
    else:
        waiting = Q(resumed_at__isnull=True) & ~Q(status__in=[CS.CHOSEN, CS.RESUMED])
        claimed = EventMachine.objects.filter(waiting, pk__in=ids, event__status=EventStatus.ENDED)
        with transaction.atomic():
            rows = list(claimed.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True))
            EventMachine.objects.filter(pk__in=rows).update(resumed_at=now)
    return list(EventMachine.objects.filter(pk__in=rows).select_related("machine__model"))


def orders(ems: Sequence[EventMachine], action: str, offsets: dict[int, float]) -> list[Order]:
    """What each machine is told: to stop (or the power limit it was chosen for); to resume (a
    limited machine: a limit back up to what it drew before, at least its nameplate)."""
    out = []
    for e in ems:
        if not e.machine.ip:
            continue
        told, limit_w = action, None
        if e.action == POWER_LIMIT:
            told = POWER_LIMIT
            limit_w = e.power_limit_w if action == STOP else restored_limit_w(e)
        out.append(Order(e.pk, e.machine.ip, e.machine.model.slug, told, offsets.get(e.pk, 0.0), limit_w))
    return out


def restored_limit_w(e: EventMachine) -> int:
    return math.ceil(max(float(e.machine.model.nameplate_power_w), float(e.power_before_w or 0)))


def record(attempts: Sequence[Attempt], action: str) -> None:
    """Store every attempt as a Command row and each machine's outcome: answered (curtailed, or
    resumed) or failed with the last answer."""
    Command.objects.bulk_create(
        [
            Command(
                event_machine_id=a.event_machine_id, command=a.command, sent_at=a.sent_at,
                answered_at=a.answered_at, ok=a.ok, answer=a.answer[:300],
            )
            for a in attempts
        ],
        batch_size=1000,
    )  # fmt: skip
    last: dict[int, Attempt] = {}
    for a in attempts:
        if a.ok or a.event_machine_id not in last or not last[a.event_machine_id].ok:
            last[a.event_machine_id] = a
    ok = [pk for pk, a in last.items() if a.ok]
    failed = {pk: a.answer for pk, a in last.items() if not a.ok}
    if action == STOP:
        EventMachine.objects.filter(pk__in=ok, status=CS.SENT).update(status=CS.CURTAILED, last_error="")
        for pk, answer in failed.items():
            EventMachine.objects.filter(pk=pk, status=CS.SENT).update(status=CS.FAILED, last_error=answer[:300])
    else:
        EventMachine.objects.filter(pk__in=ok).update(status=CS.RESUMED)  # what it did before stays on record
        for pk, answer in failed.items():
            EventMachine.objects.filter(pk=pk).update(last_error=f"resume: {answer}"[:300])


def site_pdus(site_id: int) -> list[PduAddress]:
    """The site's PDUs (a whole-site reading walks each)."""
    pdus = Pdu.objects.filter(site_id=site_id).order_by("pk")
    return [PduAddress(p.host, p.port, p.community, p.profile) for p in pdus]


def chunk_outlets(event_machine_ids: Sequence[int]) -> dict[PduAddress, list[int]]:
    """The outlets these event machines are on, by PDU (a chunk's reading asks for those alone)."""
    rows = (
        EventMachine.objects.filter(pk__in=list(event_machine_ids), machine__slot__outlet__isnull=False)
        .exclude(machine__slot__circuit__pdu__isnull=True)
        .values_list(
            "machine__slot__circuit__pdu__host", "machine__slot__circuit__pdu__port",
            "machine__slot__circuit__pdu__community", "machine__slot__circuit__pdu__profile",
            "machine__slot__outlet",
        )
        .order_by("machine__slot__circuit__pdu", "machine__slot__outlet")
    )  # fmt: skip
    outlets: dict[PduAddress, list[int]] = defaultdict(list)
    for host, port, community, profile, outlet in rows:
        if outlet is not None:  # (filtered above)
            outlets[PduAddress(host, port, community, profile)].append(outlet)
    return dict(outlets)


def verify(
    event_id: int, walks: dict[PduAddress, PduWalk], now: dt.datetime, only: Sequence[int] | None = None
) -> list[EventMachine]:
    """Judge the event's machines by their outlets' watts and record a sample: a machine drawing
    no more than its sleep draw (or power limit) + CURTAILMENT_VERIFY_MARGIN_W is verified off;
    after the deadline one drawing more is flagged still drawing. Returns the flagged machines
    that may be told again (fewer than 1 + CURTAILMENT_RETRIES stops sent), claimed for it.

    `only` (a command chunk's machines, right after their stops): judge those alone, from their
    own PDUs, and record no sample — the event's samples are whole-site readings (the deadline's
    and the beat's)."""
    event = Event.objects.select_related("site").get(pk=event_id)
    by_address = {(a.host, a.port): w for a, w in walks.items()}
    judged_rows = EventMachine.objects.filter(event=event)
    if only is not None:
        judged_rows = judged_rows.filter(pk__in=list(only))
    ems = list(judged_rows.select_related("machine__model", "machine__slot__circuit__pdu"))
    margin = settings.CURTAILMENT_VERIFY_MARGIN_W
    past_deadline = now >= event.deadline_at
    achieved = 0.0
    off = 0
    verified: list[tuple[int, float]] = []
    drawing: list[tuple[int, float]] = []
    for e in ems:
        slot = e.machine.slot
        pdu = slot.circuit.pdu if slot and slot.circuit_id else None
        walk = by_address.get((pdu.host, pdu.port)) if pdu else None
        watts = walk.outlet_w.get(slot.outlet) if walk and slot and slot.outlet is not None else None
        if watts is None:
            continue
        if e.status != CS.RESUMED and e.status != CS.CHOSEN:
            achieved += max(0.0, (e.power_before_w or 0) - watts)
        allowed = (e.power_limit_w or selection.sleep_w(e.machine.model.vendor)) + margin
        if e.status in (CS.CHOSEN, CS.RESUMED):
            continue
        if watts <= allowed:
            off += 1
            if e.status != CS.VERIFIED:
                verified.append((e.pk, watts))
        elif past_deadline and e.status in (*AWAITING_VERIFICATION, CS.VERIFIED):
            drawing.append((e.pk, watts))
    site_load = sum(sum(w.outlet_w.values()) for w in walks.values() if w.error is None)
    with transaction.atomic():
        judged = {pk: (CS.VERIFIED, watts) for pk, watts in verified} | {
            pk: (CS.STILL_DRAWING, watts) for pk, watts in drawing
        }
        # Locked and read again: a machine resumed (or claimed) meanwhile is left as it is.
        changed = list(
            EventMachine.objects.select_for_update(of=("self",))
            .filter(pk__in=list(judged))
            .exclude(status__in=[CS.RESUMED, CS.CHOSEN])
            .order_by("pk")
        )
        for e in changed:
            status, watts = judged[e.pk]
            e.status, e.power_after_w = status, round(watts, 1)
            if status == CS.VERIFIED:
                e.verified_at, e.last_error = now, ""
            else:
                e.last_error = f"still drawing {watts:,.0f} W after the deadline"
        EventMachine.objects.bulk_update(
            changed, ["status", "power_after_w", "verified_at", "last_error"], batch_size=1000
        )
        if only is None:
            EventSample.objects.get_or_create(
                event=event, at=now,
                defaults={
                    "target_mw": event.target_mw, "achieved_mw": _mw(achieved),
                    "site_load_mw": _mw(site_load) if walks else None, "machines_off": off,
                },
            )  # fmt: skip
        if event.status != EventStatus.ACTIVE:
            return []
        retry = judged_rows.filter(status=CS.STILL_DRAWING, attempts__lt=1 + settings.CURTAILMENT_RETRIES)
        retry = retry.select_for_update(skip_locked=True, of=("self",))
        pks = list(retry.values_list("pk", flat=True))
        EventMachine.objects.filter(pk__in=pks).update(
            status=CS.SENT, attempts=F("attempts") + 1
        )  # sent_at: the first stop
    return list(EventMachine.objects.filter(pk__in=pks).select_related("machine__model"))


def still_to_verify(event_id: int, event_machine_ids: Sequence[int], now: dt.datetime) -> list[int]:
    """Of these machines of an active event before its deadline, those told to stop and not yet
    seen off by their outlets ([] once the deadline has come: whole-site readings take over)."""
    active = Event.objects.filter(pk=event_id, status=EventStatus.ACTIVE, deadline_at__gt=now).exists()
    if not active:
        return []
    waiting = EventMachine.objects.filter(
        event_id=event_id, pk__in=list(event_machine_ids), status__in=[CS.SENT, CS.CURTAILED]
    )
    return list(waiting.order_by("pk").values_list("pk", flat=True))


def open_events(now: dt.datetime) -> list[tuple[int, str]]:
    """(event id, site slug) of the active events to verify."""
    return list(Event.objects.filter(status=EventStatus.ACTIVE, starts_at__lte=now).values_list("pk", "site__slug"))


def check_events(now: dt.datetime | None = None) -> int:
    """Beat: start the events whose start has come and end those whose end has, then send each
    active event's verification to its site's queue."""
    from hosting.curtailment.tasks import verify_event

    now = now or timezone.now()
    act_on_due_events(now)
    by_site: dict[str, list[int]] = defaultdict(list)
    for pk, slug in open_events(now):
        by_site[slug].append(pk)
    sent = 0
    timeout_s = settings.CURTAILMENT_PUBLISH_TIMEOUT_MS / 1000
    for slug, pks in by_site.items():
        messages = [((pk,), {"expires": settings.CURTAILMENT_VERIFY_S}) for pk in pks]
        sent += queues.publish(verify_event, messages, queues.control_queue_for(slug), timeout_s)
    return sent
