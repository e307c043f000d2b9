"""Self-test runs in the database: requested, dispatched in a staggered order to the site's
queue, claimed by one worker attempt, finished with exactly one verdict.

The runs table is the outbox: a run is recorded before any message is sent, so a broker
that is down loses nothing — the run waits as `pending` and the periodic `sweep` sends it
when the broker is back. A worker killed mid-test leaves its run `running` with a stale
heartbeat; `sweep` hands it out again, and only the attempt holding the run's token can
write the verdict.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from capacity.errors import Refusal
from capacity.models import BULK_BATCH_SIZE, Site, Slot
from hosting import queues, services
from hosting.commissioning import checks, pipeline, signals
from hosting.lifecycle import IN_SERVICE, MachineStatus, check_machine_move
from hosting.models import (
    CheckResult,
    CommissioningBatch,
    CommissioningPolicy,
    Machine,
    Sample,
    SelfTestRun,
)
from hosting.probes import PduAddress
from hosting.queues import queue_for
from hosting.readings import Reading

log = logging.getLogger(__name__)

S = SelfTestRun.Status
PYASIC_MAKE = {"bitmain": "AntMiner", "microbt": "WhatsMiner", "canaan": "AvalonMiner"}


class NoIp(Refusal):
    """A machine without an IP is not on the network yet: its self-test waits for the address."""

    code = "no_ip"

    def __init__(self, machines: Sequence[Machine]):
        self.serials = [m.serial for m in machines]
        more = len(self.serials) - 5
        shown = ", ".join(self.serials[:5]) + (f" and {more} more" if more > 0 else "")
        verb = "has" if len(self.serials) == 1 else "have"
        super().__init__(f"{shown} {verb} no IP address yet: give it when racking, or import the site's DHCP leases.")

    def details(self) -> dict:
        return {"serials": self.serials}


def _stale_before(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=settings.COMMISSIONING_STALE_AFTER_S)


# --------------------------------------------------------------------------------------
# Requesting
# --------------------------------------------------------------------------------------


def request(
    machines: Iterable[Machine], *, by=None, batch: CommissioningBatch | None = None, now: dt.datetime | None = None
) -> list[SelfTestRun]:
    """Queue machines for commissioning, all or none; a machine already under test keeps
    its open run (asking twice makes one run). Racked, failed and live machines may be
    (re-)tested; anything else is refused with the lifecycle's reason."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = list(
            Machine.objects.select_for_update(of=("self",))
            .select_related("contract")
            .filter(pk__in=[m.pk for m in machines])
            .order_by("pk")
        )
        open_runs = {r.machine_id: r for r in SelfTestRun.objects.open().filter(machine__in=locked)}
        fresh = [m for m in locked if m.pk not in open_runs]
        for machine in fresh:
            check_machine_move(machine.status, MachineStatus.TESTING)  # before any run is made
        if unaddressed := [m for m in fresh if not m.ip]:
            raise NoIp(unaddressed)
        created = SelfTestRun.objects.bulk_create(
            [SelfTestRun(machine=m, batch=batch, requested_by=by, created_at=now) for m in fresh],
            batch_size=BULK_BATCH_SIZE,
        )
        run_of = {r.machine_id: r for r in created}
        services.move_machines(
            fresh, MachineStatus.TESTING, by=by, now=now,
            reason=lambda m: f"commissioning self-test #{run_of[m.pk].pk} requested",
        )  # fmt: skip
        if batch is not None and open_runs:
            SelfTestRun.objects.filter(pk__in=[r.pk for r in open_runs.values()], batch__isnull=True).update(
                batch=batch
            )
        sites = {m.contract.site_id for m in locked}
        transaction.on_commit(lambda: [dispatch(site_id) for site_id in sites])
    by_machine = {**open_runs, **{r.machine_id: r for r in created}}
    return [by_machine[m.pk] for m in locked]


# --------------------------------------------------------------------------------------
# Dispatching: the stagger
# --------------------------------------------------------------------------------------


