"""The demo world is what the README promises, obeys the ledger, and seeding twice changes nothing."""

from decimal import Decimal
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from capacity import ledger
from capacity.models import Circuit, EnergizationPhase, Reservation, Site, Slot
from hosting.billing.models import (
    ContractTerms,
    FlatFee,
    Invoice,
    InvoiceLine,
    InvoiceMachine,
    Levy,
    MachineDay,
    Maintenance,
    RollupCursor,
)
from hosting.commissioning import fleet
from hosting.demo import DEMO_PASSWORD
from hosting.lifecycle import AWAITING_ARRIVAL, IN_SLOT, MachineStatus
from hosting.models import (
    CommissioningPolicy,
    Contract,
    Machine,
    MachineEvent,
    Membership,
    Quote,
    SelfTestRun,
    Shipment,
    SitePricing,
    Tenant,
)

pytestmark = pytest.mark.django_db

COUNTED = [
    Site,
    Shipment,
    EnergizationPhase,
    Circuit,
    Slot,
    Reservation,
    Tenant,
    Contract,
    Machine,
    MachineEvent,
    Membership,
    Quote,
    ContractTerms,
    FlatFee,
    Levy,
    Maintenance,
    MachineDay,
    Invoice,
    InvoiceLine,
    InvoiceMachine,
]


def counts():
    return {model.__name__: model.objects.count() for model in COUNTED}


def test_seed_demo_builds_the_2021_world_and_is_idempotent():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = counts()
    call_command("seed_demo", stdout=StringIO())
    assert counts() == first
    assert "Demo data ready." in out.getvalue()

    today = timezone.localdate()
    books = ledger.load_books(list(Site.objects.all()))
    sites = {s.slug: s for s in Site.objects.all()}
    assert set(sites) == {"tx-rockdale", "ru-bratsk", "kz-ekibastuz"}

    texas = books[sites["tx-rockdale"].pk]
    assert texas.budget_kw(today) == Decimal("100000")
    assert sites["tx-rockdale"].phases.filter(energized_on__gt=today).count() == 2

    siberia = books[sites["ru-bratsk"].pk]
    assert siberia.budget_kw(today) == Decimal("125000")
    assert siberia.budget_kw(today + relativedelta(months=24)) == Decimal("2500000")
    assert sites["ru-bratsk"].cooling == "hydro"

    kazakh = books[sites["kz-ekibastuz"].pk]
    assert kazakh.budget_kw(today) == Decimal("50000")
    assert kazakh.headroom_kw(today) < Decimal("0.1") * kazakh.budget_kw(today)  # nearly full

    for book in books.values():
        assert book.over_budget(today) is None  # everything was booked through the ledger

    assert first["Slot"] > 70_000  # tens of thousands of slots for the first phases
    for circuit in Circuit.objects.with_load().filter(load_w__gt=0):
        assert circuit.load_w <= circuit.usable_w

    assert first["Tenant"] == 3
    statuses = set(Machine.objects.values_list("status", flat=True))
    # Testing is what `make demo` starts; returned and curtailed are stories not told here.
    untold = (MachineStatus.RETURNED, MachineStatus.TESTING, MachineStatus.CURTAILED)
    assert statuses >= {s for s in MachineStatus.values if s not in untold}
    assert not Machine.objects.filter(status__in=IN_SLOT, slot__isnull=True).exists()
    live = Machine.objects.filter(status=MachineStatus.LIVE).first()
    assert list(live.events.values_list("to_status", flat=True)) == [
        "in_transit",
        "received",
        "racked",
        "testing",
        "live",
    ]
    # Shipping help: every site says where to ship; the machines on their way are on packing lists.
    for site in sites.values():
        assert len(site.ship_to_block.splitlines()) >= 4
        assert site.has_receiving
    assert not Machine.objects.filter(status__in=AWAITING_ARRIVAL, shipment__isnull=True).exists()
    assert {s.tracking_url is not None for s in Shipment.objects.exclude(tracking_number="")} == {True, False}
    cancelled = Machine.objects.get(status=MachineStatus.CANCELLED)
    assert cancelled.tenant.slug == "northern-hash"
    assert list(cancelled.events.values_list("to_status", flat=True)) == ["cancelled"]
    assert set(Contract.objects.values_list("status", flat=True)) == {"draft", "signed", "active"}
    assert Reservation.objects.filter(kind="hold").count() == 2
    assert Reservation.objects.active().filter(kind="hold").count() == 1

    assert SitePricing.objects.count() == 3
    # Commissioning: every machine on the floor has an address, and a metered outlet.
    assert CommissioningPolicy.objects.count() == 3
    on_floor = Machine.objects.filter(status__in=fleet.ON_THE_FLOOR)
    assert not on_floor.filter(ip__isnull=True).exists()
    assert not on_floor.filter(slot__outlet__isnull=True).exists()
    assert not on_floor.filter(slot__circuit__pdu__isnull=True).exists()
    miners, pdus = fleet.from_database(fault_every=4)
    assert len(miners) == on_floor.count()
    assert sum(len(p.outlets) for p in pdus) == on_floor.count()
    assert any(m.faults for m in miners)
    assert sorted(Quote.objects.values_list("status", flat=True)) == ["priced", "waitlisted"]

    users = {u.username: u for u in get_user_model().objects.filter(username__in=["staff", "tenant"])}
    staff, tenant = users["staff"], users["tenant"]
    assert staff.check_password(DEMO_PASSWORD)
    assert tenant.check_password(DEMO_PASSWORD)
    assert staff.is_staff
    assert not tenant.is_staff
    assert tenant.tenants.get().slug == "northern-hash"


