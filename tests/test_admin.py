"""The staff admin: who may see it, that every page renders, that lists cost a fixed number
of queries however many rows there are, and that its edits and actions go through the ledger."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from capacity import ledger
from capacity.models import Circuit, EnergizationPhase, Pdu, PowerFeed, Rack, Reservation, Site, Slot
from hosting import machine_requests, members, quotes, services
from hosting.commissioning import checks, pipeline, runs
from hosting.lifecycle import ContractStatus, MachineStatus
from hosting.models import (
    ApiToken,
    CommissioningBatch,
    CommissioningPolicy,
    Contract,
    Invitation,
    Machine,
    MachineEvent,
    MachineModel,
    MachineRequest,
    Membership,
    Quote,
    SelfTestRun,
    Shipment,
    SitePricing,
    Tenant,
    TermDiscount,
)
from hosting.readings import Board, Reading
from hosting.telemetry import alerting, storage
from hosting.telemetry.models import Alert, CircuitWindow, TelemetryPolicy, Window
from tests.factories import (
    PASSWORD,
    CircuitFactory,
    ContractFactory,
    MachineFactory,
    MembershipFactory,
    PhaseFactory,
    RackFactory,
    SiteFactory,
    SlotFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MODELS = [
    Site,
    EnergizationPhase,
    PowerFeed,
    Circuit,
    Rack,
    Slot,
    Reservation,
    Tenant,
    Membership,
    Invitation,
    MachineModel,
    Contract,
    Machine,
    MachineEvent,
    ApiToken,
    SitePricing,
    TermDiscount,
    Quote,
    Pdu,
    CommissioningPolicy,
    CommissioningBatch,
    SelfTestRun,
    MachineRequest,
    TelemetryPolicy,
    Alert,
    Shipment,
    LogEntry,  # the change log, site-wide (django-auditlog's admin)
]
# Written by the system (or asked for from the portal), never added by hand.
READ_ONLY = {MachineEvent, Quote, CommissioningBatch, SelfTestRun, MachineRequest, Alert, Shipment, LogEntry}


def admin_url(model, view="changelist", *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def grow(n: int) -> None:
    """Add n of everything: a site with a phase, power chain, racked machines, contracts,
    events, a price list, a quote with an option, a token."""
    for _ in range(n):
        site = SiteFactory()
        PhaseFactory(site=site, mw=Decimal("5"))
        SitePricing.objects.create(site=site, list_rate_usd_per_kwh=Decimal("0.05"))
        TermDiscount.objects.create(min_term_months=TermDiscount.objects.count() + 1, discount_pct=Decimal("1"))
        quotes.request_quote(
            Quote(contact_email="a@example.com", it_kw=Decimal("1"), start_on=dt.date.today(), term_months=1, site=site)
        )
        rack = RackFactory(site=site)
        pdu = Pdu.objects.create(site=site, name="PDU", host=f"127.77.{Pdu.objects.count()}.1", port=16100)
        circuit = CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100, pdu=pdu)
        contract = services.sign_contract(ContractFactory(site=site, it_kw=Decimal("10")))
        owner = MembershipFactory(tenant=contract.tenant).user
        ApiToken.issue(owner, "grown")
        members.invite(contract.tenant, f"{owner.username}.friend@example.com", "viewer", by=owner,
                       link_for=lambda token: f"http://testserver/portal/invitations/{token}/")  # fmt: skip
        CommissioningPolicy.objects.create(site=site)
        machines = []
        for position in (1, 2):
            slot = SlotFactory(rack=rack, circuit=circuit, position=position, outlet=position)
            machine = MachineFactory(contract=contract, status=MachineStatus.RECEIVED)
            ip = f"127.77.{Pdu.objects.count()}.{10 + position}"  # racked with its address
            machines.append(services.rack_machine(machine, slot, commission=False, ip=ip))
        shipment = Shipment.objects.create(
            contract=contract, tenant=contract.tenant, carrier="ups", tracking_number=f"1Z{site.pk:08d}"
        )
        Machine.objects.filter(pk__in=[m.pk for m in machines]).update(shipment=shipment)
        runs.start_batch(machines, label="grown")
        runs.dispatch(site.pk)
        token, claimed = runs.claim(list(SelfTestRun.objects.filter(machine__in=machines).values_list("pk", flat=True)))
        reading = Reading(timezone.now(), True, 110.0, (Board(0, 36.6, 114, 70.0, 60.0),), (5400,) * 4)
        outcome = checks.Outcome("hashing", True, (), {"samples": 1})
        runs.finish([pipeline.Result(claimed[0].pk, [outcome], [reading])], token)
        machine_requests.file(Machine.objects.get(pk=claimed[0].machine_id), "retest", note="grown")  # now live
        grow_alerts(site, Machine.objects.get(pk=claimed[0].machine_id), circuit)


def grow_alerts(site, live, circuit) -> None:
    """A telemetry policy, and two alerts opened by the rules: a stopped fan, a hot circuit."""
    TelemetryPolicy.objects.create(site=site, poll_interval_s=60)
    now = timezone.now()
    storage.write_windows(
        [Window(start=now, machine=live, site=site, contract_id=live.contract_id, machine_status=live.status,
                reachable=True, fans_ok=False)]
    )  # fmt: skip
    storage.write_circuit_windows([CircuitWindow(start=now, circuit=circuit, site=site, measured_w=60_000.0)])
    alerting.evaluate(site.pk, now, now=now)


@pytest.fixture
def staff_client(client):
    user = UserFactory(username="ops", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


# --- access -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_list_and_add_page_renders_for_staff(staff_client, model):
    grow(1)
    assert staff_client.get(admin_url(model)).status_code == 200
    add = staff_client.get(admin_url(model, "add"))
    assert add.status_code == (403 if model in READ_ONLY else 200)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_change_page_renders_for_staff(staff_client, model):
    grow(1)
    obj = model.objects.first()
    assert staff_client.get(admin_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_the_admin_is_refused_to_anonymous_users_and_tenants(client, model):
    assert client.get(admin_url(model)).status_code == 302  # to the login page
    tenant_user = MembershipFactory().user
    client.force_login(tenant_user)
    response = client.get(admin_url(model))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_a_recorded_objects_page_links_to_its_change_log_and_others_do_not(staff_client):
    grow(1)
    machine = Machine.objects.first()
    page = staff_client.get(admin_url(Machine, "change", machine.pk)).content.decode()
    link = f"{reverse('staff:changes')}?model=hosting.machine&amp;object_id={machine.pk}"
    assert f'href="{link}"' in page
    history = staff_client.get(f"{reverse('staff:changes')}?model=hosting.machine&object_id={machine.pk}")
    latest = LogEntry.objects.filter(content_type__model="machine", object_id=machine.pk).first()
    assert f'data-change="{latest.pk}"' in history.content.decode()
    quote = Quote.objects.first()
    assert "Change log</a>" not in staff_client.get(admin_url(Quote, "change", quote.pk)).content.decode()


def test_a_tenant_cannot_log_in_to_the_admin(client):
    user = MembershipFactory().user
    response = client.post(reverse("admin:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200
    assert "staff account" in response.content.decode()


def test_staff_see_only_what_their_permissions_allow(client):
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_machine"))
    client.force_login(clerk)
    assert client.get(admin_url(Machine)).status_code == 200
    assert client.get(admin_url(Reservation)).status_code == 403
    assert client.get(admin_url(Machine, "add")).status_code == 403


# --- fixed query counts -------------------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_list_pages_cost_the_same_queries_for_few_rows_and_many(staff_client, model):
    grow(2)
    few = count_queries(staff_client, admin_url(model))
    grow(8)
    many = count_queries(staff_client, admin_url(model))
    assert model.objects.count() > 2 or model is MachineModel
    assert many == few, f"{model.__name__}: {few} queries with few rows, {many} with many"


def test_big_tables_are_not_counted_twice(staff_client):
    grow(2)
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(admin_url(Slot))
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "capacity_slot" in q["sql"]]
    assert len(counts) == 1  # no second "of N total" count


# --- figures ------------------------------------------------------------------------------------


def test_site_list_shows_energized_committed_and_free_today(staff_client):
    site = SiteFactory(name="Siberia One", pue=Decimal("1.25"))
    PhaseFactory(site=site, energized_on=dt.date(2020, 1, 1), mw=Decimal("125"))
    PhaseFactory(site=site, energized_on=dt.date(2099, 1, 1), mw=Decimal("500"))
    ledger.reserve(
        site, it_kw=Decimal("60000"), starts_on=dt.date(2020, 1, 1), ends_on=None, kind="firm", reference="c:1"
    )
    page = staff_client.get(admin_url(Site)).content.decode()
    assert "125.0 MW" in page
    assert "60,000 kW" in page
    assert "40,000 kW" in page  # 125 MW / 1.25 − 60 MW


def test_circuit_and_rack_lists_show_load_and_occupancy(staff_client):
    rack = RackFactory()
    circuit = CircuitFactory(feed=rack.feed)  # 5,760 W usable
    slot, _ = (SlotFactory(rack=rack, circuit=circuit, position=p) for p in (1, 2))
    ledger.assign_slot(slot, watts=2_880, occupant="machine:1")
    assert "2,880 / 5,760 W (50%)" in staff_client.get(admin_url(Circuit)).content.decode()
    assert "1 / 2" in staff_client.get(admin_url(Rack)).content.decode()


# --- edits and actions go through the ledger ---------------------------------------------------------


def test_a_phase_edit_that_strands_reservations_is_refused_on_the_form(staff_client):
    site = SiteFactory(pue=Decimal("1.00"))
    phase = PhaseFactory(site=site, energized_on=dt.date(2020, 1, 1), mw=Decimal("10"))
    ledger.reserve(site, it_kw=Decimal("9000"), starts_on=dt.date(2020, 1, 1), ends_on=None, kind="firm", reference="c")
    response = staff_client.post(
        admin_url(EnergizationPhase, "change", phase.pk),
        {"site": site.pk, "name": phase.name, "energized_on": "2020-01-01", "mw": "5"},
    )
    assert response.status_code == 200
    assert "over the energized budget" in response.content.decode()
    phase.refresh_from_db()
    assert phase.mw == Decimal("10")


def test_zero_or_negative_megawatts_and_a_pue_below_one_are_refused_on_the_forms(staff_client):
    site = SiteFactory()
    for mw in ("0", "-5"):
        response = staff_client.post(
            admin_url(EnergizationPhase, "add"),
            {"site": site.pk, "name": "P0", "energized_on": "2021-01-01", "mw": mw},
        )
        assert response.status_code == 200
        assert "greater than or equal to 0.001" in response.content.decode()
    assert not EnergizationPhase.objects.filter(name="P0").exists()
    response = staff_client.post(
        admin_url(Site, "change", site.pk),
        {
            "slug": site.slug,
            "name": site.name,
            "country": "US",
            "region": "",
            "timezone": "UTC",
            "cooling": "air",
            "pue": "0.90",
            "max_ambient_c": "40",
            "status": "operating",
            "phases-TOTAL_FORMS": "0",
            "phases-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "greater than or equal to 1" in response.content.decode()
    site.refresh_from_db()
    assert site.pue == Decimal("1.00")


def test_adding_a_reservation_in_the_admin_books_through_the_ledger(staff_client):
    site = SiteFactory(pue=Decimal("1.00"))
    PhaseFactory(site=site, energized_on=dt.date(2020, 1, 1), mw=Decimal("1"))
    form = {"site": site.pk, "starts_on": "2021-01-01", "ends_on": "", "kind": "firm", "reference": "staff:1"}
    ok = staff_client.post(admin_url(Reservation, "add"), {**form, "it_kw": "600"})
    assert ok.status_code == 302
    refused = staff_client.post(admin_url(Reservation, "add"), {**form, "it_kw": "600", "reference": "staff:2"})
    assert refused.status_code == 200
    assert "200 kW short" in refused.content.decode()
    assert Reservation.objects.count() == 1


def test_the_sign_action_books_and_reports_refusals(staff_client):
    site = SiteFactory(pue=Decimal("1.00"))
    PhaseFactory(site=site, energized_on=dt.date(2020, 1, 1), mw=Decimal("1"))
    fits = ContractFactory(site=site, it_kw=Decimal("800"))
    too_big = ContractFactory(site=site, it_kw=Decimal("800"))
    response = staff_client.post(
        admin_url(Contract),
        {"action": "sign", "_selected_action": [fits.pk, too_big.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Signed: 1." in page
    assert "short" in page
    statuses = dict(Contract.objects.values_list("pk", "status"))
    assert sorted(statuses.values()) == [ContractStatus.DRAFT, ContractStatus.SIGNED]


def test_machine_actions_move_machines_and_record_who(staff_client):
    machine = MachineFactory()
    staff_client.post(admin_url(Machine), {"action": "move_to_in_transit", "_selected_action": [machine.pk]})
    machine.refresh_from_db()
    assert machine.status == MachineStatus.IN_TRANSIT
    assert machine.events.get().by.username == "ops"
    response = staff_client.post(
        admin_url(Machine), {"action": "move_to_returned", "_selected_action": [machine.pk]}, follow=True
    )
    assert "cannot go from in_transit to returned" in response.content.decode()


def test_slot_occupancy_cannot_be_edited_in_the_admin(staff_client):
    slot = SlotFactory()
    staff_client.post(
        admin_url(Slot, "change", slot.pk),
        {"rack": slot.rack_id, "position": slot.position, "circuit": slot.circuit_id, "allocated_w": "99999"},
    )
    slot.refresh_from_db()
    assert slot.allocated_w == 0


def test_the_site_page_shows_capacity_as_each_phase_energizes(staff_client):
    site = SiteFactory(pue=Decimal("1.00"))
    PhaseFactory(site=site, name="Now", energized_on=dt.date(2020, 1, 1), mw=Decimal("125"))
    PhaseFactory(site=site, name="Later", energized_on=dt.date(2099, 1, 1), mw=Decimal("375"))
    ledger.reserve(
        site, it_kw=Decimal("100000"), starts_on=dt.date(2020, 1, 1), ends_on=None, kind="firm", reference="c:1"
    )
    page = staff_client.get(admin_url(Site, "change", site.pk)).content.decode()
    assert "capacity-timeline" in page
    assert "2099-01-01" in page
    assert "400,000" in page  # free from 2099: 500 MW − 100 MW


def test_staff_edit_a_sites_ship_to_address_and_receiving_instructions(staff_client):
    site = SiteFactory()
    page = staff_client.get(admin_url(Site, "change", site.pk)).content.decode()
    assert "Ship-to and receiving" in page
    data = {
        "slug": site.slug, "name": site.name, "country": site.country.code, "region": site.region,
        "timezone": site.timezone, "cooling": site.cooling, "pue": site.pue, "max_ambient_c": site.max_ambient_c,
        "status": site.status, "ship_to_address": "Haven Bratsk LLC\nBratsk 665708", "receiving_hours": "08-20",
        "receiving_dock": "Ramp 1", "customs_notes": "EAEU declaration", "receiving_contact": "+7 3953 55 01 20",
        "phases-TOTAL_FORMS": "0", "phases-INITIAL_FORMS": "0",
    }  # fmt: skip
    response = staff_client.post(admin_url(Site, "change", site.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    site.refresh_from_db()
    assert site.ship_to_block == "Haven Bratsk LLC\nBratsk 665708"
    assert (site.receiving_dock, site.customs_notes) == ("Ramp 1", "EAEU declaration")


def test_staff_issue_a_token_once_and_revoke_it(staff_client):
    user = MembershipFactory().user
    response = staff_client.post(admin_url(ApiToken, "add"), {"user": user.pk, "name": "fleet"}, follow=True)
    page = response.content.decode()
    token = ApiToken.objects.get()
    key = page.split("Token for ")[1].split(": ", 1)[1].split()[0]
    assert key.startswith(token.prefix)
    assert token.digest == ApiToken.digest_of(key)  # only the hash is kept
    assert key not in staff_client.get(admin_url(ApiToken, "change", token.pk)).content.decode()
    staff_client.post(admin_url(ApiToken), {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
