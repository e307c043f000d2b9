"""Alerts as rows: open, keep open, resolve (`evaluate`, after each poll), acknowledge, and
the digest e-mail. The rules themselves are pure, in `hosting.telemetry.alerts`.

Deduplication is the database's: a partial unique constraint allows one open alert per
(machine, kind) and per (circuit, kind), and alerts are opened with
INSERT … ON CONFLICT DO NOTHING (`bulk_create(ignore_conflicts=True)`; SQLite's INSERT OR
IGNORE), so two workers evaluating the same window open each alert once: the second
insert waits for the first one's transaction and then does nothing. Keeping and resolving
are conditional UPDATEs on open rows, so running an evaluation twice changes nothing more.

Times on the rows are wall-clock (when Haven saw it); the windows' own times are in
`values` (`window_start`, and `since` for streaks). The digest finds what it has not yet
mailed by comparing `notified_at` with `resolved_at`, which is why a resolution is never
stamped earlier than the alert's last notification (see `_resolve`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.template.loader import render_to_string
from django.utils import timezone

from capacity.models import Circuit
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, MachineModel
from hosting.telemetry import alerts, signals
from hosting.telemetry.models import Alert, AlertQuerySet, CircuitWindow, TelemetryPolicy, Window

log = logging.getLogger(__name__)

WINDOW_FIELDS = (
    "start",
    "machine_id",
    "reachable",
    "hashrate_ths",
    "boards_seen",
    "chips_seen",
    "chip_temp_max_c",
    "inlet_temp_c",
    "fans_ok",
    "power_w",
    "power_source",
)
TICK = dt.timedelta(microseconds=1)


def rules_for(policy: TelemetryPolicy) -> alerts.Rules:
    return alerts.Rules(
        offline_windows=policy.offline_windows,
        low_hashrate_pct=float(policy.low_hashrate_pct),
        low_hashrate_windows=policy.low_hashrate_windows,
        inlet_max_c=float(policy.inlet_max_c),
        circuit_alert_pct=float(policy.circuit_alert_pct),
    )


def limits_for(model: MachineModel) -> alerts.Limits:
    return alerts.Limits(
        nominal_hashrate_ths=float(model.nominal_hashrate_ths),
        nameplate_power_w=model.nameplate_power_w,
        power_tolerance_pct=float(model.power_tolerance_pct),
        max_chip_temp_c=float(model.max_chip_temp_c),
        hashboards=model.hashboards,
        chips_per_board=model.chips_per_board,
        fans=model.fans,
    )


def breaker_of(circuit: Circuit) -> alerts.Breaker:
    return alerts.Breaker(circuit.voltage_v, circuit.breaker_amps, circuit.phases, circuit.power_factor)


def policy_for(site_id: int) -> TelemetryPolicy:
    """The site's policy, created with the defaults on first use."""
    policy, _ = TelemetryPolicy.objects.get_or_create(site_id=site_id)
    return policy


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did: alerts it asked to open (a concurrent evaluation may have
    opened some first), kept open and resolved."""

    to_open: int
    kept: int
    resolved: int


def evaluate(
    site_id: int,
    window_start: dt.datetime,
    *,
    machine_ids: Iterable[int] | None = None,
    site_wide: bool = True,
    now: dt.datetime | None = None,
) -> Evaluation:
    """Apply the site's rules to the interval starting at `window_start`: open the alerts
    that now hold, touch those still holding, resolve those that no longer do.

    `machine_ids` limits it to those machines (a chunk of the poll just stored; None: every
    watched machine of the site). `site_wide` adds what belongs to the whole site: its
    circuits, and resolving the alerts of machines no longer watched — done once the poll
    of the interval is all in.

    Reads in a fixed number of queries whatever the site's size (the policy, the watched
    machines with their models, their recent windows, the circuits, their windows of the
    interval, the open alerts, the machines no longer watched); writes in at most three."""
    now = now or timezone.now()
    ids = None if machine_ids is None else list(machine_ids)
    policy = policy_for(site_id)
    rules = rules_for(policy)
    since = window_start - dt.timedelta(seconds=policy.poll_interval_s) * rules.lookback_windows
    watched_here = Machine.objects.watched().filter(slot__rack__site_id=site_id)
    chosen = watched_here if ids is None else watched_here.filter(pk__in=ids)
    machines = list(
        chosen.select_related("model").only(
            "pk", "tenant", "serial", "status", "model", "model__nominal_hashrate_ths", "model__nameplate_power_w",
            "model__power_tolerance_pct", "model__max_chip_temp_c", "model__hashboards",
            "model__chips_per_board", "model__fans",
        )
    )  # fmt: skip
    windows: dict[int, list[Window]] = defaultdict(list)
    rows = Window.objects.filter(site_id=site_id, start__gt=since, start__lte=window_start)
    if ids is not None:
        rows = rows.filter(machine_id__in=ids)
    for window in rows.only(*WINDOW_FIELDS).order_by("machine_id", "start"):
        windows[window.machine_id].append(window)
    circuits: list[Circuit] = []
    measured: dict[int, float | None] = {}
    if site_wide:
        circuits = list(Circuit.objects.filter(feed__site_id=site_id).order_by("pk"))
        measured = dict(
            CircuitWindow.objects.filter(site_id=site_id, start=window_start).values_list("circuit_id", "measured_w")
        )
    mine = Q() if ids is None else Q(machine_id__in=ids)
    if ids is not None and site_wide:
        mine |= Q(circuit__isnull=False)
    elif not site_wide:
        mine &= Q(machine__isnull=False)
    open_alerts = {
        (a.machine_id, a.circuit_id, a.kind): a.pk
        for a in Alert.objects.open().filter(mine, site_id=site_id).only("pk", "machine_id", "circuit_id", "kind")
    }

    found: list[tuple[int | None, int | None, int | None, alerts.Finding]] = []  # machine, circuit, tenant
    keep: list[int] = []
    resolve: set[int] = set()
    limits: dict[int, alerts.Limits] = {}
    for machine in machines:
        model_limits = limits.setdefault(machine.model_id, limits_for(machine.model))
        curtailed = machine.status == MachineStatus.CURTAILED
        decisions = alerts.machine_decisions(
            rules, model_limits, windows[machine.pk], window_start, curtailed=curtailed
        )
        for kind, finding in decisions.items():
            _decide((machine.pk, None, kind), finding, machine.tenant_id, open_alerts, found, keep, resolve)
    for circuit in circuits:
        for kind, finding in alerts.circuit_hot(rules, breaker_of(circuit), measured.get(circuit.pk)).items():
            _decide((None, circuit.pk, kind), finding, None, open_alerts, found, keep, resolve)
    if site_wide:  # a machine no longer watched (unracked, sent for RMA) has nothing left to watch for
        gone = Alert.objects.open().filter(site_id=site_id, machine__isnull=False).exclude(machine__in=watched_here)
        resolve.update(gone.values_list("pk", flat=True))

    to_open = [
        Alert(
            kind=f.kind, site_id=site_id, machine_id=machine_id, circuit_id=circuit_id, tenant_id=tenant_id,
            opened_at=now, last_seen_at=now, message=f.message[:300],
            values={**f.values, "window_start": window_start.isoformat()},
        )
        for machine_id, circuit_id, tenant_id, f in found
    ]  # fmt: skip
    kept = resolved = 0
    with transaction.atomic():
        if to_open:
            Alert.objects.bulk_create(to_open, ignore_conflicts=True)
            # Those this evaluation opened (a concurrent one's insert won elsewhere: its own `now`).
            opened = list(Alert.objects.filter(site_id=site_id, opened_at=now).values_list("pk", flat=True))
            if opened:
                transaction.on_commit(lambda: signals.alerts_opened.send(sender=Alert, alert_ids=opened))
        if keep:
            kept = Alert.objects.open().filter(pk__in=keep, last_seen_at__lt=now).update(last_seen_at=now)
        if resolve:
            # Locked first: a concurrent evaluation resolving the same alerts waits, then finds them resolved.
            closing = list(
                Alert.objects.open()
                .select_for_update()
                .filter(pk__in=resolve)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            resolved = _resolve(Alert.objects.filter(pk__in=closing), now)
            if closing:
                transaction.on_commit(lambda: signals.alerts_resolved.send(sender=Alert, alert_ids=closing))
    return Evaluation(to_open=len(to_open), kept=kept, resolved=resolved)


def _decide(key, finding, tenant_id, open_alerts, found, keep, resolve) -> None:
    machine_id, circuit_id, _ = key
    pk = open_alerts.get(key)
    if finding is not None and pk is None:
        found.append((machine_id, circuit_id, tenant_id, finding))
    elif finding is not None and pk is not None:
        keep.append(pk)
    elif finding is None and pk is not None:
        resolve.add(pk)


def _resolve(queryset: AlertQuerySet, now: dt.datetime) -> int:
    # Never before the alert's last digest: a digest that stamped `notified_at` while this
    # evaluation was running (its clock a moment later) must still see the resolution as
    # not yet mailed. Coalesce: SQLite's MAX() of a NULL is NULL.
    return queryset.update(resolved_at=Greatest(Value(now), Coalesce(F("notified_at") + TICK, Value(now))))


def acknowledge(alert: Alert, user, *, now: dt.datetime | None = None) -> Alert:
    """Staff have seen it. The first acknowledgement stands; acknowledging again is a no-op."""
    now = now or timezone.now()
    Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(acknowledged_at=now, acknowledged_by=user)
    alert.refresh_from_db(fields=["acknowledged_at", "acknowledged_by"])
    return alert


# --- the digest ---------------------------------------------------------------------------------


def not_yet_mailed() -> AlertQuerySet:
    """Alerts whose opening, or whose resolution, no digest has carried yet."""
    return Alert.objects.filter(
        Q(notified_at__isnull=True) | Q(resolved_at__isnull=False, notified_at__lt=F("resolved_at"))
    )


@dataclass(frozen=True)
class DigestLine:
    alert: Alert
    change: str  # "opened", "resolved", "opened and resolved"


def send_digests(*, now: dt.datetime | None = None) -> int:
    """One e-mail per recipient with the alerts opened or resolved since the last digest:
    staff (settings.ALERT_EMAILS) get every alert, each tenant (its contact_email) its own.
    Returns the number of e-mails sent.

    The alerts are claimed first (locked, skipping rows another digest holds, and stamped
    `notified_at` in a short transaction), then mailed outside it; a message that cannot be
    sent gives its alerts back to the next digest."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = list(
            not_yet_mailed()
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("site", "machine", "circuit", "tenant")
            .order_by("site__name", "opened_at", "pk")
        )
        if not claimed:
            return 0
        Alert.objects.filter(pk__in=[a.pk for a in claimed]).update(notified_at=now)
    lines = [DigestLine(a, _change(a)) for a in claimed]
    previous = {a.pk: a.notified_at for a in claimed}
    sent = 0
    connection = get_connection()
    for address, (audience, mine) in _recipients(lines).items():
        message = _digest_message(address, audience, mine, now)
        try:
            connection.send_messages([message])
        except Exception:  # the mail server is down: these go in the next digest
            log.warning("alert digest to %s not sent; its alerts go in the next one", address, exc_info=True)
            for line in mine:
                Alert.objects.filter(pk=line.alert.pk, notified_at=now).update(notified_at=previous[line.alert.pk])
        else:
            sent += 1
    return sent