def test_nothing_seeded_is_live_without_evidence_and_the_racks_show_it_measured(client):
    call_command("seed_demo", stdout=StringIO())
    live = Machine.objects.filter(status=MachineStatus.LIVE)
    assert live.count() == 3 * 18
    for machine in live.prefetch_related("self_tests__checks", "self_tests__samples"):
        (run,) = machine.self_tests.all()
        assert run.status == "passed", (machine.serial, run.reasons)
        assert {c.name: c.passed for c in run.checks.all()} == {
            "identity": True, "power": True, "hashing": True, "thermal": True
        }  # fmt: skip
        samples = list(run.samples.all())
        assert len(samples) >= 2
        for sample in samples:
            assert sample.reachable
            nominal = machine.model.nominal_hashrate_ths
            assert abs(sample.hashrate_ths - nominal) < nominal / 20
            assert len(sample.boards) == machine.model.hashboards
            assert all(50 < b["chip_temp_c"] < float(machine.model.max_chip_temp_c) for b in sample.boards)
            assert abs(sample.outlet_w - machine.model.nameplate_power_w) < machine.model.nameplate_power_w / 10
        assert run.finished_at is not None
        assert run.checks.get(name="hashing").measurements["samples"] == len(samples)
    for machine in Machine.objects.filter(status__in=[MachineStatus.FAILED, MachineStatus.RMA]):
        (run,) = machine.self_tests.all()
        assert run.status == "failed"
        assert run.checks.count() == 4
        assert "hashing: 1 of 3 hashboards missing" in run.reasons
    call_command("seed_demo", stdout=StringIO())  # seeding again adds no second run
    assert SelfTestRun.objects.count() == live.count() + 3 * 3

    from django.urls import reverse

    from tests.factories import StaffFactory

    client.force_login(StaffFactory())
    rack_id = live.values_list("slot__rack_id", flat=True).first()
    response = client.get(reverse("staff:rack", args=[rack_id]) + "?colour=temperature")
    in_rack = Machine.objects.filter(slot__rack_id=rack_id)
    measured = {c.machine_id for c in response.context["cells"] if c.temp_c is not None}
    assert measured >= set(in_rack.filter(status=MachineStatus.LIVE).values_list("pk", flat=True))
    assert response.context["measured"] >= in_rack.filter(status=MachineStatus.LIVE).count() > 0


