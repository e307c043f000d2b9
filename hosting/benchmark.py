"""`make bench`: datasets at the scale of the 2021 migration, and the measurements on them.

Seeding bypasses the ledger's per-row locks for speed (COPY into PostgreSQL) but builds
only what the ledger would accept; `seed` checks every site is within budget and every
circuit within its 80 % limit before it returns.
"""

import asyncio
import datetime as dt
import logging
import os
import random
import resource
import statistics
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from capacity import ledger, planner, power
from capacity.layout import HallLayout
from capacity.models import Circuit, EnergizationPhase, PowerFeed, Rack, Reservation, Site
from hosting import catalog
from hosting.models import ApiToken, Contract, Machine, MachineModel, Membership, SitePricing, Tenant, TermDiscount

MACHINE = "antminer-s19-pro"  # 3,250 W: what fills the floors
PUE = Decimal("1.05")


@dataclass(frozen=True)
class Scale:
    """A dataset: `sites` alike, each with `mw_now` energized and `mw_later` in six months."""

    name: str
    sites: int
    mw_now: Decimal
    mw_later: Decimal
    hall: HallLayout
    machines_per_site: int
    contracts_per_site: int
    future_per_site: int
    holds_per_site: int
    quote_machines: tuple[int, int]  # requests fit at every site, so both datasets price 20 options


SCALES = {
    # The Siberian operator's problem: 20 sites, 2.5 GW, 760 k slots, 500 k machines live.
    "large": Scale("large", 20, Decimal(100), Decimal(25), HallLayout(feeds=54), 25_000, 125, 50, 20, (50, 2_000)),
    # The same 20 sites at 10 MW in all: the same quote work per site, 230 × less data.
    "small": Scale(
        "small", 20, Decimal("0.4"), Decimal("0.1"), HallLayout(feeds=1, racks_per_feed=5), 100, 5, 2, 1, (1, 8)
    ),
}


