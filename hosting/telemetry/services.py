"""Telemetry's writes: scheduling each site's polls (PollRun) and recording what a poll read.

`schedule_polls` runs centrally (beat): it opens one PollRun per site and interval — unique,
so a second tick in the same interval creates nothing — and publishes the site's chunks to
its queue `site.<slug>`, each chunk holding whole PDUs (one walk per PDU per interval) and
starting at its share of the interval, so the reads spread over it. `record_poll` runs on
the site's worker: it writes the chunk's windows and its circuits' windows through
`storage`, brings the PollRun up to date and sends `windows_recorded` on commit. A poll
that never ran writes nothing: accounting (`services_store.fill_unknown`) marks its windows unknown.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from capacity.models import Site, Slot
from hosting import queues
from hosting.models import Machine
from hosting.probes import PduAddress
from hosting.readings import Reading
from hosting.telemetry import storage, windows
from hosting.telemetry.models import CircuitWindow, PollRun, TelemetryPolicy, Window
from hosting.telemetry.poller import Polled, Target
from hosting.telemetry.rollups import window_start
from hosting.telemetry.signals import windows_recorded

log = logging.getLogger(__name__)


def policy_for(site_id: int) -> TelemetryPolicy:
    policy, _ = TelemetryPolicy.objects.get_or_create(site_id=site_id)
    return policy


# --------------------------------------------------------------------------------------
# Scheduling (central, beat)
# --------------------------------------------------------------------------------------


def chunks(machines: Iterable[tuple[int, int | None]], size: int) -> list[list[int]]:
    """(machine id, PDU id) → lists of machine ids of about `size`, a PDU's machines never
    split over two (so each PDU is walked once); unmetered machines fill in anywhere."""
    by_pdu: dict[int | None, list[int]] = defaultdict(list)
    for machine_id, pdu_id in machines:
        by_pdu[pdu_id].append(machine_id)
    groups = [ids for pdu_id, ids in by_pdu.items() if pdu_id is not None]
    groups += [[m] for m in by_pdu.get(None, [])]
    out: list[list[int]] = []
    for group in groups:
        if out and len(out[-1]) + len(group) <= size:
            out[-1].extend(group)
        else:
            out.append(list(group))
    return out


def schedule_polls(now: dt.datetime | None = None) -> int:
    """Open the poll of every site with watched machines whose interval has begun and has no
    PollRun yet, and send its chunks. Returns how many polls were opened (0 when run again
    within the same intervals)."""
    now = now or timezone.now()
    opened = 0
    site_ids = Machine.objects.watched().order_by().values_list("contract__site_id", flat=True).distinct()
    for site_id in sorted(set(site_ids)):
        opened += _schedule_site(site_id, now)
    return opened


def _schedule_site(site_id: int, now: dt.datetime) -> int:
    policy = policy_for(site_id)
    interval_s = max(1, policy.poll_interval_s)
    start = window_start(now, interval_s)
    if PollRun.objects.filter(site_id=site_id, window_start=start).exists():
        return 0
    watched = list(
        Machine.objects.watched()
        .filter(contract__site_id=site_id)
        .order_by("slot__circuit__pdu_id", "slot__outlet", "pk")
        .values_list("pk", "slot__circuit__pdu_id")
    )
    with transaction.atomic():
        run, created = PollRun.objects.get_or_create(
            site_id=site_id, window_start=start, defaults={"machines": len(watched), "dispatched_at": now}
        )
        if not created:  # another scheduler got there first
            return 0
        slug = Site.objects.values_list("slug", flat=True).get(pk=site_id)
        parts = chunks(watched, settings.TELEMETRY_CHUNK)
        transaction.on_commit(lambda: _send(run.pk, site_id, slug, start, interval_s, parts, now))
    return 1


def _send(
    run_id: int, site_id: int, slug: str, start: dt.datetime, interval_s: int, parts: list[list[int]], now: dt.datetime
) -> int:
    """Publish the chunks of one poll, each at its share of what is left of the interval.
    The broker being down loses this interval's poll (its windows stay unknown), never the
    beat: one short attempt, no retries."""
    from hosting.telemetry.tasks import poll_chunk

    if not parts:
        return 0
    ends = start + dt.timedelta(seconds=interval_s)
    left_s = max(0.0, (ends - now).total_seconds())
    spread_s = left_s * min(settings.TELEMETRY_SPREAD_PCT, 90) / 100
    slot_s = spread_s / len(parts)
    expires = ends + dt.timedelta(seconds=interval_s)  # a chunk later than that is no use
    messages = [
        (
            (site_id, start.isoformat(), ids, round(slot_s, 3)),
            {"countdown": round(n * slot_s, 3), "expires": expires, "time_limit": interval_s * 2 + 60},
        )
        for n, ids in enumerate(parts)
    ]
    sent = queues.publish(poll_chunk, messages, queues.queue_for(slug), settings.TELEMETRY_PUBLISH_TIMEOUT_MS / 1000)
    if sent < len(messages):
        log.warning("poll %s of site %s: %d of %d chunk(s) not sent", run_id, slug, len(messages) - sent, len(messages))
    return sent


# --------------------------------------------------------------------------------------
# Polling (on site): what to poll, and recording what was read
# --------------------------------------------------------------------------------------


def machines_to_poll(machine_ids: Sequence[int]) -> list[Machine]:
    return list(
        Machine.objects.filter(pk__in=list(machine_ids))
        .select_related("model", "slot__circuit__pdu")
        .order_by("slot__circuit__pdu_id", "slot__outlet", "pk")
    )


def targets(machines: Sequence[Machine]) -> list[Target]:
    found = []
    for m in machines:
        if not m.ip:
            continue
        circuit = m.slot.circuit if m.slot else None
        pdu = circuit.pdu if circuit else None
        address = PduAddress(pdu.host, pdu.port, pdu.community, pdu.profile) if pdu else None
        found.append(Target(m.pk, m.ip, m.model.slug, address, m.slot.outlet if m.slot else None))
    return found


def figures(machine: Machine) -> windows.ModelFigures:
    model = machine.model
    return windows.ModelFigures(
        nominal_hashrate_ths=float(model.nominal_hashrate_ths),
        nameplate_w=model.nameplate_power_w,
        hashboards=model.hashboards,
        fans=model.fans,
    )


def record_poll(site_id: int, start: dt.datetime, machines: Sequence[Machine], polled: Polled) -> PollRun | None:
    """Store one chunk's windows (replacing any unknown ones), its circuits' windows, and the
    poll's progress; `windows_recorded` goes out once this commits. Safe to run twice: the
    rows are upserts and the PollRun's counts are recounted, not added to."""
    rows = []
    for m in machines:
        reading = polled.readings.get(m.pk) or Reading(start, reachable=False)  # no IP: nothing to ask
        fields = windows.window(reading, figures(m), m.status, reading.outlet_w, reading.inlet_temp_c)
        rows.append(Window(start=start, machine_id=m.pk, site_id=site_id, contract_id=m.contract_id, **vars(fields)))
    circuit_rows = _circuit_windows(site_id, start, polled)
    with transaction.atomic():
        storage.write_windows(rows)
        storage.write_circuit_windows(circuit_rows)
        counts = Window.objects.filter(start=start, site_id=site_id).aggregate(
            written=Count("pk", filter=Q(reachable__isnull=False)), answered=Count("pk", filter=Q(reachable=True))
        )
        run = PollRun.objects.select_for_update().filter(site_id=site_id, window_start=start).first()
        finished = False
        if run is not None:
            run.windows_written, run.answered = counts["written"], counts["answered"]
            finished = run.windows_written >= run.machines
            if finished and run.finished_at is None:
                run.finished_at = timezone.now()
            run.save(update_fields=["windows_written", "answered", "finished_at"])
        ids = [m.pk for m in machines]
        transaction.on_commit(
            lambda: windows_recorded.send(
                sender=PollRun, site_id=site_id, window_start=start, machine_ids=ids, finished=finished
            )
        )
    return run


