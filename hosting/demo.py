"""The demo world: three sites modelled on the 2021 migration, tenants, contracts, machines.

Every booking goes through the ledger and every status change through the services, so
the demo data obeys the same rules as real data. Idempotent: a site, tenant or login that
exists is left as it is (logins get their demo password back).
"""

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from capacity import ledger
from capacity.layout import HallLayout, build_hall
from capacity.models import Circuit, EnergizationPhase, Pdu, Site, Slot
from hosting import quotes, services, shipping
from hosting.billing import services as billing
from hosting.billing.models import ContractTerms, FlatFee, Levy, MachineDay, Maintenance, RollupCursor, SiteBilling
from hosting.carriers import Carrier
from hosting.commissioning import checks, fleet, pipeline, runs
from hosting.lifecycle import ContractStatus
from hosting.lifecycle import MachineStatus as S
from hosting.models import (
    CommissioningPolicy,
    Contract,
    Machine,
    MachineEvent,
    MachineModel,
    Membership,
    Quote,
    SelfTestRun,
    Shipment,
    SitePricing,
    Tenant,
    TermDiscount,
)
from hosting.readings import Board, Identity, Reading

DEMO_PASSWORD = "haven-demo-2021"  # noqa: S105 - printed on purpose; demo only


@dataclass(frozen=True)
class DemoSite:
    slug: str
    name: str
    country: str
    region: str
    timezone: str
    cooling: str
    pue: Decimal
    max_ambient_c: Decimal
    phases: list[tuple[str, int, int]]  # (name, months from today, MW)
    hall: HallLayout  # the first phase's floor
    receiving: dict[str, str] = field(default_factory=dict)  # ship-to address and receiving instructions


SITES = [
    DemoSite(
        slug="tx-rockdale",
        name="Texas · Rockdale",
        country="US",
        region="Texas (ERCOT)",
        timezone="America/Chicago",
        cooling="air",
        pue=Decimal("1.08"),
        max_ambient_c=Decimal("45"),
        phases=[("Phase 1", -20, 100), ("Phase 2", 4, 150), ("Phase 3", 12, 200)],
        # 480 V 3-phase, 80 A: 50.5 kW usable per circuit, 15 machines; 40 feeds ≈ 26 k slots.
        hall=HallLayout(feeds=40, slots_per_circuit=15, voltage_v=480, breaker_amps=80),
        receiving={
            "ship_to_address": "Haven Rockdale Hosting LLC\nAttn: Receiving, Building 3\n3500 FM 1786\n"
            "Rockdale, TX 76567\nUnited States",
            "receiving_hours": "Mon–Fri 07:00–15:30 Central time; closed on US federal holidays",
            "receiving_dock": "Gate 2, docks 4–6: 53 ft dry vans, no lift-gate needed; book a slot 48 h ahead",
            "customs_notes": "Domestic freight: none. Imports clear at the port of entry (Houston or Laredo) before "
            "delivery; the tenant is the importer of record. Mark each pallet with the contract number and "
            "enclose the packing list.",
            "receiving_contact": "Receiving desk · +1 512 555 0142 · receiving.rockdale@haven.example",
        },
    ),
    DemoSite(
        slug="ru-bratsk",
        name="Siberia · Bratsk",
        country="RU",
        region="Irkutsk Oblast",
        timezone="Asia/Irkutsk",
        cooling="hydro",
        pue=Decimal("1.04"),
        max_ambient_c=Decimal("35"),
        phases=[("Phase 1", -6, 125), ("Phase 2", 6, 375), ("Phase 3", 12, 750), ("Phase 4", 24, 1250)],
        # 400 V 3-phase, 100 A: 52.6 kW usable per circuit, 16 machines; 52 feeds ≈ 36.6 k slots.
        hall=HallLayout(feeds=52, voltage_v=400),
        receiving={
            "ship_to_address": "ООО «Хейвен Братск» (Haven Bratsk LLC)\nул. Промышленная, 14, стр. 2\n"
            "Братск, Иркутская обл., 665708\nRussia",
            "receiving_hours": "Mon–Sat 08:00–20:00 Irkutsk time (UTC+8)",
            "receiving_dock": "Warehouse B, ramp 1: 20 ft and 40 ft containers and curtain-side trucks; "
            "call the day before",
            "customs_notes": "Cleared at Irkutsk customs before delivery (EAEU declaration, HS 8471 50); the "
            "consignee is the tenant's importing entity. Send the commercial invoice and the packing list, every "
            "serial on it, before dispatch.",
            "receiving_contact": "Warehouse (склад) · +7 3953 55 01 20 · receiving.bratsk@haven.example",
        },
    ),
    DemoSite(
        slug="kz-ekibastuz",
        name="Kazakhstan · Ekibastuz",
        country="KZ",
        region="Pavlodar Region",
        timezone="Asia/Almaty",
        cooling="air",
        pue=Decimal("1.10"),
        max_ambient_c=Decimal("42"),
        # The grid upgrade comes past the planning horizon: a big request waits for it.
        phases=[("Phase 1", -14, 50), ("Grid upgrade", 40, 50)],
        # 15 a circuit: the M30S++ draws 3,472 W, and 16 would pass the 80 % line.
        hall=HallLayout(feeds=20, slots_per_circuit=15, voltage_v=400),
        receiving={
            "ship_to_address": "Haven Ekibastuz LLP\nIndustrial Zone, Building 7\nEkibastuz, Pavlodar Region "
            "141200\nKazakhstan",
            "receiving_hours": "Mon–Fri 09:00–18:00 local time (UTC+5)",
            "receiving_dock": "North gate, dock 2: trucks up to 20 t; book through the contact below",
            "customs_notes": "Cleared at Pavlodar customs through a licensed broker before delivery (EAEU "
            "declaration, HS 8471 50); the commercial invoice lists every serial and MAC.",
            "receiving_contact": "Site logistics · +7 7187 55 03 30 · receiving.ekibastuz@haven.example",
        },
    ),
]