def _change(alert: Alert) -> str:
    if alert.resolved_at is None:
        return "opened"
    return "opened and resolved" if alert.notified_at is None else "resolved"


def _recipients(lines: Iterable[DigestLine]) -> dict[str, tuple[str, list[DigestLine]]]:
    """address → (audience, lines): staff addresses every line, tenants' their own."""
    lines = list(lines)
    out: dict[str, tuple[str, list[DigestLine]]] = {}
    for address in getattr(settings, "ALERT_EMAILS", []):
        out[address.lower()] = ("staff", lines)
    by_tenant: dict[str, list[DigestLine]] = defaultdict(list)
    for line in lines:
        if line.alert.tenant is not None:
            by_tenant[line.alert.tenant.contact_email.lower()].append(line)
    for address, mine in by_tenant.items():
        out.setdefault(address, ("tenant", mine))
    return out


def _digest_message(address: str, audience: str, lines: list[DigestLine], now: dt.datetime) -> EmailMessage:
    opened = sum(1 for line in lines if line.change != "resolved")
    resolved = sum(1 for line in lines if line.alert.resolved_at is not None)
    subject = f"Haven alerts: {opened} opened, {resolved} resolved"
    body = render_to_string(
        "telemetry/alert_digest.txt", {"lines": lines, "audience": audience, "now": now, "opened": opened}
    )
    return EmailMessage(subject=subject, body=body, to=[address])