def _circuit_windows(site_id: int, start: dt.datetime, polled: Polled) -> list[CircuitWindow]:
    """Each circuit on a walked PDU: the sum of its metered outlets (every slot with an
    outlet number, whoever is in it), or NULL when its PDU did not answer."""
    if not polled.walks:
        return []
    by_address = {(a.host, a.port): walk for a, walk in polled.walks.items()}
    slots = (
        Slot.objects.filter(circuit__pdu__site_id=site_id, outlet__isnull=False)
        .filter(circuit__pdu__host__in={a.host for a in polled.walks})
        .values_list("circuit_id", "circuit__pdu__host", "circuit__pdu__port", "outlet")
    )
    measured: dict[int, list[float]] = defaultdict(list)
    failed: set[int] = set()
    for circuit_id, host, port, outlet in slots:
        walk = by_address.get((host, port))
        if walk is None:
            continue
        if walk.error is not None:
            failed.add(circuit_id)
        elif (watts := walk.outlet_w.get(int(outlet or 0))) is not None:
            measured[circuit_id].append(watts)
        else:
            measured.setdefault(circuit_id, [])
    rows = []
    for circuit_id in sorted(failed | measured.keys()):
        read = [] if circuit_id in failed else measured[circuit_id]
        total = round(sum(read), 1) if read else None
        rows.append(
            CircuitWindow(start=start, circuit_id=circuit_id, site_id=site_id, measured_w=total, outlets_read=len(read))
        )
    return rows