@dataclass(frozen=True)
class DemoContract:
    site: str
    it_kw: Decimal
    model: str
    starts_months: int  # from today
    term_months: int | None
    rate_usd_per_kwh: Decimal
    status: str  # draft | signed | active
    machines: dict[str, int] = field(default_factory=dict)  # status → how many machines


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    email: str
    contracts: list[DemoContract]


# Live and failed ones predate Haven (imported); the racked ones are commissioned by the
# emulated fleet when `make demo` starts.
FLOOR_MIX: dict[str, int] = {
    S.LIVE: 18,
    S.RACKED: 7,
    S.FAILED: 2,
    S.RECEIVED: 4,
    S.IN_TRANSIT: 5,
    S.ANNOUNCED: 4,
    S.RMA: 1,
}

TENANTS = [
    DemoTenant(
        "northern-hash",
        "Northern Hash Ltd",
        "ops@northernhash.example",
        [
            DemoContract(
                "ru-bratsk", Decimal("90000"), "antminer-s19j-pro", -5, 36, Decimal("0.0450"), "active", FLOOR_MIX
            ),
            DemoContract("ru-bratsk", Decimal("250000"), "antminer-s19-xp", 7, 36, Decimal("0.0430"), "signed"),
        ],
    ),
    DemoTenant(
        "lone-star",
        "Lone Star Mining Co",
        "noc@lonestarmining.example",
        [
            DemoContract(
                "tx-rockdale", Decimal("60000"), "antminer-s19-pro", -18, 36, Decimal("0.0520"), "active", FLOOR_MIX
            ),
            DemoContract("tx-rockdale", Decimal("25000"), "antminer-s21", 5, 24, Decimal("0.0550"), "draft"),
        ],
    ),
    DemoTenant(
        "steppe-digital",
        "Steppe Digital",
        "hello@steppedigital.example",
        [
            DemoContract(
                "kz-ekibastuz",
                Decimal("43000"),
                "whatsminer-m30s-plus-plus",
                -12,
                24,
                Decimal("0.0480"),
                "active",
                FLOOR_MIX,
            ),
        ],
    ),
]


def _months(today: dt.date, months: int) -> dt.date:
    return today + relativedelta(months=months)


def seed_sites(today: dt.date, log) -> list[Site]:
    sites = []
    for spec in SITES:
        site = Site.objects.filter(slug=spec.slug).first()
        if site is not None:
            _receiving(site, spec)
            log(f"site {spec.slug}: exists, left as it is")
            sites.append(site)
            continue
        with transaction.atomic():
            site = Site(
                slug=spec.slug,
                name=spec.name,
                country=spec.country,
                region=spec.region,
                timezone=spec.timezone,
                cooling=spec.cooling,
                pue=spec.pue,
                max_ambient_c=spec.max_ambient_c,
            )
            ledger.save_site(site)
            _receiving(site, spec)
            for name, months, mw in spec.phases:
                ledger.save_phase(
                    EnergizationPhase(site=site, name=name, energized_on=_months(today, months), mw=Decimal(mw))
                )
            slots = build_hall(site, spec.hall)
        log(f"site {spec.slug}: {sum(p[2] for p in spec.phases):,} MW in {len(spec.phases)} phases, {slots:,} slots")
        sites.append(site)
    return sites