def _policy_locked(site_id: int) -> CommissioningPolicy:
    policy, _ = CommissioningPolicy.objects.get_or_create(site_id=site_id)
    return CommissioningPolicy.objects.select_for_update().get(pk=policy.pk)


def circuit_caps(policy: CommissioningPolicy, circuit_ids: Iterable[int]) -> dict[int, int]:
    """How many machines each circuit may power up for testing at once: the policy's cap,
    and never more than the watts left by its machines in service allow (at least one; a
    curtailed machine may resume at any moment, so its watts count)."""
    from capacity.models import Circuit

    circuits = {c.pk: c for c in Circuit.objects.filter(pk__in=set(circuit_ids))}
    slots = Slot.objects.filter(circuit_id__in=circuits).order_by()
    live = dict(
        slots.filter(machine__status__in=IN_SERVICE).values("circuit_id").annotate(w=Sum("allocated_w"))
        .values_list("circuit_id", "w")
    )  # fmt: skip
    largest = dict(slots.values("circuit_id").annotate(w=Max("allocated_w")).values_list("circuit_id", "w"))
    caps = {}
    for pk, circuit in circuits.items():
        by_watts = (circuit.usable_w - (live.get(pk) or 0)) // max(1, largest.get(pk) or 1)
        caps[pk] = max(1, min(policy.max_tests_per_circuit, by_watts))
    return caps


def dispatch(site_id: int, now: dt.datetime | None = None) -> int:
    """Send the site's pending runs to its queue, oldest first, within the stagger: the
    site's concurrency and each circuit's cap. Returns how many were sent."""
    now = now or timezone.now()
    with transaction.atomic():
        policy = _policy_locked(site_id)  # one dispatcher per site at a time
        at_site = SelfTestRun.objects.filter(machine__contract__site_id=site_id)
        active = at_site.filter(status__in=[S.DISPATCHED, S.RUNNING])
        busy_site = active.count()
        room = policy.max_concurrent_tests - busy_site
        if room <= 0:
            return 0
        busy: Counter[int | None] = Counter(
            dict(
                active.order_by().values("machine__slot__circuit_id").annotate(n=Count("pk"))
                .values_list("machine__slot__circuit_id", "n")
            )
        )  # fmt: skip
        pending = list(
            at_site.filter(status=S.PENDING)
            .select_related("machine__slot", "machine__model")
            .order_by("created_at", "pk")[: room + 10 * policy.max_tests_per_circuit]
        )
        circuit_of = {r.pk: r.machine.slot.circuit_id if r.machine.slot else None for r in pending}
        caps = circuit_caps(policy, {c for c in circuit_of.values() if c is not None})
        chosen = []
        for run in pending:
            circuit_id = circuit_of[run.pk]
            if circuit_id is not None and busy[circuit_id] >= caps[circuit_id]:
                continue
            busy[circuit_id] += 1
            chosen.append(run.pk)
            if len(chosen) == room:
                break
        SelfTestRun.objects.filter(pk__in=chosen).update(status=S.DISPATCHED, dispatched_at=now)
        slug = Site.objects.values_list("slug", flat=True).get(pk=site_id)
        chosen_ids = set(chosen)
        longest = max([policy.burn_in_s, *(r.machine.model.burn_in_s or 0 for r in pending if r.pk in chosen_ids)])
        deadline = _deadline_s(policy, longest)
        transaction.on_commit(lambda: _send(chosen, site_id, slug, deadline))
    return len(chosen)


# Sites whose runs this process could not publish on its last attempt (site id → when).
# A request never waits on the broker: it makes one short attempt, and the sweep sends
# what waits once the broker is back; this lets it say so (`dispatch_state`).
_broker_refused: dict[int, float] = {}


