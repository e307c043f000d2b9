"""Contracts book through the ledger; machines keep clean identities; the catalog is real."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from capacity import errors, ledger
from capacity.models import Reservation
from hosting import services
from hosting.fields import normalize_mac
from hosting.lifecycle import ContractStatus, IllegalTransition, MachineStatus
from hosting.models import Contract, Machine, MachineModel, Membership
from tests.factories import (
    ContractFactory,
    MachineFactory,
    PhaseFactory,
    RackFactory,
    SiteFactory,
    SlotFactory,
    StaffFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2021, 6, 15, tzinfo=dt.UTC)


@pytest.fixture
def kazakh_site():
    """50 MW at PUE 1.0: 50,000 kW of IT."""
    site = SiteFactory(slug="ekibastuz", pue=Decimal("1.00"))
    PhaseFactory(site=site, energized_on=dt.date(2021, 1, 1), mw=Decimal("50"))
    return site


# --- contracts ----------------------------------------------------------------------------


def test_signing_books_the_contract_firm_through_the_ledger(kazakh_site):
    contract = ContractFactory(site=kazakh_site, it_kw=Decimal("30000"))
    staff = StaffFactory()
    signed = services.sign_contract(contract, by=staff, now=NOW)
    assert (signed.status, signed.signed_by, signed.signed_at) == (ContractStatus.SIGNED, staff, NOW)
    reservation = signed.reservation
    assert (reservation.kind, reservation.it_kw, reservation.reference) == ("firm", Decimal("30000"), signed.reference)
    assert (reservation.starts_on, reservation.ends_on) == (contract.starts_on, contract.ends_on)


def test_signing_past_the_budget_is_refused_and_leaves_a_draft(kazakh_site):
    services.sign_contract(ContractFactory(site=kazakh_site, it_kw=Decimal("30000")), now=NOW)
    second = ContractFactory(site=kazakh_site, it_kw=Decimal("30000"))
    with pytest.raises(errors.InsufficientCapacity, match="10,000 kW short"):
        services.sign_contract(second, now=NOW)
    second.refresh_from_db()
    assert (second.status, second.reservation) == (ContractStatus.DRAFT, None)
    assert Reservation.objects.count() == 1


def test_signing_twice_is_an_illegal_move(kazakh_site):
    contract = services.sign_contract(ContractFactory(site=kazakh_site), now=NOW)
    with pytest.raises(IllegalTransition, match="from signed to signed"):
        services.sign_contract(contract, now=NOW)


def test_signing_turns_the_contracts_hold_firm(kazakh_site):
    hold = ledger.reserve(
        kazakh_site,
        it_kw=Decimal("100"),
        starts_on=dt.date(2021, 7, 1),
        ends_on=dt.date(2022, 7, 1),
        kind="hold",
        expires_at=NOW + dt.timedelta(hours=72),
        reference="quote:q1",
        now=NOW,
    )
    contract = ContractFactory(site=kazakh_site, reservation=hold)
    signed = services.sign_contract(contract, now=NOW + dt.timedelta(hours=1))
    assert signed.reservation.pk == hold.pk
    assert (signed.reservation.kind, signed.reservation.reference) == ("firm", contract.reference)
    assert Reservation.objects.count() == 1


def test_ending_a_contract_releases_its_capacity(kazakh_site):
    contract = services.sign_contract(ContractFactory(site=kazakh_site, it_kw=Decimal("50000")), now=NOW)
    services.activate_contract(contract)
    ended = services.end_contract(contract, now=NOW)
    assert ended.status == ContractStatus.ENDED
    assert ledger.load_book(kazakh_site, NOW).committed_kw(dt.date(2021, 7, 1)) == 0


def test_a_contract_with_machines_in_slots_cannot_end(kazakh_site):
    contract = services.sign_contract(ContractFactory(site=kazakh_site), now=NOW)
    machine = MachineFactory(contract=contract, status=MachineStatus.RECEIVED)
    slot = SlotFactory(rack=RackFactory(site=kazakh_site))
    services.rack_machine(machine, slot)
    with pytest.raises(services.ServiceError, match="unrack them first"):
        services.end_contract(contract)


def test_a_booked_contract_must_have_a_reservation_in_the_database(kazakh_site):
    contract = ContractFactory(site=kazakh_site)
    with pytest.raises(IntegrityError), transaction.atomic():
        Contract.objects.filter(pk=contract.pk).update(status=ContractStatus.SIGNED)


@pytest.mark.parametrize(
    "bad",
    [
        {"it_kw": Decimal("0")},
        {"machine_count": 0},
        {"rate_usd_per_kwh": Decimal("-0.01")},
        {"ends_on": dt.date(2021, 7, 1)},
    ],
)
def test_contract_constraints(kazakh_site, bad):
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(site=kazakh_site, **bad)


# --- machines -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    ["02:1A:2B:3C:4D:5E", "02-1a-2b-3c-4d-5e", "021a.2b3c.4d5e", "021A2B3C4D5E", "  02:1a:2b:3c:4d:5e "],
)
def test_mac_addresses_are_stored_in_one_spelling(spelling):
    machine = MachineFactory(mac=spelling)
    machine.refresh_from_db()
    assert machine.mac == "02:1a:2b:3c:4d:5e"


@pytest.mark.parametrize(
    "bad", ["02:1a:2b:3c:4d", "02:1a:2b:3c:4d:5e:6f", "zz:1a:2b:3c:4d:5e", "02:1a-2b:3c:4d:5e", "", "hello"]
)
def test_a_malformed_mac_is_refused_and_nothing_is_written(bad):
    if bad:
        with pytest.raises(ValidationError, match="not a MAC address"):
            normalize_mac(bad)
    machine = MachineFactory.build(mac=bad, contract=ContractFactory())
    with pytest.raises(ValidationError) as refused:
        machine.full_clean()
    assert "mac" in refused.value.message_dict
    if bad:
        with pytest.raises(ValidationError), transaction.atomic():
            machine.save()
    assert not Machine.objects.exists()


def test_a_duplicate_serial_is_refused():
    first = MachineFactory(serial="HTX21070001")
    duplicate = MachineFactory.build(serial="HTX21070001", contract=first.contract, tenant=first.tenant)
    with pytest.raises(ValidationError) as refused:
        duplicate.full_clean()
    assert "A machine with this serial is already registered" in str(refused.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    assert Machine.objects.count() == 1


def test_a_returned_machine_leaves_its_serial_and_mac_free():
    first = MachineFactory(serial="HTX21070002", mac="02:00:00:aa:00:02", status="returned")
    again = MachineFactory.build(serial=first.serial, mac=first.mac, contract=first.contract, tenant=first.tenant)
    again.full_clean()
    again.save()
    assert Machine.objects.filter(serial=first.serial).count() == 2


def test_a_machine_on_another_tenants_contract_is_refused():
    machine = MachineFactory.build(contract=ContractFactory(), tenant=TenantFactory())
    with pytest.raises(ValidationError, match="another tenant"):
        machine.full_clean()


# --- tenants and the catalog -----------------------------------------------------------------


def test_users_may_belong_to_several_tenants_but_staff_to_none():
    user = UserFactory()
    for tenant in TenantFactory.create_batch(2):
        Membership(tenant=tenant, user=user).full_clean()
        Membership.objects.create(tenant=tenant, user=user)
    assert user.tenants.count() == 2
    with pytest.raises(ValidationError, match="Staff users cannot belong"):
        Membership(tenant=TenantFactory(), user=StaffFactory()).full_clean()


def test_the_catalog_ships_with_real_models_and_their_sources():
    expected = {
        "Antminer S19": (95, 3250),
        "Antminer S19 Pro": (110, 3250),
        "Antminer S19j Pro": (104, 3068),
        "Antminer S19 XP": (140, 3010),
        "Antminer S21": (200, 3500),
        "Whatsminer M30S++": (112, 3472),
        "Whatsminer M50": (114, 3306),
        "Avalon A1246": (90, 3420),
    }
    catalog = {m.name: m for m in MachineModel.objects.all()}
    assert {name: (int(m.nominal_hashrate_ths), m.nameplate_power_w) for name, m in catalog.items()} == expected
    for model in catalog.values():
        assert "pyasic" in model.source
        assert model.hashboards == 3
    assert catalog["Antminer S19 XP"].efficiency_j_per_th == Decimal("21.5")