def _receiving(site: Site, spec: DemoSite) -> None:
    """The site's ship-to address and receiving instructions, where staff have not set them."""
    blank = {name: value for name, value in spec.receiving.items() if not getattr(site, name)}
    if blank:
        Site.objects.filter(pk=site.pk).update(**blank)  # not a ledger change: no version moves


def seed_users(log) -> dict[str, object]:
    User = get_user_model()
    staff, _ = User.objects.get_or_create(
        username="staff", defaults={"email": "staff@haven.example", "is_staff": True, "is_superuser": True}
    )
    tenant_user, _ = User.objects.get_or_create(username="tenant", defaults={"email": "tenant@northernhash.example"})
    for user in (staff, tenant_user):
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    log("logins: staff / tenant, password " + DEMO_PASSWORD)
    return {"staff": staff, "tenant": tenant_user}


def seed_tenants(today: dt.date, staff, tenant_user, log) -> None:
    now = timezone.now()
    for spec in TENANTS:
        if Tenant.objects.filter(slug=spec.slug).exists():
            log(f"tenant {spec.slug}: exists, left as it is")
            continue
        with transaction.atomic():
            tenant = Tenant.objects.create(slug=spec.slug, name=spec.name, contact_email=spec.email)
            for cspec in spec.contracts:
                _seed_contract(tenant, cspec, today, now, staff)
        log(f"tenant {spec.slug}: {len(spec.contracts)} contract(s)")
    northern = Tenant.objects.get(slug="northern-hash")
    Membership.objects.get_or_create(tenant=northern, user=tenant_user)