def _send(run_ids: Sequence[int], site_id: int, site_slug: str, deadline_s: float) -> None:
    """Publish the runs in chunks on one connection, with a short timeout and no retries.
    When the broker refuses, what was not sent goes back to pending (the outbox) for the
    sweep, and nothing more is tried now."""
    from hosting.commissioning.tasks import commission_runs

    if not run_ids:
        return
    size = settings.COMMISSIONING_CHUNK
    chunks = [list(run_ids[start : start + size]) for start in range(0, len(run_ids), size)]
    limits = {"soft_time_limit": int(deadline_s) + 60, "time_limit": int(deadline_s) + 120}
    sent = queues.publish(
        commission_runs,
        [((chunk,), limits) for chunk in chunks],
        queue_for(site_slug),
        settings.COMMISSIONING_PUBLISH_TIMEOUT_MS / 1000,
    )
    if sent < len(chunks):  # broker unreachable: nothing is lost, the sweep sends it later
        unsent = [run_id for chunk in chunks[sent:] for run_id in chunk]
        log.warning("broker refused %d run(s) for site %s; they wait as pending", len(unsent), site_slug)
        SelfTestRun.objects.filter(pk__in=unsent, status=S.DISPATCHED).update(status=S.PENDING, dispatched_at=None)
        _broker_refused[site_id] = time.monotonic()
        return
    _broker_refused.pop(site_id, None)


def dispatch_state(run_ids: Iterable[int]) -> str:
    """Where these runs are, for a request's answer: "sent" to their site's worker, "queued"
    behind the site's stagger, or "delayed" — the broker could not be reached, so they wait
    in the runs table and the periodic sweep sends them when it is back."""
    waiting = set(
        SelfTestRun.objects.filter(pk__in=list(run_ids), status=S.PENDING)
        .values_list("machine__contract__site_id", flat=True)
        .distinct()
    )
    if waiting & _broker_refused.keys():
        return "delayed"
    return "queued" if waiting else "sent"


def sweep(now: dt.datetime | None = None) -> dict:
    """Periodic (beat): hand out again runs whose worker died or whose message was lost,
    then dispatch every site with pending runs."""
    now = now or timezone.now()
    stale = _stale_before(now)
    orphaned = SelfTestRun.objects.filter(status=S.RUNNING, heartbeat_at__lt=stale).update(
        status=S.PENDING, dispatched_at=None
    )
    lost = SelfTestRun.objects.filter(status=S.DISPATCHED, dispatched_at__lt=stale).update(
        status=S.PENDING, dispatched_at=None
    )
    sites = set(
        SelfTestRun.objects.filter(status=S.PENDING).values_list("machine__contract__site_id", flat=True).distinct()
    )
    sent = sum(dispatch(site_id, now) for site_id in sites)
    return {"orphaned": orphaned, "lost": lost, "sent": sent}


# --------------------------------------------------------------------------------------
# Running: claim, plan, heartbeat, finish
# --------------------------------------------------------------------------------------