def _copy(table: str, columns: list[str], rows) -> None:
    """COPY rows into a table: PostgreSQL's bulk path, ~10× an INSERT batch."""
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed(scale: Scale, log=print) -> dict:
    """Build the dataset from an empty, migrated database; return what was built."""
    started = time.perf_counter()
    rng = random.Random(2021)
    today = timezone.localdate()
    catalog.load(MachineModel)
    model = MachineModel.objects.get(slug=MACHINE)
    watts = model.nameplate_power_w
    TermDiscount.objects.bulk_create(
        [TermDiscount(min_term_months=m, discount_pct=Decimal(p)) for m, p in ((12, 3), (24, 6), (36, 10))]
    )
    with transaction.atomic():
        sites = Site.objects.bulk_create(
            Site(slug=f"{scale.name}-{i:02d}", name=f"Site {i:02d}", country="RU", region="Siberia", pue=PUE)
            for i in range(scale.sites)
        )
        EnergizationPhase.objects.bulk_create(
            phase
            for site in sites
            for phase in (
                EnergizationPhase(
                    site=site, name="Phase 1", energized_on=today - relativedelta(years=2), mw=scale.mw_now
                ),
                EnergizationPhase(
                    site=site, name="Phase 2", energized_on=today + relativedelta(months=6), mw=scale.mw_later
                ),
            )
        )
        SitePricing.objects.bulk_create(
            SitePricing(site=s, list_rate_usd_per_kwh=Decimal("0.045") + Decimal(i) / 10_000, setup_usd_per_machine=50)
            for i, s in enumerate(sites)
        )
        _build_floors(sites, scale.hall)
    log(f"  floors: {time.perf_counter() - started:.0f} s")

    tenants = Tenant.objects.bulk_create(
        Tenant(name=f"Tenant {i:03d}", slug=f"tenant-{i:03d}", contact_email=f"t{i}@example.com") for i in range(200)
    )
    for site in sites:
        _book_site(site, scale, tenants, model, rng, today)
    _place_machines(sites, scale, model)
    log(f"  bookings and machines: {time.perf_counter() - started:.0f} s")

    user = get_user_model().objects.create_user("bench", "bench@example.com")
    Membership.objects.create(tenant=tenants[0], user=user)
    _, key = ApiToken.issue(user, "benchmark")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    _verify(sites, today)
    return {
        "scale": scale.name,
        "sites": len(sites),
        "gw": float(scale.sites * (scale.mw_now + scale.mw_later) / 1000),
        "slots": _count("capacity_slot"),
        "machines": _count("hosting_machine"),
        "reservations": _count("capacity_reservation"),
        "token": key,
        "watts": watts,
        "quote_machines": scale.quote_machines,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own table names
        return cursor.fetchone()[0]


def _build_floors(sites: list[Site], hall: HallLayout) -> None:
    feeds = PowerFeed.objects.bulk_create(
        PowerFeed(site=site, name=f"T{f + 1:03d}", rating_kva=hall.feed_kva)
        for site in sites
        for f in range(hall.feeds)
    )
    racks: list[Rack] = []
    circuits: list[Circuit] = []
    for n, feed in enumerate(feeds):
        row = f"{chr(ord('A') + n % hall.feeds % 26)}{n % hall.feeds // 26 + 1}"
        for r in range(hall.racks_per_feed):
            racks.append(Rack(site_id=feed.site_id, feed=feed, row=row, name=f"{row}-R{r + 1:02d}"))
            circuits.extend(
                Circuit(
                    feed=feed,
                    name=f"{row}-R{r + 1:02d}-C{c + 1}",
                    voltage_v=hall.voltage_v,
                    phases=hall.phases,
                    breaker_amps=hall.breaker_amps,
                    power_factor=hall.power_factor,
                )
                for c in range(hall.circuits_per_rack)
            )
    Rack.objects.bulk_create(racks, batch_size=10_000)
    Circuit.objects.bulk_create(circuits, batch_size=10_000)
    per_rack = hall.circuits_per_rack
    _copy(
        "capacity_slot",
        ["rack_id", "position", "circuit_id", "allocated_w"],
        (
            (rack.pk, c * hall.slots_per_circuit + s + 1, circuits[i * per_rack + c].pk, 0)
            for i, rack in enumerate(racks)
            for c in range(per_rack)
            for s in range(hall.slots_per_circuit)
        ),
    )


def _book_site(site, scale, tenants, model, rng, today) -> None:
    """Contracts that cover today (their machines are live), later ones after phase 2, holds."""
    it_now = scale.mw_now * 1000 / PUE
    it_later = (scale.mw_now + scale.mw_later) * 1000 / PUE
    per_contract = scale.machines_per_site // scale.contracts_per_site
    current_kw = Decimal(per_contract * model.nameplate_power_w) / 1000
    committed_now = current_kw * scale.contracts_per_site
    future_kw = (Decimal("0.8") * (it_later - committed_now) / scale.future_per_site).quantize(Decimal("0.001"))
    hold_kw = (Decimal("0.5") * (it_now - committed_now) / scale.holds_per_site).quantize(Decimal("0.001"))
    phase_2 = today + relativedelta(months=6)
    bookings = []  # (kW, starts, ends, is a current contract with live machines)
    for _ in range(scale.contracts_per_site):
        starts = today - relativedelta(months=rng.randint(1, 24), days=rng.randint(0, 27))
        ends = today + relativedelta(months=rng.randint(1, 36), days=rng.randint(1, 27))
        bookings.append((current_kw, starts, ends, True))
    for _ in range(scale.future_per_site):
        starts = phase_2 + relativedelta(days=rng.randint(0, 180))
        bookings.append((future_kw, starts, starts + relativedelta(months=rng.choice((12, 24, 36))), False))
    expires = timezone.now() + dt.timedelta(days=3)
    holds = [
        Reservation(
            site=site,
            it_kw=hold_kw,
            starts_on=today + dt.timedelta(days=30),
            ends_on=today + relativedelta(months=13),
            kind="hold",
            expires_at=expires,
            reference=f"quote:bench-{site.pk}-{i}",
        )
        for i in range(scale.holds_per_site)
    ]
    firm = Reservation.objects.bulk_create(
        Reservation(site=site, it_kw=kw, starts_on=s, ends_on=e, kind="firm", reference=f"bench:{site.pk}:{n}")
        for n, (kw, s, e, _) in enumerate(bookings)
    )
    Reservation.objects.bulk_create(holds)
    contracts = Contract.objects.bulk_create(
        Contract(
            tenant=tenants[(site.pk * 7 + n) % len(tenants)],
            site=site,
            it_kw=r.it_kw,
            machine_count=max(1, int(r.it_kw * 1000 // model.nameplate_power_w)),
            rate_usd_per_kwh=Decimal("0.045"),
            starts_on=r.starts_on,
            ends_on=r.ends_on,
            status="active" if booking[3] else "signed",
            reservation=r,
        )
        for n, (r, booking) in enumerate(zip(firm, bookings, strict=True))
    )
    held = []
    for contract in contracts:
        assert contract.reservation is not None
        contract.reservation.reference = contract.reference
        held.append(contract.reservation)
    Reservation.objects.bulk_update(held, ["reference"], batch_size=5000)
    site.bench_current = [c for c, b in zip(contracts, bookings, strict=True) if b[3]]


def _mac(n: int) -> str:
    return ":".join(f"{b:02x}" for b in (2, (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255, 0))


def _place_machines(sites, scale, model) -> None:
    """Live machines in the first slots of each site, their slots marked occupied."""
    per_contract = scale.machines_per_site // scale.contracts_per_site
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM hosting_machine")
        next_id = cursor.fetchone()[0] + 1
    now = timezone.now()
    rows: list[tuple] = []
    for site in sites:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.id FROM capacity_slot s JOIN capacity_rack r ON r.id = s.rack_id "
                "WHERE r.site_id = %s ORDER BY r.name, s.position LIMIT %s",
                [site.pk, per_contract * scale.contracts_per_site],
            )
            slot_ids = [r[0] for r in cursor.fetchall()]
        for n, slot_id in enumerate(slot_ids):
            contract = site.bench_current[n // per_contract]
            mid = next_id + len(rows)
            rows.append(
                (
                    mid,
                    contract.tenant_id,
                    contract.pk,
                    model.pk,
                    f"B{mid:09d}",
                    _mac(mid),
                    slot_id,
                    "live",
                    now,
                    now,
                    "",
                )
            )
    _copy(
        "hosting_machine",
        [
            "id",
            "tenant_id",
            "contract_id",
            "model_id",
            "serial",
            "mac",
            "slot_id",
            "status",
            "status_changed_at",
            "created_at",
            "notes",
        ],
        rows,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('hosting_machine', 'id'), (SELECT max(id) FROM hosting_machine))"
        )
    _occupy_slots(model.nameplate_power_w)


def _occupy_slots(watts: int) -> None:
    """Mark every machine's slot occupied by it, drawing `watts` (datasets of one model)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE capacity_slot s SET occupant = 'machine:' || m.id, allocated_w = %s "
            "FROM hosting_machine m WHERE m.slot_id = s.id",
            [watts],
        )


def _verify(sites, today) -> None:
    """What the ledger would have refused must not be in the dataset."""
    books = ledger.load_books(sites)
    over = [s.slug for s in sites if books[s.pk].over_budget(today - relativedelta(years=2)) is not None]
    assert not over, f"seeded over budget: {over}"
    floors = planner.load_floors(sites)
    for floor in floors.values():
        assert all(c.load_w <= c.usable_w for c in floor.circuits), "a seeded circuit is over its 80 % limit"
        assert all(room >= 0 for room in floor.feed_room_va.values()), "a seeded feed is over its rating"


# --------------------------------------------------------------------------------------
# The planner at the scale of the demand: 1.5 M machines
# --------------------------------------------------------------------------------------


def measure_planner(log=print) -> dict:
    """Read the large dataset's floors from PostgreSQL; then plan 1.5 M machines of
    1,650 W (2.5 GW ÷ 1.5 M — the 2021 demand) onto a greenfield floor built for them
    (1.69 M slots on 52,800 circuits), in memory: `plan` is pure."""
    sites = list(Site.objects.all())
    started = time.perf_counter()
    floors = planner.load_floors(sites)
    load_s = time.perf_counter() - started
    circuits = sum(len(f.circuits) for f in floors.values())

    hall = HallLayout(feeds=1, racks_per_feed=24, slots_per_circuit=32)  # 1,536 slots a feed
    usable = power.circuit_usable_w(hall.voltage_v, hall.breaker_amps, hall.phases, hall.power_factor)
    feeds = 1_100  # 2.75 MVA of transformers for 2.5 GW of IT at PF 0.95, with a little spare
    rooms = [
        planner.CircuitRoom(f * 100 + c, f, usable, 0, hall.power_factor, hall.phases, 32, 32)
        for f in range(feeds)
        for c in range(hall.racks_per_feed * hall.circuits_per_rack)
    ]
    greenfield = planner.Floor(0, rooms, {f: Decimal(hall.feed_kva * 1000) for f in range(feeds)})
    demand = 1_500_000
    started = time.perf_counter()
    plan = planner.plan(greenfield, 1_650, demand)
    plan_s = time.perf_counter() - started
    log(f"  planned {plan.placed:,} of {demand:,} on {len(rooms):,} circuits in {plan_s:.1f} s")
    return {
        "floors_load_s": round(load_s, 2),
        "floors_circuits": circuits,
        "plan_machines": demand,
        "plan_placed": plan.placed,
        "plan_circuits": len(rooms),
        "plan_slots": len(rooms) * 32,
        "plan_s": round(plan_s, 2),
    }


# --------------------------------------------------------------------------------------
# Load: concurrent clients against a running server
# --------------------------------------------------------------------------------------


@dataclass
class Latencies:
    samples_ms: list[float]
    errors: int = 0
    options: int = 0  # quote options returned in all, to show both datasets did the same work

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict:
        return {
            "n": len(self.samples_ms),
            "errors": self.errors,
            "options_per_quote": round(self.options / len(self.samples_ms), 1),
            "p50_ms": round(statistics.median(self.samples_ms), 2),
            "p99_ms": round(self.pct(0.99), 2),
            "mean_ms": round(statistics.fmean(self.samples_ms), 2),
        }


def quote_body(rng: random.Random, models: list[str], machines: tuple[int, int]) -> dict:
    return {
        "machine_model": rng.choice(models),
        "quantity": rng.randint(*machines),
        "start_on": (timezone.localdate() + dt.timedelta(days=rng.randint(1, 90))).isoformat(),
        "term_months": rng.choice((12, 24, 36)),
    }


def hammer(
    base_url: str, token: str, kind: str, requests: int, clients: int, seed: int = 0, machines=(50, 2_000)
) -> Latencies:
    """`requests` calls of one kind from `clients` threads, each with a keep-alive connection."""
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    models = [str(m["slug"]) for m in catalog.MACHINE_MODELS]
    latencies = Latencies([])
    lock = threading.Lock()
    per_client = requests // clients

    def run(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            for _ in range(per_client):
                started = time.perf_counter()
                options = 0
                if kind == "quote":
                    response = http.post("/api/v1/quotes/", json=quote_body(rng, models, machines))
                    ok = response.status_code == 201
                    options = len(response.json().get("options", [])) if ok else 0
                else:
                    response = http.get("/api/v1/machine-models/antminer-s19/")
                    ok = response.status_code == 200
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.samples_ms.append(elapsed)
                    latencies.errors += not ok
                    latencies.options += options

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


# --------------------------------------------------------------------------------------
# Commissioning at scale: the pipeline against a bare pyasic sweep of the same fleet
# --------------------------------------------------------------------------------------

COMMISSIONING_MODEL = "antminer-s19-pro"  # stock Antminer: the costly one to read (RPC + web UI)


def fleet_ip(index: int) -> str:
    """A loopback address per emulated miner, never .0 or .255."""
    return f"127.{100 + index // 62_500}.{(index % 62_500) // 250}.{index % 250 + 1}"


def seed_commissioning(n: int, log=print) -> dict:
    """n racked S19 Pros at one site, each with an IP and a metered outlet (a PDU per
    circuit), and a zero-length burn-in: one sample each."""
    from capacity.layout import build_hall
    from capacity.models import Pdu, Slot
    from hosting.models import CommissioningPolicy

    started = time.perf_counter()
    catalog.load(MachineModel)
    model = MachineModel.objects.get(slug=COMMISSIONING_MODEL)
    site = Site.objects.create(slug="bench", name="Bench site", country="RU", pue=PUE)
    EnergizationPhase.objects.create(site=site, name="P1", energized_on=timezone.localdate(), mw=Decimal(n * 4 / 1000))
    hall = HallLayout(feeds=-(-n // HallLayout(feeds=1).slot_count))
    build_hall(site, hall)
    CommissioningPolicy.objects.create(
        site=site, burn_in_s=0, sample_interval_s=0, probe_timeout_s=10, max_concurrent_tests=n,
        max_tests_per_circuit=16, commission_when_racked=False,
    )  # fmt: skip
    circuits = list(Circuit.objects.filter(feed__site=site).order_by("pk"))
    pdus = Pdu.objects.bulk_create(
        Pdu(site=site, name=f"PDU {c.name}", host=f"127.200.{i // 250}.{i % 250 + 1}", port=16100)
        for i, c in enumerate(circuits)
    )
    for circuit, pdu in zip(circuits, pdus, strict=True):
        circuit.pdu = pdu
    Circuit.objects.bulk_update(circuits, ["pdu"], batch_size=5000)
    tenant = Tenant.objects.create(name="Bench tenant", slug="bench", contact_email="bench@example.com")
    contract = Contract.objects.create(
        tenant=tenant, site=site, it_kw=Decimal(n * model.nameplate_power_w) / 1000, machine_count=n,
        rate_usd_per_kwh=Decimal("0.045"), starts_on=timezone.localdate(), status="draft",
    )  # fmt: skip
    slots = list(
        Slot.objects.filter(rack__site=site).order_by("circuit_id", "position").values_list("pk", "circuit_id")[:n]
    )
    now = timezone.now()
    outlet_of: dict[int, int] = {}
    seen: dict[int, int] = {}
    for slot_id, circuit_id in slots:
        seen[circuit_id] = seen.get(circuit_id, 0) + 1
        outlet_of[slot_id] = seen[circuit_id]
    _copy(
        "hosting_machine",
        ["tenant_id", "contract_id", "model_id", "serial", "mac", "ip", "slot_id", "status", "status_changed_at",
         "created_at", "notes"],
        ((tenant.pk, contract.pk, model.pk, f"C{i:08d}", _mac(i + 1), fleet_ip(i), slot_id, "racked", now, now, "")
         for i, (slot_id, _) in enumerate(slots)),
    )  # fmt: skip
    _occupy_slots(model.nameplate_power_w)
    Slot.objects.bulk_update(
        [Slot(pk=slot_id, outlet=outlet) for slot_id, outlet in outlet_of.items()], ["outlet"], batch_size=5000
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    log(f"  commissioning dataset: {n:,} racked {model.name}s on {len(circuits):,} circuits / PDUs")
    return {"machines": n, "pdus": len(pdus), "seconds": round(time.perf_counter() - started, 1)}


def reset_commissioning() -> None:
    """Back to every machine racked, no self-test yet: each measurement starts the same."""
    from hosting.models import MachineEvent, SelfTestRun

    SelfTestRun.objects.all().delete()
    MachineEvent.objects.all().delete()
    Machine.objects.update(status="racked")


def measure_commissioning(log=print) -> dict:
    """Commission every machine (one batch) and wait for the last verdict; the workers are
    already consuming the site's queue."""
    from hosting.commissioning import runs
    from hosting.models import SelfTestRun

    reset_commissioning()
    machines = list(Machine.objects.all())
    started = timezone.now()
    batch = runs.start_batch(machines, label="bench")
    total = len(machines)
    while True:
        progress = runs.progress(batch.runs.all())
        if progress["passed"] + progress["failed"] == total:
            break
        time.sleep(0.5)
    last = SelfTestRun.objects.order_by("-finished_at").values_list("finished_at", flat=True).first()
    seconds = ((last or timezone.now()) - started).total_seconds()
    log(f"  commissioned {total:,} in {seconds:.1f} s: {progress['passed']:,} passed, {progress['failed']:,} failed")
    return {"machines": total, "seconds": round(seconds, 2), "passed": progress["passed"], "failed": progress["failed"]}


async def _sweep(ips: list[str], concurrency: int) -> int:
    import pyasic

    gate = asyncio.Semaphore(concurrency)

    async def one(ip: str) -> bool:
        async with gate:
            miner = await pyasic.get_miner(ip)
            if miner is None:
                return False
            data = await asyncio.wait_for(miner.get_data(), 30)
            return data.hashrate is not None

    return sum(await asyncio.gather(*(one(ip) for ip in ips)))


def sweep(ips: list[str], concurrency: int) -> dict:
    """A bare pyasic sweep: detect each miner and read all it has (get_data), on uvloop."""
    import uvloop

    started = time.perf_counter()
    ok = uvloop.run(_sweep(ips, concurrency))
    return {"miners": len(ips), "ok": ok, "seconds": round(time.perf_counter() - started, 2)}


async def _bare_curtail(ips: list[str], concurrency: int, barrier) -> dict:
    import pyasic

    gate = asyncio.Semaphore(concurrency)
    first = await pyasic.get_miner(ips[0])  # the fleet is one model: the rest are built of its class
    miners = [type(first)(ip) for ip in ips] if first is not None else []
    passes: dict = {"miners": len(ips), "built": len(miners)}
    for name, method in (("stop", "stop_mining"), ("resume", "resume_mining")):
        barrier(name)
        started, cpu = time.time(), time.process_time()
        answers = await asyncio.gather(
            *(_gated(gate, asyncio.wait_for(getattr(m, method)(), 30)) for m in miners), return_exceptions=True
        )
        passes[name] = {
            "started": started,
            "ended": time.time(),
            "cpu_s": round(time.process_time() - cpu, 3),
            "ok": sum(a is True for a in answers),
        }
    return passes


async def _gated(gate: asyncio.Semaphore, awaitable):
    async with gate:
        return await awaitable


def bare_curtail(ips: list[str], concurrency: int, shard: int, shards: int, barrier_dir: str) -> dict:
    """A bare pyasic curtailment, the calibration of Haven's: these miners' objects built first
    (not timed: Haven's worker knows their classes from telemetry; the bench fleet is one model,
    so the first is detected and the rest built of its class), then every one told
    `stop_mining`, then every one `resume_mining`, `concurrency` at a time, on uvloop — no
    database, no queue, no verification. The shards start each pass together (a file barrier);
    each pass's wall clock and this process's CPU are returned."""
    import pathlib

    import uvloop

    folder = pathlib.Path(barrier_dir)

    def barrier(name: str, timeout_s: float = 600) -> None:
        (folder / f"{name}-{shard}").touch()
        deadline = time.monotonic() + timeout_s
        while len(list(folder.glob(f"{name}-*"))) < shards:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the other shards did not reach {name}")
            time.sleep(0.01)

    return uvloop.run(_bare_curtail(ips, concurrency, barrier))


# --------------------------------------------------------------------------------------
# Telemetry: one poll of the commissioning dataset's fleet, every machine live
# --------------------------------------------------------------------------------------

POLL_INTERVAL_S = 300


def reset_poll() -> dict:
    """No windows or polls; the machines back to racked, as the commissioning part expects."""
    from hosting.telemetry.models import CircuitWindow, PollRun, Window

    Window.objects.all().delete()
    CircuitWindow.objects.all().delete()
    PollRun.objects.all().delete()
    Machine.objects.update(status="racked")
    return {}


def measure_poll(nth: int, log=print, timeout_s: float = 900) -> dict:
    """The `nth` poll of the bench site (0: the first, which resets and builds the miner
    objects), dispatched as the beat does; until the on-site worker has written every window."""
    from hosting.telemetry import services
    from hosting.telemetry.models import PollRun, TelemetryPolicy

    site = Site.objects.get(slug="bench")
    if nth == 0:
        reset_poll()
        Machine.objects.update(status="live")
        TelemetryPolicy.objects.update_or_create(site=site, defaults={"poll_interval_s": POLL_INTERVAL_S})
    now = timezone.now() + dt.timedelta(seconds=nth * POLL_INTERVAL_S)  # the nth interval from here
    started = timezone.now()
    services.schedule_polls(now=now)
    start = services.window_start(now, POLL_INTERVAL_S)
    deadline = time.monotonic() + timeout_s
    run = PollRun.objects.get(site=site, window_start=start)
    while run.finished_at is None and time.monotonic() < deadline:
        time.sleep(0.2)
        run.refresh_from_db()
    finished = run.finished_at or timezone.now()
    seconds = (finished - started).total_seconds()
    log(f"  poll {nth}: {run.windows_written:,} windows, {run.answered:,} answered in {seconds:.1f} s")
    return {
        "machines": run.machines,
        "windows": run.windows_written,
        "answered": run.answered,
        "seconds": round(seconds, 2),
        "finished": run.finished_at is not None,
    }


# --------------------------------------------------------------------------------------
# CPU use over a phase (Linux /proc): is the machine working or waiting?
# --------------------------------------------------------------------------------------

_TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user … steal; guest time is already counted in user
    return (total - idle) * _TICK_S, total * _TICK_S


def processes_cpu_s(groups: dict[str, int], titles: dict[str, str]) -> dict[str, dict[int, float]]:
    """CPU seconds used so far, by process id, by the processes of each process group (with
    their reaped children) and by those whose command line contains each title (e.g. the
    PostgreSQL backends of one database), by name."""
    used: dict[str, dict[int, float]] = {name: {} for name in [*groups, *titles]}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                command = f.read().decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        seconds = sum(int(x) for x in rest[11:15]) * _TICK_S  # utime stime cutime cstime
        for name, group in groups.items():
            if int(rest[2]) == group:
                used[name][int(entry.name)] = seconds
        for name, title in titles.items():
            if title in command:
                used[name][int(entry.name)] = seconds
    return used


def children_cpu_s() -> float:
    """CPU seconds of this process's children that have been waited for (getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU use during a `with` block: the machine's busy share of all its cores, and the
    share taken by each named process group, by processes with a given title and by the
    children waited for meanwhile. What is left is everyone else's (other work on the host)."""

    def __init__(self, groups: dict[str, int], children: str | None = None, titles: dict[str, str] | None = None):
        self.groups = groups
        self.titles = titles or {}
        self.children = children
        self.figures: dict[str, float] = {}

    def _read(self) -> tuple[tuple[float, float], dict[str, dict[int, float]], float]:
        return machine_cpu_s(), processes_cpu_s(self.groups, self.titles), children_cpu_s()

    def __enter__(self) -> "CpuMeter":
        self._start = self._read()
        return self

    def __exit__(self, *exc) -> None:
        (busy0, total0), groups0, children0 = self._start
        (busy1, total1), groups1, children1 = self._read()
        total = max(total1 - total0, 1e-9)
        self.figures = {"busy_pct": round(100 * (busy1 - busy0) / total, 1)}
        for name in [*self.groups, *self.titles]:
            # Processes alive at the end, less what they had used at the start (a process that
            # ended meanwhile, unreaped by us, is not counted: keep connections open).
            spent = sum(s - groups0[name].get(pid, 0.0) for pid, s in groups1[name].items())
            self.figures[f"{name}_pct"] = round(100 * spent / total, 1)
        if self.children:
            self.figures[f"{self.children}_pct"] = round(100 * (children1 - children0) / total, 1)

    def summary(self) -> str:
        """E.g. "CPU 97 % busy (emulator 40 %, sweep 55 %, other 2 %)": shares of all cores."""
        mine = {k.removesuffix("_pct"): v for k, v in self.figures.items() if k != "busy_pct"}
        other = max(0.0, self.figures["busy_pct"] - sum(mine.values()))
        parts = [f"{name} {share:.0f} %" for name, share in {**mine, "other": other}.items()]
        return f"CPU {self.figures['busy_pct']:.0f} % busy ({', '.join(parts)})"


# --------------------------------------------------------------------------------------
# Telemetry storage: ingest through the real write path, reads from the rollups, bytes on disk
# --------------------------------------------------------------------------------------

TELEMETRY_CONTRACT_MACHINES = 1_000
TELEMETRY_INTERVAL_S = 300


def seed_telemetry_store(n: int, log=print) -> dict:
    """n live S19 Pros at one site (the commissioning dataset's floor), in contracts of
    1,000 machines, with telemetry accounting and rollups started 30 days ago."""
    from hosting.telemetry.services_store import policy_for

    seed_commissioning(n, log=log)
    site = Site.objects.get(slug="bench")
    first = Contract.objects.get()
    ids = list(Machine.objects.order_by("pk").values_list("pk", flat=True))
    for k, start in enumerate(range(0, len(ids), TELEMETRY_CONTRACT_MACHINES)):
        chunk = ids[start : start + TELEMETRY_CONTRACT_MACHINES]
        contract = first
        if k:
            contract = Contract.objects.create(
                tenant=first.tenant, site=site, it_kw=first.it_kw * len(chunk) / n, machine_count=len(chunk),
                rate_usd_per_kwh=first.rate_usd_per_kwh, starts_on=first.starts_on, status="draft",
            )  # fmt: skip
        Machine.objects.filter(pk__in=chunk).update(
            contract=contract, status="live", status_changed_at=timezone.now() - dt.timedelta(days=60)
        )
    Contract.objects.filter(pk=first.pk).update(machine_count=min(n, TELEMETRY_CONTRACT_MACHINES))
    policy = policy_for(site)
    policy.poll_interval_s = TELEMETRY_INTERVAL_S
    policy.save(update_fields=["poll_interval_s"])
    return {"machines": n, "contracts": Contract.objects.count(), "circuits": Circuit.objects.count()}


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _seed_days(site: Site, days: list[dt.date], log=print) -> int:
    """Windows for every machine and circuit window for every circuit, every 5 minutes of
    `days`, made by generate_series inside PostgreSQL (1 % of windows unreachable)."""
    from hosting.telemetry.services_store import ensure_partitions

    rows = 0
    for day in days:
        ensure_partitions(0, now=_utc_midnight(day))
        start, end = _utc_midnight(day), _utc_midnight(day + dt.timedelta(days=1))
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO telemetry_window (start, machine_id, site_id, contract_id, machine_status, reachable,
                    hashing, hashrate_ths, hashrate_pct, boards_seen, chips_seen, chip_temp_max_c, board_temp_max_c,
                    inlet_temp_c, fans_ok, power_w, power_source, uptime_s, errors)
                SELECT ts, m.id, %s, m.contract_id, 'live', up, up,
                       CASE WHEN up THEN 104 + random() * 8 ELSE 0 END, CASE WHEN up THEN 95 + random() * 7 END,
                       CASE WHEN up THEN 3 END, CASE WHEN up THEN 342 END, CASE WHEN up THEN 65 + random() * 15 END,
                       CASE WHEN up THEN 60 + random() * 10 END, 20 + random() * 8, up,
                       CASE WHEN up THEN 3150 + random() * 200 END, CASE WHEN up THEN 'pdu' ELSE '' END,
                       CASE WHEN up THEN 86400 END, ''
                FROM generate_series(%s::timestamptz, %s::timestamptz - interval '5 minutes', interval '5 minutes') ts
                CROSS JOIN LATERAL (
                    SELECT id, contract_id, (id * 7919 + extract(epoch FROM ts)::bigint / 300) %% 100 <> 0 AS up
                    FROM hosting_machine
                ) m
                """,
                [site.pk, start, end],
            )
            rows += cursor.rowcount
            cursor.execute(
                """
                INSERT INTO telemetry_circuitwindow (start, circuit_id, site_id, measured_w, outlets_read)
                SELECT ts, c.id, %s, 16 * 3200 + random() * 1000, 16
                FROM generate_series(%s::timestamptz, %s::timestamptz - interval '5 minutes', interval '5 minutes') ts
                CROSS JOIN capacity_circuit c
                """,
                [site.pk, start, end],
            )
        log(f"    {day}: {rows:,} windows so far")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE telemetry_window")
        cursor.execute("ANALYZE telemetry_circuitwindow")
    return rows


def _roll_up(site: Site, start: dt.datetime, end: dt.datetime) -> dict:
    """The real rollup services over [start, end): accounting closed there, hours then days."""
    from hosting.telemetry.models import TelemetryPolicy
    from hosting.telemetry.services_store import roll_up_days, roll_up_hours

    TelemetryPolicy.objects.filter(site=site).update(
        filled_until=end, hours_rolled_until=start, days_rolled_until=start.date()
    )
    started = time.perf_counter()
    hours = roll_up_hours(site, end)
    hours_s = time.perf_counter() - started
    started = time.perf_counter()
    days = roll_up_days(site, end)
    with connection.cursor() as cursor:
        for table in ("telemetry_machinehour", "telemetry_contractday", "telemetry_circuitday"):
            cursor.execute(f"ANALYZE {table}")
    return {"machine_hours": hours, "hours_s": round(hours_s, 1), "days": days,
            "days_s": round(time.perf_counter() - started, 1)}  # fmt: skip


def _ingest(site: Site, start: dt.datetime, intervals: int) -> dict:
    """Windows per second through storage.write_windows, one call per site interval (as
    the poller writes), then the same windows again (every one an upsert of a late poll),
    then accounting's unknowns for an interval nobody polled."""
    from hosting.telemetry import storage
    from hosting.telemetry.models import Window
    from hosting.telemetry.services_store import ensure_partitions, fill_unknown, policy_for

    ensure_partitions(1, now=start)
    machines = list(Machine.objects.order_by("pk").values_list("pk", "contract_id"))
    rng = random.Random(9)
    step = dt.timedelta(seconds=TELEMETRY_INTERVAL_S)

    def batch(n: int, late: bool = False) -> list[Window]:
        at = start + n * step
        return [
            Window(start=at, machine_id=pk, site_id=site.pk, contract_id=contract_id, machine_status="live",
                   reachable=True, hashing=True, hashrate_ths=104 + rng.random() * 8, hashrate_pct=98.0,
                   boards_seen=3, chips_seen=342, chip_temp_max_c=70.0 + late, board_temp_max_c=62.0,
                   inlet_temp_c=24.0, fans_ok=True, power_w=3200 + rng.random() * 100, power_source="pdu",
                   uptime_s=86_400, errors="")
            for pk, contract_id in machines
        ]  # fmt: skip

    batches = [batch(n) for n in range(intervals)]
    started = time.perf_counter()
    written = sum(storage.write_windows(b) for b in batches)
    insert_s = time.perf_counter() - started
    late = [batch(n, late=True) for n in range(intervals)]
    started = time.perf_counter()
    upserted = sum(storage.write_windows(b) for b in late)
    upsert_s = time.perf_counter() - started
    policy = policy_for(site)
    gap = start + intervals * step
    type(policy).objects.filter(pk=policy.pk).update(filled_until=gap)
    started = time.perf_counter()
    unknowns = fill_unknown(site, gap + step, grace_s=0)
    unknown_s = time.perf_counter() - started
    return {
        "windows": written,
        "insert_per_s": round(written / insert_s),
        "upsert_per_s": round(upserted / upsert_s),
        "unknown_per_s": round(unknowns / unknown_s) if unknowns else 0,
        "unknowns": unknowns,
    }


def _latency(samples: int, query) -> dict:
    rng = random.Random(3)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        query(rng)
        times.append((time.perf_counter() - started) * 1000)
    figures = Latencies(times).summary()
    return {k: figures[k] for k in ("n", "p50_ms", "p99_ms", "mean_ms")}


def _reads(now: dt.datetime, samples: int) -> dict:
    """The reads billing and the charts do: a contract's month from ContractDay, each of its
    1,000 machines' month from MachineHour, a machine's 30-day chart (hourly) and 24 h (5-min)."""
    from django.db.models import Count, Sum

    from hosting.telemetry.models import ContractDay, MachineHour, Window

    contracts = list(Contract.objects.values_list("pk", flat=True))
    machines = list(Machine.objects.values_list("pk", flat=True))
    month_ago = now - dt.timedelta(days=30)

    def contract_month(rng):
        figures = ContractDay.objects.filter(
            contract_id=rng.choice(contracts), day__gte=month_ago.date(), day__lt=now.date()
        ).aggregate(
            windows=Sum("windows"), unknown=Sum("windows_unknown"), reachable=Sum("windows_reachable"),
            hashing=Sum("windows_hashing"), energy_wh=Sum("energy_wh"), days=Count("pk"),
        )  # fmt: skip
        assert figures["windows"], "no contract-days to read"

    def contract_machines_month(rng):
        rows = list(
            MachineHour.objects.filter(contract_id=rng.choice(contracts), hour__gte=month_ago, hour__lt=now)
            .values("machine_id")
            .annotate(windows=Sum("windows"), reachable=Sum("windows_reachable"), energy_wh=Sum("energy_wh"))
        )
        assert len(rows) >= 900

    def machine_chart_30d(rng):
        rows = list(
            MachineHour.objects.filter(machine_id=rng.choice(machines), hour__gte=month_ago, hour__lt=now)
            .order_by("hour")
            .values_list("hour", "hashrate_ths_avg", "power_w_avg", "chip_temp_max_c")
        )
        assert rows

    def machine_chart_24h(rng):
        rows = list(
            Window.objects.filter(machine_id=rng.choice(machines), start__gte=now - dt.timedelta(days=1), start__lt=now)
            .order_by("start")
            .values_list("start", "hashrate_ths", "power_w", "chip_temp_max_c")
        )
        assert rows

    return {
        "contract_month": _latency(samples, contract_month),
        "machine_chart_30d": _latency(samples, machine_chart_30d),
        "machine_chart_24h_5m": _latency(samples, machine_chart_24h),
        "contract_machines_month": _latency(max(10, samples // 20), contract_machines_month),
    }


def _bytes(machine_days: int) -> dict:
    """pg_total_relation_size over each parent's partitions, per machine-day."""
    from hosting.telemetry import partitions
    from hosting.telemetry.services_store import partitions_of

    def total(table: str) -> int:
        spec = next((p for p in partitions.PARTITIONED if p.table == table), None)
        names = partitions_of(spec) if spec else [table]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COALESCE(sum(pg_total_relation_size(t::regclass)), 0) FROM unnest(%s::text[]) t", [names]
            )
            return int(cursor.fetchone()[0])

    raw = total("telemetry_window")
    circuits = total("telemetry_circuitwindow")
    hours = total("telemetry_machinehour")
    days = total("telemetry_contractday") + total("telemetry_circuitday")
    return {
        "raw_bytes": raw,
        "raw_per_machine_day": round(raw / machine_days),
        "circuit_raw_per_machine_day": round(circuits / machine_days),
        "rolled_bytes": hours + days,
        "rolled_per_machine_day": round((hours + days) / machine_days),
    }


def measure_telemetry_store(n: int, days: int, samples: int = 500, log=print) -> dict:
    """Ingest, reads and bytes with 1 day of windows for n machines, then with `days`."""
    site = Site.objects.get(slug="bench")
    today = timezone.now().astimezone(dt.UTC).date()
    now = _utc_midnight(today)
    results: dict = {"machines": n, "load_before": [round(x, 2) for x in os.getloadavg()], "phases": {}}
    seeded: list[dt.date] = []
    for phase_days in sorted({1, days}):
        new = [
            today - dt.timedelta(days=d) for d in range(phase_days, 0, -1) if today - dt.timedelta(days=d) not in seeded
        ]
        log(f"  telemetry store: seeding {len(new)} day(s) of windows for {n:,} machines …")
        started = time.perf_counter()
        rows = _seed_days(site, new, log=log)
        seed_s = time.perf_counter() - started
        seeded += new
        log(f"  telemetry store: {rows:,} windows in {seed_s:.0f} s; rolling up …")
        rolled = _roll_up(site, _utc_midnight(min(new)), _utc_midnight(max(new) + dt.timedelta(days=1)))
        log(f"  telemetry store: rolled {rolled['machine_hours']:,} machine-hours in {rolled['hours_s']} s; ingest …")
        ingest = _ingest(site, now + dt.timedelta(hours=len(results["phases"])), intervals=6)
        log(f"  telemetry store: ingest {ingest['insert_per_s']:,}/s, upsert {ingest['upsert_per_s']:,}/s; reads …")
        reads = _reads(now, samples)
        results["phases"][f"{phase_days}d"] = {
            "days": len(seeded), "windows_seeded": rows, "seed_s": round(seed_s, 1),
            "seed_per_s": round(rows / seed_s), "rollup": rolled,
            "rollup_windows_per_s": round(rows / rolled["hours_s"]) if rolled["hours_s"] else None,
            "ingest": ingest, "reads": reads, "bytes": _bytes(n * len(seeded)),
        }  # fmt: skip
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


# --------------------------------------------------------------------------------------
# Curtailment: from start_event to the last emulated miner's outlet under its sleep draw
# --------------------------------------------------------------------------------------


def reset_curtailment() -> dict:
    """No events; the machines back to racked, as the commissioning part expects."""
    from hosting.curtailment.models import Event

    Event.objects.all().delete()  # their machines, commands and samples go with them
    reset_poll()
    return {}


def measure_curtailment(log=print, timeout_s: float = 600) -> dict:
    """Curtail every machine of the bench site (one event, no ramp: as fast as the site can
    shed), until every outlet is verified under its sleep draw; then end it, until every miner
    has answered its resume. The machines are live and polled once (their pyasic classes known)."""
    from hosting.billing.models import ContractTerms
    from hosting.curtailment import services
    from hosting.curtailment.models import Command, CurtailmentStatus, Event, EventMachine

    site = Site.objects.get(slug="bench")
    for contract in Contract.objects.filter(site=site):
        ContractTerms.objects.update_or_create(contract=contract, defaults={"curtailment_priority": 1})
    Event.objects.all().delete()
    now = timezone.now()
    event = Event.objects.create(
        site=site, target_mw=Decimal(1000), starts_at=now, deadline_at=now + dt.timedelta(seconds=60), created_at=now
    )
    started = timezone.now()
    services.start_event(event.pk)
    start_event_s = round((timezone.now() - started).total_seconds(), 2)  # choosing, and the commands queued
    chosen = EventMachine.objects.filter(event=event)
    total = chosen.count()
    done = (CurtailmentStatus.VERIFIED, CurtailmentStatus.STILL_DRAWING, CurtailmentStatus.FAILED)
    deadline = time.monotonic() + timeout_s
    beat = time.monotonic() + settings.CURTAILMENT_VERIFY_S
    while chosen.filter(status__in=done).count() < total and time.monotonic() < deadline:
        time.sleep(0.5)
        if time.monotonic() >= beat:  # the beat, as in service: every active event's outlets read again
            services.check_events()
            beat += settings.CURTAILMENT_VERIFY_S
    verified = chosen.filter(status=CurtailmentStatus.VERIFIED)
    verified_n = verified.count()
    moments = [v for v in verified.values_list("verified_at", flat=True) if v is not None]
    off_s = (max(moments, default=timezone.now()) - started).total_seconds()
    verified_by_s = _progress(moments, started)
    log(f"  curtailed {total:,}: {verified_n:,} verified off by their outlets in {off_s:.1f} s")
    from django.db.models import Count

    statuses = dict(chosen.order_by().values_list("status").annotate(n=Count("pk")))
    errors = list(chosen.exclude(last_error="").values_list("last_error", flat=True)[:3])
    if verified_n < total:
        log(f"  not verified: {statuses} {errors}")

    ended = timezone.now()
    services.end_event(event.pk)
    end_event_s = round((timezone.now() - ended).total_seconds(), 2)
    deadline = time.monotonic() + timeout_s
    while chosen.filter(status=CurtailmentStatus.RESUMED).count() < total and time.monotonic() < deadline:
        time.sleep(0.5)
    answered = Command.objects.filter(event_machine__event=event, command="resume_mining", ok=True)
    last_resume = answered.order_by("-answered_at").values_list("answered_at", flat=True).first()
    on_s = ((last_resume or timezone.now()) - ended).total_seconds()
    resumed = chosen.filter(status=CurtailmentStatus.RESUMED).count()
    log(f"  resumed {resumed:,} in {on_s:.1f} s")
    stops = _command_figures(Command.objects.filter(event_machine__event=event, command="stop_mining"), started)
    resumes = _command_figures(answered, ended)
    stops["verify_lag"] = _verify_lag(chosen)
    stops["start_event_s"], resumes["end_event_s"] = start_event_s, end_event_s
    stops["verified_by_s"] = verified_by_s
    log(f"  stops: {stops}")
    log(f"  resumes: {resumes}")
    return {
        "machines": total,
        "verified": verified_n,
        "off_s": round(off_s, 2),
        "resumed": resumed,
        "on_s": round(on_s, 2),
        "statuses": statuses,
        "stops": stops,
        "resumes": resumes,
    }


def _verify_lag(chosen) -> dict:
    """Each verified machine's time from its stop's answer to its outlet seen under its sleep
    draw (p50, p99, max s): what verification adds after the commands."""
    from django.db.models import Max, Q

    rows = chosen.filter(verified_at__isnull=False).annotate(
        answered=Max("commands__answered_at", filter=Q(commands__ok=True, commands__command="stop_mining"))
    )
    lags = [(v - a).total_seconds() for v, a in rows.values_list("verified_at", "answered") if a is not None]
    return _spread(lags, {"p50": 0.5, "p99": 0.99}, "max", digits=2)


def _spread(values, quantiles: dict[str, float], top: str, digits: int) -> dict:
    """These figures' quantiles (`{"p50": 0.5, …}`) and their largest (as `top`), rounded; {} for none."""
    ordered = sorted(values)
    if not ordered:
        return {}
    at = {q: ordered[min(len(ordered) - 1, int(f * len(ordered)))] for q, f in quantiles.items()}
    return {q: round(v, digits) for q, v in (at | {top: ordered[-1]}).items()}


def _command_figures(commands, since: dt.datetime) -> dict:
    """Where a command phase's time went: how many were sent, when the last was answered
    (seconds after `since`), and each answered command's own time (p50, p99, max)."""
    rows = list(commands.filter(answered_at__isnull=False).values_list("sent_at", "answered_at"))
    own = sorted((answered - sent).total_seconds() for sent, answered in rows)
    if not own:
        return {"sent": commands.count(), "answered": 0}

    def pct(q: float) -> float:
        return round(own[min(len(own) - 1, int(q * len(own)))], 3)

    return {
        "sent": commands.count(),
        "answered": len(own),
        "first_sent_s": round((min(s for s, _ in rows) - since).total_seconds(), 2),
        "last_answered_s": round((max(a for _, a in rows) - since).total_seconds(), 2),
        "own_p50_s": pct(0.5),
        "own_p99_s": pct(0.99),
        "own_max_s": round(own[-1], 3),
        "answered_by_s": _progress([a for _, a in rows], since),
    }


def _progress(moments: list[dt.datetime], since: dt.datetime) -> dict:
    """When (seconds after `since`) a half, nine tenths and all of these moments had come."""
    return _spread(((m - since).total_seconds() for m in moments), {"p50": 0.5, "p90": 0.9}, "all", digits=1)
