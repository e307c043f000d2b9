"""The reads of curtailment: what the staff pages and the tenant portal show. Plain functions
over querysets, each a fixed number of queries whatever the number of sites, events,
machines or contracts; nothing here writes.

- Per site: the latest settlement price of its settlement point against the strike of each
  active price program, the site load (the latest finished poll's measured IT watts × PUE,
  as telemetry's power view reads it), its open and recent events.
- Per event: achieved against target MW over time (EventSample), the chosen machines and
  those that did not respond (failed, or still drawing after the deadline) with their commands.
- Per contract this month (the site's local month, as billing counts it): the curtailed
  hours against the contract's rights, the events that touched its machines, and what that
  does to the invoice.

Hours used. The monthly cap (`max_curtailed_hours_month`) is per machine: billing's SLA
rule (`hosting.billing.rules.uptime`) lets each machine be curtailed up to that many hours
within rights. So the figure set against the cap is the **most-curtailed machine's hours**
(the machine nearest its cap); the sum over machines (machine-hours) is what the invoice
feels. Both come from billing's machine-days (`windows_curtailed × window_s`), plus the
windows of the days not rolled yet (today), read from the raw windows.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from capacity.models import Site
from hosting.billing import rules
from hosting.billing.models import ContractTerms, MachineDay, RollupCursor, SiteBilling
from hosting.curtailment.models import (
    CurtailmentStatus,
    Event,
    EventMachine,
    EventSample,
    EventStatus,
    Program,
    ProgramKind,
    SettlementPrice,
)
from hosting.lifecycle import MachineStatus
from hosting.models import Contract, MachineModel
from hosting.telemetry import reports as telemetry
from hosting.telemetry.models import TelemetryPolicy, Window

OPEN = (EventStatus.SCHEDULED, EventStatus.ACTIVE)
NOT_RESPONDING = (CurtailmentStatus.FAILED, CurtailmentStatus.STILL_DRAWING)
RECENT = dt.timedelta(days=7)  # ended events a site's row still lists
RECENT_SHOWN = 5
CHART_POINTS = 720  # an event's timeline is thinned to at most this many samples
KWH = Decimal("0.001")
HOURS = Decimal("0.01")


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


# --------------------------------------------------------------------------------------
# Sites: price against strike, load, events
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strike:
    """One active price program's strike beside the site's current price."""

    program_id: int
    name: str
    strike_usd_per_mwh: Decimal
    hold_minutes: int
    price_usd_per_mwh: Decimal | None

    @property
    def above(self) -> bool | None:
        """The current price is above the strike (None: no price known)."""
        if self.price_usd_per_mwh is None:
            return None
        return self.price_usd_per_mwh > self.strike_usd_per_mwh


@dataclass
class SiteCurtailment:
    """A site as the curtailment page shows it."""

    site: Site
    settlement_point: str
    price_usd_per_mwh: Decimal | None
    price_at: dt.datetime | None
    strikes: list[Strike]
    it_kw: float
    facility_kw: float
    load_as_of: dt.datetime | None
    open_events: list[Event] = field(default_factory=list)
    recent_events: list[Event] = field(default_factory=list)

    @property
    def it_mw(self) -> float:
        return self.it_kw / 1000

    @property
    def facility_mw(self) -> float:
        return self.facility_kw / 1000


def with_event_figures(events: QuerySet[Event]) -> QuerySet[Event]:
    """Events annotated with their machines, non-responders, expected shed and latest
    achieved MW (`machines_n`, `not_responding_n`, `expected_shed_w_sum`, `achieved_mw_now`)."""
    latest = EventSample.objects.filter(event_id=OuterRef("pk")).order_by("-at")
    machines = EventMachine.objects.filter(event_id=OuterRef("pk")).order_by().values("event_id")
    return events.annotate(
        machines_n=Subquery(machines.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()),
        not_responding_n=Subquery(
            machines.filter(status__in=NOT_RESPONDING).annotate(n=Count("pk")).values("n")[:1],
            output_field=IntegerField(),
        ),
        expected_shed_w_sum=Subquery(
            machines.annotate(w=Sum("expected_shed_w")).values("w")[:1], output_field=IntegerField()
        ),
        achieved_mw_now=Subquery(latest.values("achieved_mw")[:1]),
    )


def sites_overview(sites: Sequence[Site] | None = None, now: dt.datetime | None = None) -> list[SiteCurtailment]:
    """Every site (or those given) with its price, strikes, load and events (seven queries)."""
    now = _now(now)
    price = SettlementPrice.objects.filter(
        settlement_point=OuterRef("grid__settlement_point"), interval_start__lte=now
    ).order_by("-interval_start")
    rows = Site.objects.order_by("name").select_related("grid")
    if sites is not None:
        rows = rows.filter(pk__in=[s.pk for s in sites])
    rows = rows.annotate(
        price_now=Subquery(price.values("price_usd_per_mwh")[:1]), price_at=Subquery(price.values("interval_start")[:1])
    )
    found = list(rows)
    ids = [s.pk for s in found]
    programs: dict[int, list[Program]] = defaultdict(list)
    for p in Program.objects.filter(site_id__in=ids, active=True, kind=ProgramKind.PRICE).order_by("name", "pk"):
        programs[p.site_id].append(p)
    load = telemetry.now_by_site(ids)
    events = with_event_figures(Event.objects.filter(site_id__in=ids).select_related("program"))
    open_by_site: dict[int, list[Event]] = defaultdict(list)
    for e in events.filter(status__in=OPEN).order_by("starts_at", "pk"):
        open_by_site[e.site_id].append(e)
    recent_by_site: dict[int, list[Event]] = defaultdict(list)
    ended = events.exclude(status__in=OPEN).filter(Q(ends_at__gte=now - RECENT) | Q(ends_at__isnull=True))
    for e in ended.filter(starts_at__gte=now - RECENT - dt.timedelta(days=1)).order_by("-starts_at", "-pk"):
        if len(recent_by_site[e.site_id]) < RECENT_SHOWN:
            recent_by_site[e.site_id].append(e)
    out = []
    for s in found:
        grid = getattr(s, "grid", None)
        # SQLite hands a subquery's decimal back unscaled (250, not 250.00).
        current = None if s.price_now is None else Decimal(str(s.price_now)).quantize(Decimal("0.01"))
        strikes = [
            Strike(p.pk, p.name, p.strike_usd_per_mwh, p.hold_minutes, current)
            for p in programs[s.pk]
            if p.strike_usd_per_mwh is not None
        ]
        now_row = load.get(s.pk, telemetry.Now())
        out.append(
            SiteCurtailment(
                s, grid.settlement_point if grid else "", current, s.price_at,
                strikes, now_row.power_kw, now_row.power_kw * float(s.pue), now_row.as_of,
                open_by_site[s.pk], recent_by_site[s.pk],
            )
        )  # fmt: skip
    return out


# --------------------------------------------------------------------------------------
# One event: timeline, machines, non-responders
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePoint:
    at: dt.datetime
    target_mw: float
    achieved_mw: float
    site_load_mw: float | None
    machines_off: int


def thin(points: Sequence[TimelinePoint], most: int = CHART_POINTS) -> list[TimelinePoint]:
    """At most `most` points, evenly picked, the first and last kept (a chart's width is finite)."""
    if len(points) <= most:
        return list(points)
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


def timeline(event: Event) -> list[TimelinePoint]:
    """The event's samples in time order (one query)."""
    rows = EventSample.objects.filter(event=event).order_by("at")
    return [
        TimelinePoint(r.at, float(r.target_mw), float(r.achieved_mw),
                      None if r.site_load_mw is None else float(r.site_load_mw), r.machines_off)
        for r in rows
    ]  # fmt: skip


def event_status_counts(event: Event) -> dict[str, int]:
    """status → machines of the event in it (one query)."""
    rows = EventMachine.objects.filter(event=event).order_by().values("status").annotate(n=Count("pk"))
    return {r["status"]: r["n"] for r in rows}


def event_machines(event: Event, *, only_not_responding: bool = False) -> QuerySet[EventMachine]:
    """The event's chosen machines in rank order, with what a row shows (machine, model,
    tenant); to be paginated."""
    rows = EventMachine.objects.filter(event=event).select_related("machine__model", "contract__tenant")
    if only_not_responding:
        rows = rows.filter(status__in=NOT_RESPONDING)
    return rows.order_by("rank", "pk")


def not_responding(event: Event) -> QuerySet[EventMachine]:
    """The machines that did not answer or still draw after the deadline, each with its
    commands (prefetched: two queries for a page of them)."""
    return event_machines(event, only_not_responding=True).prefetch_related("commands")


# --------------------------------------------------------------------------------------
# Contracts: rights, hours used this month, events, effect on the invoice
# --------------------------------------------------------------------------------------


def local_month(site: Site, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """[first local date of the site's month, first of the next)."""
    today = now.astimezone(zoneinfo.ZoneInfo(site.timezone)).date()
    first = today.replace(day=1)
    return first, (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _local_start(site: Site, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zoneinfo.ZoneInfo(site.timezone)).astimezone(dt.UTC)


@dataclass(frozen=True)
class MachineCurtailed:
    """One machine's curtailed time this month."""

    machine_id: int
    seconds: int
    windows: int
    nameplate_w: int
    power_before_w: float | None = None  # measured at its latest stop this month
    power_after_w: float | None = None

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.seconds) / 3600).quantize(HOURS, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class InvoiceEffect:
    """What this month's curtailment does to the contract's invoice so far."""

    mode: str
    currency: str
    rate_per_kwh: Decimal
    windows_excluded: int  # curtailed within rights: left out of the SLA
    windows_over_rights: int  # curtailed beyond rights: counted as down
    kwh_not_billed: Decimal | None  # nameplate: curtailed hours × nameplate kW; metered: the shed, estimated
    amount_not_billed: Decimal | None
    kwh_billed_at_sleep: Decimal | None = None  # metered: the sleep draw of the curtailed hours, estimated
    machines_unmeasured: int = 0  # metered: curtailed machines with no power reading at a stop


@dataclass
class ContractCurtailment:
    """A contract's curtailment this month as the tenant sees it."""

    contract: Contract
    terms: ContractTerms | None
    month: dt.date
    machines: list[MachineCurtailed]
    effect: InvoiceEffect
    events_this_month: int = 0
    upcoming: list[Event] = field(default_factory=list)

    @property
    def curtailable(self) -> bool:
        return self.terms is not None and self.terms.curtailable

    @property
    def max_hours(self) -> int | None:
        return self.terms.max_curtailed_hours_month if self.terms else None

    @property
    def hours_max_machine(self) -> Decimal:
        """The most-curtailed machine's hours: what the per-machine cap is set against."""
        return max((m.hours for m in self.machines), default=Decimal(0)).quantize(HOURS)

    @property
    def machine_hours(self) -> Decimal:
        return sum((m.hours for m in self.machines), Decimal(0)).quantize(HOURS)

    @property
    def hours_left(self) -> Decimal | None:
        if not self.curtailable:
            return Decimal(0)
        if self.max_hours is None:
            return None
        return max(Decimal(self.max_hours) - self.hours_max_machine, Decimal(0))

    @property
    def used_pct(self) -> float | None:
        if not self.max_hours:
            return None
        return float(100 * self.hours_max_machine / self.max_hours)

    @property
    def machines_at_cap(self) -> int:
        if self.max_hours is None:
            return 0
        return sum(1 for m in self.machines if m.seconds >= self.max_hours * 3600)


def rules_terms(contract: Contract, terms: ContractTerms | None) -> rules.Terms:
    """The rights as billing's rules read them (no terms row yet: billing's defaults, which
    make a contract not curtailable)."""
    return rules.Terms(
        mode=terms.billing_mode if terms else "metered",
        rate_per_kwh=contract.rate_usd_per_kwh,
        sla_target_pct=terms.sla_target_pct if terms else Decimal(95),
        max_curtailed_hours_month=terms.max_curtailed_hours_month if terms else None,
        curtailable=terms.curtailable if terms else False,
    )


def sla_split(m: MachineCurtailed, terms: rules.Terms) -> rules.Uptime:
    """Billing's own rule for the machine's curtailed windows: within rights excluded from
    the SLA, beyond them counted as down (the other windows do not change the split)."""
    month = rules.MachineMonth(
        machine_id=m.machine_id, model_id=0, model_name="", nameplate_w=m.nameplate_w, days_live=0,
        seconds=m.seconds, seconds_curtailed=m.seconds, seconds_operational=0, seconds_unknown=0,
        windows=m.windows, windows_curtailed=m.windows, windows_rma=0, windows_maintenance=0, windows_unknown=0,
        windows_reachable=0, windows_hashing=0, energy_wh_measured=0.0,
    )  # fmt: skip
    return rules.uptime(month, terms)


def invoice_effect(terms: rules.Terms, machines: Sequence[MachineCurtailed], currency: str) -> InvoiceEffect:
    """Pure: the month's curtailed machines → the effect on the invoice.

    Nameplate mode bills operational hours only, so every curtailed hour is not billed:
    hours × nameplate kW × rate. Metered mode bills what the PDU measured, so a curtailed
    hour is billed at the sleep draw; the energy not billed is estimated from the power
    measured before and after each machine's stop (a machine without both readings is
    counted, not guessed). Flat mode bills a monthly fee by days live: nothing changes but
    the SLA."""
    split = sum((sla_split(m, terms) for m in machines), rules.Uptime())
    kwh: Decimal | None = None
    sleep: Decimal | None = None
    unmeasured = 0
    if terms.mode == "nameplate":
        kwh = sum((Decimal(m.seconds) * m.nameplate_w / 3_600_000 for m in machines), Decimal(0))
    elif terms.mode == "metered":
        kwh, sleep = Decimal(0), Decimal(0)
        for m in machines:
            if m.power_after_w is None:
                unmeasured += 1
                continue
            before = m.power_before_w if m.power_before_w is not None else float(m.nameplate_w)
            hours = Decimal(m.seconds) / 3600
            kwh += hours * Decimal(repr(max(before - m.power_after_w, 0.0))) / 1000
            sleep += hours * Decimal(repr(m.power_after_w)) / 1000
    kwh = None if kwh is None else kwh.quantize(KWH, rounding=ROUND_HALF_UP)
    sleep = None if sleep is None else sleep.quantize(KWH, rounding=ROUND_HALF_UP)
    amount = None if kwh is None else rules.cents(kwh * terms.rate_per_kwh)
    return InvoiceEffect(
        terms.mode, currency, terms.rate_per_kwh, split.excluded_curtailed, split.curtailed_over_rights,
        kwh, amount, sleep, unmeasured,
    )  # fmt: skip


def _curtailed_seconds(contracts: Sequence[Contract], now: dt.datetime) -> dict[int, dict[int, list[int]]]:
    """contract id → machine id → [curtailed seconds, curtailed windows] this month: the
    rolled machine-days, then the raw windows of the days not rolled yet (a fixed number
    of queries per distinct month: one, unless sites straddle a month's turn)."""
    out: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    by_month: dict[tuple[dt.date, dt.date], list[Contract]] = defaultdict(list)
    for c in contracts:
        by_month[local_month(c.site, now)].append(c)
    site_ids = {c.site_id for c in contracts}
    cursors = dict(RollupCursor.objects.filter(site_id__in=site_ids).values_list("site_id", "rolled_until"))
    intervals = dict(TelemetryPolicy.objects.filter(site_id__in=site_ids).values_list("site_id", "poll_interval_s"))
    for (first, after), group in by_month.items():
        days = (
            MachineDay.objects.filter(contract_id__in=[c.pk for c in group], day__gte=first, day__lt=after)
            .filter(windows_curtailed__gt=0)
            .order_by()
            .values("contract_id", "machine_id")
            .annotate(s=Sum(F("windows_curtailed") * F("window_s"), output_field=IntegerField()),
                      n=Sum("windows_curtailed"))
        )  # fmt: skip
        for r in days:
            out[r["contract_id"]][r["machine_id"]][0] += r["s"]
            out[r["contract_id"]][r["machine_id"]][1] += r["n"]
        tails = []
        for c in group:
            rolled = cursors.get(c.site_id)
            since = max(rolled, first) if rolled else first
            if since < after:
                until = min(_local_start(c.site, after), now)
                tails.append(Q(contract_id=c.pk, start__gte=_local_start(c.site, since), start__lt=until))
        if not tails:
            continue
        tail = tails[0]
        for q in tails[1:]:
            tail |= q
        windows = (
            Window.objects.filter(tail, machine_status=MachineStatus.CURTAILED)
            .order_by()
            .values("contract_id", "machine_id", "site_id")
            .annotate(n=Count("pk"))
        )
        for w in windows:
            out[w["contract_id"]][w["machine_id"]][0] += w["n"] * intervals.get(w["site_id"], 300)
            out[w["contract_id"]][w["machine_id"]][1] += w["n"]
    return out


def contracts_month(contracts: Iterable[Contract], now: dt.datetime | None = None) -> list[ContractCurtailment]:
    """Each contract's curtailment this month (a fixed number of queries for any number of
    contracts). The contracts need their site (select_related)."""
    now = _now(now)
    contracts = list(contracts)
    if not contracts:
        return []
    ids = [c.pk for c in contracts]
    terms = {t.contract_id: t for t in ContractTerms.objects.filter(contract_id__in=ids)}
    currencies = dict(
        SiteBilling.objects.filter(site_id__in={c.site_id for c in contracts}).values_list("site_id", "currency")
    )
    seconds = _curtailed_seconds(contracts, now)
    machine_ids = {m for per in seconds.values() for m in per}
    nameplates = dict(
        MachineModel.objects.filter(machines__pk__in=machine_ids).values_list("machines__pk", "nameplate_power_w")
    )
    earliest = min(_local_start(c.site, local_month(c.site, now)[0]) for c in contracts)
    readings: dict[int, tuple[float | None, float | None]] = {}
    stops = (
        EventMachine.objects.filter(contract_id__in=ids, event__starts_at__gte=earliest)
        .order_by("machine_id", "event__starts_at", "pk")
        .values_list("machine_id", "power_before_w", "power_after_w")
    )
    for machine_id, before, after in stops:  # the latest stop's readings win
        readings[machine_id] = (before, after)
    touched = dict(
        EventMachine.objects.filter(contract_id__in=ids, event__starts_at__gte=earliest)
        .order_by()
        .values("contract_id")
        .annotate(n=Count("event_id", distinct=True))
        .values_list("contract_id", "n")
    )
    upcoming = upcoming_events(contracts, now)
    out = []
    for c in contracts:
        t = terms.get(c.pk)
        machines = [
            MachineCurtailed(mid, s, n, nameplates.get(mid, 0), *readings.get(mid, (None, None)))
            for mid, (s, n) in sorted(seconds.get(c.pk, {}).items())
        ]
        effect = invoice_effect(rules_terms(c, t), machines, currencies.get(c.site_id, "USD"))
        out.append(
            ContractCurtailment(c, t, local_month(c.site, now)[0], machines, effect, touched.get(c.pk, 0),
                                upcoming.get(c.pk, []))
        )  # fmt: skip
    return out


def upcoming_events(contracts: Sequence[Contract], now: dt.datetime | None = None) -> dict[int, list[Event]]:
    """contract id → the open events at its site that may curtail it: scheduled or on, not
    ended, and the contract curtailable (one query; a not-curtailable contract gets none)."""
    now = _now(now)
    curtailable = set(
        ContractTerms.objects.filter(contract__in=[c.pk for c in contracts], curtailment_priority__isnull=False)
        .values_list("contract_id", flat=True)
    )  # fmt: skip
    sites = {c.site_id for c in contracts if c.pk in curtailable}
    events = (
        Event.objects.filter(site_id__in=sites, status__in=OPEN)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .select_related("program")
        .order_by("starts_at", "pk")
    )
    by_site: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        by_site[e.site_id].append(e)
    return {c.pk: by_site[c.site_id] for c in contracts if c.pk in curtailable}


def contract_events(contract: Contract) -> QuerySet[Event]:
    """Events that touched the contract's machines, newest first, each annotated with the
    contract's own machines in it and their expected shed (`mine_n`, `mine_shed_w`) — never
    another tenant's. To be paginated."""
    mine = EventMachine.objects.filter(event_id=OuterRef("pk"), contract_id=contract.pk).order_by().values("event_id")
    return (
        Event.objects.filter(pk__in=EventMachine.objects.filter(contract_id=contract.pk).values("event_id"))
        .select_related("program")
        .annotate(
            mine_n=Subquery(mine.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()),
            mine_shed_w=Subquery(mine.annotate(w=Sum("expected_shed_w")).values("w")[:1], output_field=IntegerField()),
            mine_responded_n=Subquery(
                mine.exclude(status__in=NOT_RESPONDING).annotate(n=Count("pk")).values("n")[:1],
                output_field=IntegerField(),
            ),
        )
        .order_by("-starts_at", "-pk")
    )


def last_sample_at(event_ids: Iterable[int]) -> dict[int, dt.datetime]:
    rows = EventSample.objects.filter(event_id__in=list(event_ids)).order_by().values("event_id").annotate(a=Max("at"))
    return {r["event_id"]: r["a"] for r in rows}