def claim(run_ids: Sequence[int], now: dt.datetime | None = None) -> tuple[str, list[SelfTestRun]]:
    """Take the runs this message carries that nobody is running (or whose runner died)."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(status=S.DISPATCHED) | Q(status=S.RUNNING, heartbeat_at__lt=_stale_before(now))
    SelfTestRun.objects.filter(pk__in=run_ids).filter(claimable).update(
        status=S.RUNNING, token=token, attempt=F("attempt") + 1, started_at=now, heartbeat_at=now
    )
    claimed = list(
        SelfTestRun.objects.filter(pk__in=run_ids, token=token, status=S.RUNNING).select_related(
            "machine__model", "machine__contract__site", "machine__slot__circuit__pdu"
        )
    )
    return token, claimed


def release(run_ids: Sequence[int], token: str) -> int:
    """Hand back runs this attempt holds but will not finish (its worker is shutting down):
    pending again, for the sweep to send, without waiting for their heartbeat to go stale."""
    return SelfTestRun.objects.filter(pk__in=run_ids, token=token, status=S.RUNNING).update(
        status=S.PENDING, dispatched_at=None
    )


def heartbeat(run_ids: Sequence[int], token: str) -> None:
    SelfTestRun.objects.filter(pk__in=run_ids, token=token, status=S.RUNNING).update(heartbeat_at=timezone.now())


def _deadline_s(policy: CommissioningPolicy, burn_in_s: float) -> float:
    return burn_in_s + float(policy.sample_interval_s) + 4 * float(policy.probe_timeout_s) + 30


def plan_for(run: SelfTestRun, policy: CommissioningPolicy) -> pipeline.Plan:
    machine = run.machine
    model = machine.model
    site = machine.contract.site
    slot = machine.slot
    circuit = slot.circuit if slot else None
    pdu = circuit.pdu if circuit else None
    tolerance = policy.power_tolerance_pct if policy.power_tolerance_pct is not None else model.power_tolerance_pct
    burn_in_s = model.burn_in_s if model.burn_in_s is not None else policy.burn_in_s
    expected = checks.Expected(
        make=PYASIC_MAKE.get(model.vendor, model.vendor),
        model=model.pyasic_model or model.name,
        mac=machine.mac,
        serial=machine.serial,
        nominal_hashrate_ths=model.nominal_hashrate_ths,
        hashrate_tolerance_pct=model.hashrate_tolerance_pct,
        nameplate_w=model.nameplate_power_w,
        power_tolerance_pct=tolerance,
        hashboards=model.hashboards,
        chips_per_board=model.chips_per_board,
        fans=model.fans,
        max_chip_temp_c=model.max_chip_temp_c,
        max_board_temp_c=model.max_board_temp_c,
        min_fan_rpm=policy.min_fan_rpm,
        max_ambient_c=site.max_ambient_c,
        circuit_usable_w=circuit.usable_w if circuit else 0,
        unmetered_accepts_nameplate=policy.unmetered == CommissioningPolicy.Unmetered.ACCEPT_NAMEPLATE,
    )
    return pipeline.Plan(
        run_id=run.pk,
        ip=machine.ip,
        expected=expected,
        pdu=PduAddress(pdu.host, pdu.port, pdu.community, pdu.profile) if pdu else None,
        outlet=slot.outlet if slot else None,
        burn_in_s=float(burn_in_s),
        interval_s=float(policy.sample_interval_s),
        timeout_s=float(policy.probe_timeout_s),
        deadline_s=_deadline_s(policy, burn_in_s),
    )


def plans(runs: Sequence[SelfTestRun]) -> list[pipeline.Plan]:
    sites = {r.machine.contract.site for r in runs}
    policies = {site.pk: CommissioningPolicy.for_site(site) for site in sites}
    return [plan_for(r, policies[r.machine.contract.site_id]) for r in runs]


def _sample_rows(run_id: int, readings: Sequence[Reading]) -> list[Sample]:
    return [
        Sample(
            run_id=run_id,
            seq=seq,
            taken_at=r.taken_at,
            reachable=r.reachable,
            hashrate_ths=None if r.hashrate_ths is None else Decimal(str(round(r.hashrate_ths, 3))),
            power_w=None if r.power_w is None else round(r.power_w),
            boards=[
                {
                    "slot": b.slot,
                    "present": b.present,
                    "hashrate_ths": b.hashrate_ths,
                    "chips": b.chips,
                    "chip_temp_c": b.chip_temp_c,
                    "board_temp_c": b.board_temp_c,
                    "chip_temps_c": list(b.chip_temps_c),
                    "pcb_temps_c": list(b.pcb_temps_c),
                }
                for b in r.boards
            ],
            fans_rpm=list(r.fans_rpm),
            errors=list(r.errors),
            outlet_w=None if r.outlet_w is None else round(r.outlet_w),
            circuit_w=None if r.circuit_w is None else round(r.circuit_w),
            inlet_temp_c=None if r.inlet_temp_c is None else Decimal(str(round(r.inlet_temp_c, 1))),
        )
        for seq, r in enumerate(readings)
    ]


def finish(results: Sequence[pipeline.Result], token: str, now: dt.datetime | None = None) -> list[SelfTestRun]:
    """Store what was measured and the verdict — once: only for runs this attempt still
    owns — and move each machine under test to live or failed."""
    now = now or timezone.now()
    with transaction.atomic():
        owned = {
            r.pk: r
            for r in SelfTestRun.objects.select_for_update()
            .filter(pk__in=[x.run_id for x in results], token=token, status=S.RUNNING)
            .order_by("pk")
        }
        mine = [x for x in results if x.run_id in owned]
        if not mine:
            return []
        CheckResult.objects.bulk_create(
            [
                CheckResult(
                    run_id=x.run_id, name=o.name, passed=o.passed, reasons=list(o.reasons), measurements=o.measurements
                )
                for x in mine
                for o in x.outcomes
            ],
            batch_size=BULK_BATCH_SIZE,
        )
        Sample.objects.bulk_create(
            [row for x in mine for row in _sample_rows(x.run_id, x.readings)], batch_size=BULK_BATCH_SIZE
        )
        verdicts = {x.run_id: x.verdict for x in mine}
        for run_id, (passed, reasons) in verdicts.items():
            run = owned[run_id]
            run.status = S.PASSED if passed else S.FAILED
            run.reasons = reasons
            run.finished_at = now
        SelfTestRun.objects.bulk_update(
            [owned[i] for i in verdicts], ["status", "reasons", "finished_at"], batch_size=BULK_BATCH_SIZE
        )
        _settle_machines([owned[i] for i in verdicts], now)
        machine_ids = [owned[i].machine_id for i in verdicts]
        sites = set(Machine.objects.filter(pk__in=machine_ids).values_list("contract__site_id", flat=True))
        transaction.on_commit(lambda: [dispatch(site_id) for site_id in sites])
        batch_ids = {owned[i].batch_id for i in verdicts} - {None}
        if batch_ids:
            transaction.on_commit(lambda: _announce_finished(batch_ids))
    return [owned[i] for i in verdicts]


def _announce_finished(batch_ids: set) -> None:
    """After commit: those of the batches whose every run now has its verdict (read after the
    commit, so the worker storing a batch's last verdict always sees it finished)."""
    still_open = set(SelfTestRun.objects.open().filter(batch_id__in=batch_ids).values_list("batch_id", flat=True))
    if finished := sorted(batch_ids - still_open, key=str):
        signals.batches_finished.send(sender=CommissioningBatch, batch_ids=finished)


def _settle_machines(runs: Sequence[SelfTestRun], now: dt.datetime) -> None:
    """Machines still under test go live (passed) or to failed; one moved meanwhile by staff
    keeps where it is (the run still records what was measured)."""
    verdict_of = {r.machine_id: r for r in runs}
    machines = list(
        Machine.objects.select_for_update().filter(pk__in=verdict_of, status=MachineStatus.TESTING).order_by("pk")
    )
    passed = [m for m in machines if verdict_of[m.pk].status == S.PASSED]
    failed = [m for m in machines if verdict_of[m.pk].status != S.PASSED]
    services.move_machines(
        passed, MachineStatus.LIVE, now=now, reason=lambda m: f"self-test #{verdict_of[m.pk].pk} passed"
    )
    services.move_machines(failed, MachineStatus.FAILED, now=now, reason=lambda m: "; ".join(verdict_of[m.pk].reasons))


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------


def progress(runs) -> dict:
    """Counts for a progress bar: total, and runs by stage (SelfTestRun.STAGES)."""
    return SelfTestRun.progress(runs.order_by().aggregate(**SelfTestRun.stage_counts()))


def start_batch(machines, *, contract=None, shipment=None, label: str = "", by=None) -> CommissioningBatch:
    """Commission machines together, all or none, under one batch that shows their progress:
    a packing list's (`shipment`), a contract's, or any selection."""
    machines = list(machines)
    tenants = {m.tenant_id for m in machines}
    Source = CommissioningBatch.Source
    source = Source.PACKING_LIST if shipment else Source.CONTRACT if contract else Source.SELECTION
    with transaction.atomic():
        batch = CommissioningBatch.objects.create(
            source=source,
            shipment=shipment,
            contract=contract or (shipment.contract if shipment else None),
            tenant_id=tenants.pop() if len(tenants) == 1 else None,
            label=label,
            created_by=by,
        )
        request(machines, by=by, batch=batch)
    return batch