def test_the_demo_tenant_has_last_months_invoice_issued_with_its_lines_and_machines(client):
    call_command("seed_demo", stdout=StringIO())
    first = counts()
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    call_command("seed_demo", stdout=StringIO())  # a second run bills nothing twice
    assert counts() == first
    assert sorted(Invoice.objects.values_list("number", flat=True)) == numbers

    modes = set(ContractTerms.objects.values_list("billing_mode", flat=True))
    assert modes == {"metered", "nameplate", "flat"}
    assert FlatFee.objects.filter(terms__billing_mode="flat").exists()
    assert Maintenance.objects.filter(site__slug="ru-bratsk").count() == 1

    northern = Tenant.objects.get(slug="northern-hash")
    (invoice,) = Invoice.objects.filter(tenant=northern)
    assert invoice.status == "issued"
    assert invoice.number.startswith("RU-BRATSK-")
    site = invoice.site
    assert RollupCursor.objects.get(site=site).rolled_until == invoice.period_end
    assert invoice.period_end == timezone.localdate().replace(day=1) or invoice.period_end.day == 1
    kinds = list(invoice.lines.values_list("kind", flat=True))
    assert kinds[0] == "energy"
    assert "setup" in kinds
    assert invoice.total_amount == sum(line.amount for line in invoice.lines.all()) > 0
    energy = invoice.lines.get(kind="energy")
    assert energy.amount == (energy.quantity * energy.unit_price).quantize(Decimal("0.01"))
    machines = list(invoice.machines.order_by("machine_id"))
    assert len(machines) == 18  # every live machine of the contract
    days = (invoice.period_end - invoice.period_start).days
    assert [m.days_live for m in machines].count(days) == 17
    assert machines[-1].days_live == days - 16  # live from the 17th
    assert any(m.windows_unknown for m in machines)
    assert [m.excluded_maintenance for m in machines] == [48] * 17 + [0]  # 4 h announced on the 10th
    assert any(m.uptime_pct < 100 for m in machines)
    assert invoice.summary["uptime_pct"] is not None
    assert Decimal(invoice.summary["uptime_pct"]) > 98

    kazakh = Invoice.objects.get(site__slug="kz-ekibastuz")
    (levy,) = kazakh.lines.filter(kind="levy")
    assert "15 KZT/kWh" in levy.description  # 18.50 tenge power: the ≤ 20 tier
    assert levy.unit_price == Decimal("0.029250")  # 15 × 0.00195 USD
    assert kazakh.lines.filter(kind="flat").exists()
    assert not kazakh.lines.filter(kind="setup").exists()
    assert (
        Invoice.objects.get(site__slug="tx-rockdale")
        .lines.get(kind="energy")
        .description.endswith("(nameplate, operational hours)")
    )
    assert MachineDay.objects.count() == 3 * 18 * days - 16
    assert Levy.objects.filter(site__slug="kz-ekibastuz").count() == 2


def test_texas_takes_part_in_ercot_with_a_days_prices_whose_spike_would_have_curtailed():
    import datetime as dt

    from hosting.curtailment import programs
    from hosting.curtailment.models import Event, Program, SettlementPrice
    from hosting.curtailment.triggers import Decision

    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # idempotent
    texas = Site.objects.get(slug="tx-rockdale")
    assert texas.grid.settlement_point == "LZ_WEST"
    price = Program.objects.get(site=texas, kind="price")
    assert sorted(Program.objects.filter(site=texas).values_list("kind", flat=True)) == ["ers10", "price"]
    prices = list(SettlementPrice.objects.filter(settlement_point="LZ_WEST").order_by("interval_start"))
    assert len(prices) == 96
    now = timezone.now()
    assert prices[-1].interval_start <= now < prices[-1].interval_start + dt.timedelta(minutes=30)
    # Now: the spike is over, nothing to curtail; in the middle of it, the program would have.
    assert programs.verdict(price, now, curtailed=False).decision == Decision.HOLD
    peak = max(prices, key=lambda p: p.price_usd_per_mwh)
    assert peak.price_usd_per_mwh > 1000
    during = peak.interval_start + dt.timedelta(minutes=14)
    assert programs.verdict(price, during, curtailed=False).decision == Decision.CURTAIL
    assert not Event.objects.exists()