def _seed_contract(tenant, spec: DemoContract, today, now, staff) -> None:
    site = Site.objects.get(slug=spec.site)
    model = MachineModel.objects.get(slug=spec.model)
    starts_on = _months(today, spec.starts_months)
    contract = Contract.objects.create(
        tenant=tenant,
        site=site,
        it_kw=spec.it_kw,
        machine_count=int(spec.it_kw * 1000 // model.nameplate_power_w),
        rate_usd_per_kwh=spec.rate_usd_per_kwh,
        starts_on=starts_on,
        ends_on=None if spec.term_months is None else _months(starts_on, spec.term_months),
        created_at=now,
    )
    if spec.status in ("signed", "active"):
        contract = services.sign_contract(contract, by=staff, now=now)
    if spec.status == "active":
        contract = services.activate_contract(contract)
    _seed_machines(contract, model, spec.machines, staff, now)


# The usual route from announced; each demo machine walks it as far as its status.
ROUTE: list[str] = [S.IN_TRANSIT, S.RECEIVED, S.RACKED, S.TESTING]
AFTER_TESTING: dict[str, list[str]] = {S.LIVE: [S.LIVE], S.FAILED: [S.FAILED], S.RMA: [S.FAILED, S.RMA]}


def route_to(target: str) -> list[str]:
    if target == S.ANNOUNCED:
        return []
    if target in ROUTE:
        return ROUTE[: ROUTE.index(target) + 1]
    return [*ROUTE, *AFTER_TESTING[target]]


def _seed_machines(contract, model, mix: dict[str, int], staff, now) -> None:
    wanted = sum(mix.values())
    if not wanted:
        return
    free_slots = iter(
        Slot.objects.filter(rack__site=contract.site, occupant__isnull=True).order_by("rack__name", "position")[:wanted]
    )
    number = 0
    for status, count in mix.items():
        for _ in range(count):
            number += 1
            machine = Machine.objects.create(
                tenant=contract.tenant,
                contract=contract,
                model=model,
                serial=f"{contract.tenant.slug[:3].upper()}{contract.pk:03d}-{number:05d}",
                mac=f"02:{contract.pk % 256:02x}:00:00:{number // 256:02x}:{number % 256:02x}",
                created_at=now - dt.timedelta(days=10),
            )
            _walk(machine, route_to(status), free_slots, staff, now)


def _walk(machine, steps: list[str], free_slots, staff, now) -> None:
    """Move a new machine along `steps`, a day apart, ending now."""
    when = now - dt.timedelta(days=len(steps))
    for step in steps:
        when += dt.timedelta(days=1)
        if step == S.RACKED:
            machine = services.rack_machine(machine, next(free_slots), by=staff, now=when, commission=False)
        else:
            reasons: dict[str, str] = {S.FAILED: "hashboard 2 not detected", S.RMA: "sent to vendor for repair"}
            reason = reasons.get(step, "")
            machine = services.transition(machine, step, by=staff, reason=reason, now=when)


# Each active contract's machines on their way, as the packing lists their tenant uploaded.
SHIPMENTS = {  # tenant → (reference, carrier, tracking number) of the in-transit list
    "northern-hash": ("NH-2026-11-BRK-07", Carrier.DHL, "JD014600006281230017"),
    "lone-star": ("LSM PO 4471", Carrier.UPS, "1Z999AA10123456784"),
    "steppe-digital": ("SD/EKB/26-031", Carrier.OTHER, "TLK-KZ-2026-0187"),
}


def seed_shipments(log) -> None:
    """Each active contract's in-transit machines on one shipment (with its carrier's
    tracking), its announced ones on another (no tracking yet); Northern Hash cancelled one
    announced machine that failed burn-in at its warehouse."""
    made = 0
    for slug, (reference, carrier, tracking) in SHIPMENTS.items():
        contract = Contract.objects.filter(tenant__slug=slug, status=ContractStatus.ACTIVE).first()
        if contract is None or contract.shipments.exists():
            continue
        with transaction.atomic():
            for status, ref, how, number in (
                (S.IN_TRANSIT, reference, carrier, tracking),
                (S.ANNOUNCED, f"{reference}-B", "", ""),
            ):
                machines = contract.machines.filter(status=status, shipment__isnull=True)
                shipment = Shipment.objects.create(
                    contract=contract, tenant=contract.tenant, reference=ref, carrier=how, tracking_number=number,
                    created_at=timezone.now() - dt.timedelta(days=2 if number else 1),
                )  # fmt: skip
                machines.update(shipment=shipment)
                made += 1
            if slug == "northern-hash":
                doa = contract.machines.filter(status=S.ANNOUNCED).order_by("serial").last()
                if doa is not None:
                    shipping.cancel_machine(doa, reason="failed burn-in at our warehouse; not shipping it")
    log(f"shipments: {made} packing lists (in transit with tracking, announced), one machine cancelled")


def seed_holds(today: dt.date, log) -> None:
    """A live quote hold and an expired one at Siberia, to show how holds count."""
    site = Site.objects.get(slug="ru-bratsk")
    now = timezone.now()
    for reference, expires_at in (
        ("quote:demo-live", now + dt.timedelta(hours=48)),
        ("quote:demo-expired", now - dt.timedelta(hours=1)),
    ):
        if site.reservations.filter(reference=reference).exists():
            continue
        created = now - dt.timedelta(hours=72) if expires_at < now else now
        ledger.reserve(
            site,
            it_kw=Decimal("5000"),
            starts_on=_months(today, 1),
            ends_on=_months(today, 25),
            kind="hold",
            expires_at=expires_at,
            reference=reference,
            now=created,
        )
    log("holds: one live, one expired at ru-bratsk")


# List rate USD/kWh and setup USD per machine, per site; discounts by committed term.
PRICING = {
    "tx-rockdale": (Decimal("0.05500"), Decimal("35.00")),
    "ru-bratsk": (Decimal("0.04500"), Decimal("60.00")),
    "kz-ekibastuz": (Decimal("0.05000"), Decimal("45.00")),
}
TERM_DISCOUNTS = [(12, Decimal("3")), (24, Decimal("6")), (36, Decimal("10"))]


def seed_pricing(log) -> None:
    for slug, (rate, setup) in PRICING.items():
        SitePricing.objects.get_or_create(
            site=Site.objects.get(slug=slug),
            defaults={"list_rate_usd_per_kwh": rate, "setup_usd_per_machine": setup},
        )
    for months, pct in TERM_DISCOUNTS:
        TermDiscount.objects.get_or_create(min_term_months=months, defaults={"discount_pct": pct})
    log("pricing: list rates per site, term discounts at 12/24/36 months")


def seed_quotes(today: dt.date, log) -> None:
    """A priced enquiry and one the full Kazakh site has to waitlist."""
    if Quote.objects.exists():
        return
    s19 = MachineModel.objects.get(slug="antminer-s19j-pro")
    kazakh = Site.objects.get(slug="kz-ekibastuz")
    quotes.request_quote(
        Quote(
            contact_email="miner@example.com",
            machine_model=s19,
            quantity=300,
            it_kw=quotes.requested_it_kw(s19, 300),
            start_on=today + dt.timedelta(days=30),
            term_months=24,
        )
    )
    quotes.request_quote(
        Quote(
            contact_email="steppe-expansion@example.com",
            it_kw=Decimal("48000"),  # more than Kazakhstan carries until its grid upgrade: waits for it
            site=kazakh,
            start_on=today + dt.timedelta(days=14),
            term_months=12,
        )
    )
    log("quotes: one priced, one waitlisted (Kazakhstan is full)")


def seed_commissioning(log) -> None:
    """Seconds-long self-tests, IPs for the machines on the floor and metered PDUs for their
    circuits, so that the emulated fleet (manage.py emulate_fleet) stands behind them.
    Machines not yet racked get no IP: as on a real site, they get one when racked (staff give
    it in the rack action, or the site's DHCP lease list is imported)."""
    for i, site in enumerate(Site.objects.order_by("slug")):
        CommissioningPolicy.objects.get_or_create(
            site=site, defaults={"burn_in_s": 20, "sample_interval_s": 5, "probe_timeout_s": 5}
        )
        machines = list(
            Machine.objects.filter(contract__site=site, status__in=fleet.ON_THE_FLOOR, ip__isnull=True)
            .select_related("slot")
            .order_by("pk")
        )
        first = Machine.objects.filter(contract__site=site, ip__isnull=False).count() + 1
        for n, machine in enumerate(machines, start=first):
            machine.ip = f"127.{10 + i}.{n >> 8}.{n & 255}"
            machine.save(update_fields=["ip"])
            slot = machine.slot
            if slot is None:  # on the floor means in a slot (a constraint); nothing to wire otherwise
                continue
            circuit = Circuit.objects.get(pk=slot.circuit_id)  # fresh: an earlier turn may have wired it
            if circuit.pdu_id is None:
                number = Pdu.objects.filter(site=site).count() + 1
                host = f"127.{60 + i}.{number >> 8}.{number & 255}"
                circuit.pdu = Pdu.objects.create(site=site, name=f"PDU {circuit.name}", host=host, port=16100)
                circuit.save(update_fields=["pdu"])
            slot.outlet = slot.position - min(s.position for s in circuit.slots.all()) + 1
            slot.save(update_fields=["outlet"])
    log(
        f"commissioning: policies, {Machine.objects.filter(ip__isnull=False).count()} machines on the network, "
        f"{Pdu.objects.count()} metered PDUs"
    )


# --------------------------------------------------------------------------------------
# Evidence: the self-test behind every live and failed machine
# --------------------------------------------------------------------------------------

FIRMWARE = {"bitmain": "Antminer BHB42601 (2021-06)", "microbt": "20210322.22.REL"}


def burn_in_readings(expected: checks.Expected, started: dt.datetime, *, samples: int, interval_s: float,
                     serial: str, board_missing: int | None = None) -> list[Reading]:  # fmt: skip
    """What a burn-in of a healthy machine of this model reads, sample by sample: hashrate
    within a percent or two of nominal, chips in the 60s–70s °C, fans near 5,000 RPM, the
    outlet near nameplate. `board_missing` takes one hashboard away (pyasic lists it as not
    present), as a dead board looks. Seeded by serial: the same machine reads the same."""
    rng = random.Random(serial)  # noqa: S311 - demo figures, not secrets
    per_board = float(expected.nominal_hashrate_ths) / expected.hashboards
    reports_watts = expected.make == runs.PYASIC_MAKE["microbt"]  # stock Antminer firmware does not
    readings = []
    for i in range(samples):
        boards = tuple(
            Board(slot, None, None, None, None, present=False)
            if slot == board_missing
            else Board(
                slot,
                round(per_board * rng.uniform(0.985, 1.015), 2),
                expected.chips_per_board,
                round(rng.uniform(63, 76), 1),
                round(rng.uniform(52, 62), 1),
            )
            for slot in range(expected.hashboards)
        )
        hashrate = round(sum(b.hashrate_ths or 0 for b in boards), 2)
        draw = expected.nameplate_w * rng.uniform(0.97, 1.03) * (len([b for b in boards if b.present]) / len(boards))
        readings.append(
            Reading(
                taken_at=started + dt.timedelta(seconds=i * interval_s),
                reachable=True,
                hashrate_ths=hashrate,
                boards=boards,
                fans_rpm=tuple(rng.randrange(4800, 5600, 10) for _ in range(expected.fans)),
                power_w=round(draw) if reports_watts else None,
                outlet_w=round(draw),
                inlet_temp_c=round(rng.uniform(22, 29), 1),
            )
        )
    return readings


def seed_evidence(log) -> None:
    """A finished self-test, with its four checks and its burn-in samples, for every live,
    failed or RMA machine that has none: the demo's history predates Haven, and nothing may
    be live without evidence. The verdict is the checks' own (hosting.commissioning.checks)
    on readings a healthy machine gives — or, for a failed one, with its dead hashboard —
    stored by the pipeline's own `runs.finish`."""
    passed, failed = SelfTestRun.Status.PASSED, SelfTestRun.Status.FAILED
    judged: dict[str, str] = {S.LIVE: passed, S.FAILED: failed, S.RMA: failed}
    machines = list(
        Machine.objects.filter(status__in=list(judged))
        .exclude(self_tests__status__in=[passed, failed])
        .select_related("model", "contract__site", "slot__circuit__pdu")
        .order_by("pk")
    )
    if not machines:
        return
    tested_at = dict(
        MachineEvent.objects.filter(machine__in=machines, to_status=S.TESTING).order_by("at")
        .values_list("machine_id", "at")
    )  # fmt: skip
    token = uuid.uuid4().hex
    results = []
    with transaction.atomic():
        for machine in machines:
            started = tested_at.get(machine.pk, machine.status_changed_at - dt.timedelta(hours=1))
            policy = CommissioningPolicy.for_site(machine.contract.site)
            run = SelfTestRun.objects.create(
                machine=machine, status=SelfTestRun.Status.RUNNING, token=token, attempt=1,
                created_at=started, dispatched_at=started, started_at=started, heartbeat_at=started,
            )  # fmt: skip
            expected = runs.plan_for(run, policy).expected
            samples = int(policy.burn_in_s // max(policy.sample_interval_s, Decimal(1))) + 1
            readings = burn_in_readings(
                expected, started, samples=samples, interval_s=float(policy.sample_interval_s),
                serial=machine.serial, board_missing=None if judged[machine.status] == passed else 2,
            )  # fmt: skip
            seen = Identity(True, expected.make, expected.model, FIRMWARE.get(machine.model.vendor),
                                   expected.mac, None, machine.serial.lower())  # fmt: skip
            outcomes = [
                checks.identity(expected, seen),
                checks.power(expected, readings),
                checks.hashing(expected, readings),
                checks.thermal(expected, readings),
            ]
            results.append(pipeline.Result(run.pk, outcomes, readings))
        finished_at = max(r.readings[-1].taken_at for r in results)
        stored = runs.finish(results, token, now=finished_at)
    verdicts = {r.status for r in stored}
    log(f"evidence: {len(stored)} finished self-tests with checks and samples ({', '.join(sorted(verdicts))})")


def seed_telemetry(log) -> None:
    """Every site polled every TELEMETRY_DEMO_INTERVAL_S (15 s) rather than 5 minutes, so the
    demo's charts fill in within minutes of `make demo`."""
    from hosting.telemetry.models import TelemetryPolicy

    interval_s = settings.TELEMETRY_DEMO_INTERVAL_S
    for site in Site.objects.order_by("slug"):
        TelemetryPolicy.objects.update_or_create(site=site, defaults={"poll_interval_s": interval_s})
    log(f"telemetry: every live machine polled every {interval_s} s")


# --------------------------------------------------------------------------------------
# Billing: terms, a levy, maintenance, and last month invoiced
# --------------------------------------------------------------------------------------

# One contract per billing mode (the active ones): Siberia metered, Texas nameplate, Kazakhstan flat.
DEMO_TERMS = {
    "northern-hash": {"billing_mode": "metered", "sla_target_pct": Decimal("95"), "curtailment_priority": 2,
                      "max_curtailed_hours_month": 40},
    # Texas, in ERCOT: curtailable first, 60 hours a month, half the demand-response revenue.
    "lone-star": {"billing_mode": "nameplate", "sla_target_pct": Decimal("97"), "payment_terms_days": 30,
                  "curtailment_priority": 1, "max_curtailed_hours_month": 60, "dr_share_pct": Decimal("50")},
    "steppe-digital": {"billing_mode": "flat", "setup_fee_per_machine": Decimal(0)},
}  # fmt: skip
FLAT_FEE_PER_MONTH = Decimal("185.00")  # a WhatsMiner M30S++ at Ekibastuz, per month
# Kazakhstan's tax on mining power: 1 tenge/kWh from 2022; from 2023 1–25 tenge by the price
# of the power paid (the cheaper the power, the higher the tax). Modelled, not legal advice.
KZ_LEVY_TIERS = [
    {"price_up_to": "10", "per_kwh": "25"},
    {"price_up_to": "15", "per_kwh": "18"},
    {"price_up_to": "20", "per_kwh": "15"},
    {"price_up_to": "25", "per_kwh": "10"},
    {"price_up_to": "30", "per_kwh": "5"},
]
KZT_TO_USD = Decimal("0.00195")
HISTORY_WINDOW_S = 300  # the history predates the demo's 15 s polling: 5-minute windows
LATE_SITE, LATE_FROM_DAY = "ru-bratsk", 17  # one machine (the demo tenant's) went live on the 17th
MAINTENANCE_REASON = "Substation 2 transformer service (demo)"


def seed_billing_setup(log) -> None:
    """Contract terms (one per billing mode), the Kazakh levy, one announced maintenance."""
    for contract in Contract.objects.filter(status=ContractStatus.ACTIVE).select_related("tenant").order_by("pk"):
        defaults = DEMO_TERMS.get(contract.tenant.slug)
        if defaults is None:
            continue
        terms, _ = ContractTerms.objects.get_or_create(contract=contract, defaults=defaults)
        if terms.billing_mode == "flat":
            for model_id in contract.machines.values_list("model_id", flat=True).distinct():
                FlatFee.objects.get_or_create(
                    terms=terms, machine_model_id=model_id, defaults={"fee_per_month": FLAT_FEE_PER_MONTH}
                )
    for site in Site.objects.order_by("slug"):
        SiteBilling.objects.get_or_create(site=site, defaults={"currency": "USD"})
    kazakh = Site.objects.get(slug="kz-ekibastuz")
    Levy.objects.get_or_create(
        site=kazakh, name="Tax on digital mining power (2022)",
        defaults={"currency": "KZT", "per_kwh": Decimal(1), "to_billing_currency": KZT_TO_USD,
                  "effective_from": dt.date(2022, 1, 1), "effective_until": dt.date(2023, 1, 1)},
    )  # fmt: skip
    Levy.objects.get_or_create(
        site=kazakh, name="Tax on digital mining power",
        defaults={"currency": "KZT", "per_kwh": Decimal(1), "tiers": KZ_LEVY_TIERS,
                  "power_price_per_kwh": Decimal("18.50"), "to_billing_currency": KZT_TO_USD,
                  "effective_from": dt.date(2023, 1, 1)},
    )  # fmt: skip
    siberia = Site.objects.get(slug="ru-bratsk")
    if not Maintenance.objects.filter(site=siberia, reason=MAINTENANCE_REASON).exists():
        starts_at = _maintenance_start(siberia)
        Maintenance.objects.create(
            site=siberia, starts_at=starts_at, ends_at=starts_at + dt.timedelta(hours=4),
            announced_at=starts_at - dt.timedelta(days=7), reason=MAINTENANCE_REASON,
            announced_by=get_user_model().objects.filter(username="staff").first(),
        )  # fmt: skip
    log("billing: terms (metered, nameplate, flat), the Kazakh levy, maintenance announced at ru-bratsk")


def _last_month(site: Site) -> tuple[dt.date, dt.date]:
    return billing.month_of(billing.local_today(site).replace(day=1) - dt.timedelta(days=1))


def _maintenance_start(site: Site) -> dt.datetime:
    """02:00 local on the 10th of last month."""
    start, _ = _last_month(site)
    day_start, _ = billing.day_bounds(site, start.replace(day=10))
    return day_start + dt.timedelta(hours=2)


def _machine_day(machine, site, day: dt.date, windows: int, maintenance: int):
    """One live machine's day, as telemetry would have rolled it: mostly hashing; now and
    then a gap no poll saw (unknown, counted up) or a stretch unreachable (down, 0 W)."""
    rng = random.Random(f"{machine.serial}:{day.isoformat()}")  # noqa: S311 - demo figures
    counted = windows - maintenance
    unknown = rng.randint(2, 12) if rng.random() < 0.06 else 0
    unreachable = rng.randint(6, 36) if rng.random() < 0.03 else 0
    reachable = counted - unknown - unreachable
    hashing = reachable - (rng.randint(1, 4) if rng.random() < 0.05 else 0)  # a restart or two
    watts = machine.model.nameplate_power_w * rng.uniform(0.96, 1.02)
    return MachineDay(
        day=day, machine=machine, contract_id=machine.contract_id, site=site, window_s=HISTORY_WINDOW_S,
        windows=windows, windows_maintenance=maintenance, windows_unknown=unknown, windows_reachable=reachable,
        windows_hashing=hashing, energy_wh_pdu=round(reachable * HISTORY_WINDOW_S * watts / 3600, 1),
    )  # fmt: skip


def seed_billing_history(log) -> None:
    """Last month for every live machine of an active contract, as machine-days (the demo has
    no telemetry that old), the sites rolled through it, and each contract's invoice made and
    issued by the billing services. Once: a site already rolled through last month is left."""
    issued = 0
    for site in Site.objects.order_by("slug"):
        period_start, period_end = _last_month(site)
        cursor, _ = RollupCursor.objects.get_or_create(site=site)
        contracts = list(Contract.objects.filter(site=site, status=ContractStatus.ACTIVE).order_by("pk"))
        if not contracts:
            continue
        if cursor.rolled_until is None or cursor.rolled_until < period_end:
            maintenance = Maintenance.objects.filter(site=site, cancelled_at__isnull=True).first()
            live = list(
                Machine.objects.filter(contract__in=contracts, status=S.LIVE).select_related("model").order_by("pk")
            )
            late = live[-1] if live and site.slug == LATE_SITE else None
            rows = []
            day = period_start
            while day < period_end:
                start, end = billing.day_bounds(site, day)
                windows = int((end - start).total_seconds()) // HISTORY_WINDOW_S
                in_maintenance = 0
                if maintenance and maintenance.starts_at < end and maintenance.ends_at > start:
                    overlap = min(end, maintenance.ends_at) - max(start, maintenance.starts_at)
                    in_maintenance = int(overlap.total_seconds()) // HISTORY_WINDOW_S
                for machine in live:
                    if machine is late and day.day < LATE_FROM_DAY:
                        continue
                    rows.append(_machine_day(machine, site, day, windows, in_maintenance))
                day += dt.timedelta(days=1)
            with transaction.atomic():
                MachineDay.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
                cursor.rolled_until = max(period_end, cursor.rolled_until or period_end)
                cursor.save(update_fields=["rolled_until"])
        # On the billing day, 09:00 local (or now, if that is still to come).
        billing_day, _ = billing.day_bounds(site, period_end)
        issue_at = min(timezone.now(), billing_day + dt.timedelta(hours=9))
        for contract in contracts:
            invoice = billing.invoice_month(contract, period_start).invoice
            if not invoice.is_final:
                billing.issue(invoice, now=issue_at)
                issued += 1
    log(f"billing: last month's machine-days, {issued} invoice(s) issued")


# An ERCOT West real-time day (15-minute $/MWh): cheap overnight, a midday plateau, an evening
# scarcity spike that ends — the shape of a summer day at LZ_WEST.
DEMO_SPIKE_USD = [180, 260, 410, 880, 1250, 930, 520, 240]


def _demo_price(i: int, of: int) -> Decimal:
    """The i-th of `of` intervals ending now: the spike six hours ago, otherwise a daily curve."""
    spike_at = of - 24  # six hours before the last interval
    if spike_at <= i < spike_at + len(DEMO_SPIKE_USD):
        return Decimal(DEMO_SPIKE_USD[i - spike_at])
    hour = (i % 96) / 4
    base = 22 + 18 * max(0.0, 1 - abs(hour - 15) / 7) + 3 * ((i * 7919) % 11) / 10
    return Decimal(str(round(base, 2)))


def seed_curtailment(log) -> None:
    """Texas takes part in ERCOT: its settlement point (LZ_WEST), a price program (curtail after
    15 minutes above 150 $/MWh, resume after 15 below, 2 MW a minute) and an ERS-10 program for
    events staff enter or the QSE posts; the last day of real-time prices, its spike over."""
    from hosting.curtailment.models import Program, ProgramKind, SettlementPrice, SiteGrid

    site = Site.objects.get(slug="tx-rockdale")
    SiteGrid.objects.update_or_create(site=site, defaults={"settlement_point": "LZ_WEST"})
    Program.objects.get_or_create(
        site=site, kind=ProgramKind.PRICE,
        defaults={"name": "Price above 150 $/MWh", "strike_usd_per_mwh": Decimal(150), "hold_minutes": 15,
                  "resume_minutes": 15, "ramp_mw_per_min": Decimal(2)},
    )  # fmt: skip
    Program.objects.get_or_create(
        site=site, kind=ProgramKind.ERS_10, defaults={"name": "ERCOT ERS-10", "response_minutes": 10}
    )
    now = timezone.now()
    last = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) - dt.timedelta(minutes=15)
    count = 96
    for i in range(count):
        SettlementPrice.objects.get_or_create(
            settlement_point="LZ_WEST", interval_start=last - dt.timedelta(minutes=15 * (count - 1 - i)),
            defaults={"price_usd_per_mwh": _demo_price(i, count)},
        )  # fmt: skip
    log("curtailment: Texas in ERCOT (LZ_WEST), a price program at 150 $/MWh and ERS-10; a day of prices")


def seed(log=print) -> None:
    today = timezone.localdate()
    seed_sites(today, log)
    seed_pricing(log)
    users = seed_users(log)
    seed_tenants(today, users["staff"], users["tenant"], log)
    seed_shipments(log)
    seed_holds(today, log)
    seed_quotes(today, log)
    seed_commissioning(log)
    seed_evidence(log)
    seed_telemetry(log)
    seed_billing_setup(log)
    seed_billing_history(log)
    seed_curtailment(log)
