"""Shipping help in the portal: where to ship (the contract's site), the packing-list
template and the model list, a page per shipment with its machines and the carrier's
tracking link, and correcting or cancelling machines before they arrive. Each page answers
another tenant with 404, and a viewer may look but not change (403)."""

import csv
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from hosting import packing, services, shipping
from hosting.carriers import TRACKING_URLS, Carrier, tracking_url
from hosting.lifecycle import MachineStatus
from hosting.models import Contract, Machine, MachineModel, Role, Shipment
from tests.factories import ContractFactory, MachineFactory, MembershipFactory, SiteFactory

pytestmark = pytest.mark.django_db

S19_PRO = "antminer-s19-pro"  # 3,250 W at nameplate


def upload(client, contract, lines, **fields):
    data = ("serial,mac,model,ip,notes\n" + "\n".join(lines) + "\n").encode()
    url = reverse("portal:contract", args=[contract.pk])
    return client.post(url, {"file": SimpleUploadedFile("list.csv", data, "text/csv"), **fields})


def ship(contract, n=2, *, prefix="SN", tracking="", carrier="", mac_prefix="02:aa:00:00"):
    """A shipment registered through the packing list's own path."""
    lines = "\n".join(f"{prefix}-{i},{mac_prefix}:{i >> 8:02x}:{i & 255:02x},{S19_PRO}" for i in range(1, n + 1))
    return packing.import_list(
        contract, f"serial,mac,model\n{lines}\n".encode(), tracking_number=tracking, carrier=carrier
    )


@pytest.fixture
def stranger(db):
    """Another tenant, with a signed contract of its own at another site, logged in."""
    from tests.factories import PhaseFactory

    site = SiteFactory(ship_to_address="Stranger Mining\n1 Secret Road\nNowhere", receiving_hours="never")
    PhaseFactory(site=site, mw=Decimal("10"))
    contract = services.sign_contract(ContractFactory(site=site))
    client = Client()
    client.force_login(MembershipFactory(tenant=contract.tenant).user)
    return {"client": client, "contract": contract}


@pytest.fixture
def viewer(signed):
    client = Client()
    client.force_login(MembershipFactory(tenant=signed.tenant, role=Role.VIEWER).user)
    return client


# --- where to ship -------------------------------------------------------------------------


def test_the_contract_page_shows_its_sites_ship_to_address_and_receiving_instructions(portal, signed):
    site = signed.site
    site.ship_to_address = "Haven Rockdale LLC\n  \n1201 Mining Way, Dock 3\nRockdale, TX 76567\nUnited States  "
    site.receiving_hours = "Mon–Fri 07:00–15:00 Central"
    site.receiving_dock = "Gate B, dock 3; 53 ft trailers, book 48 h ahead"
    site.customs_notes = "Domestic: no customs.\nImports: DDP only, HS 8471.50"
    site.receiving_contact = "Receiving desk +1 512 555 0100, receiving@rockdale.example"
    site.save()

    page = portal.get(reverse("portal:contract", args=[signed.pk])).content.decode()

    # One line per line, blank lines and stray spaces dropped: ready to paste into a label.
    block = "Haven Rockdale LLC\n1201 Mining Way, Dock 3\nRockdale, TX 76567\nUnited States"
    assert f'<pre class="copyable" id="ship-to-address">{block}</pre>' in page
    assert 'data-copy="ship-to-address"' in page
    for text in ("Mon–Fri 07:00–15:00 Central", "Gate B, dock 3", "Domestic: no customs.<br>Imports: DDP only"):
        assert text in page
    assert "receiving@rockdale.example" in page


def test_a_site_without_an_address_says_to_ask_before_shipping(portal, signed):
    page = portal.get(reverse("portal:contract", args=[signed.pk])).content.decode()
    assert "have not published this site's address yet" in page
    assert "No receiving instructions yet." in page


def test_another_tenants_ship_to_is_never_shown(portal, signed, stranger):
    assert portal.get(reverse("portal:contract", args=[stranger["contract"].pk])).status_code == 404
    own = portal.get(reverse("portal:contract", args=[signed.pk])).content.decode()
    assert "1 Secret Road" not in own
    # …and the stranger sees its own.
    theirs = stranger["client"].get(reverse("portal:contract", args=[stranger["contract"].pk])).content.decode()
    assert "Stranger Mining\n1 Secret Road\nNowhere" in theirs


# --- the template and the model list ------------------------------------------------------


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_template_has_exactly_the_packing_list_columns_and_parses_back(portal, signed):
    response = portal.get(reverse("portal:packing-template"))
    assert 'filename="packing-list-template.csv"' in response["Content-Disposition"]
    rows = _csv(response)
    assert tuple(rows[0]) == (*packing.COLUMNS, *packing.OPTIONAL)
    assert len(rows) == 2  # the header and one example

    data = "\r\n".join(",".join(r) for r in rows).encode()
    parsed, problems = packing.parse(data)
    assert problems == []
    assert [(r.serial, r.model) for r in parsed] == [(rows[1][0], rows[1][2])]
    assert packing.check(signed, parsed) == []  # a real model, a well-formed MAC


def test_the_template_uploaded_as_it_is_registers_its_example_machine(portal, signed):
    data = b"".join(portal.get(reverse("portal:packing-template")).streaming_content)
    url = reverse("portal:contract", args=[signed.pk])
    response = portal.post(url, {"file": SimpleUploadedFile("packing-list-template.csv", data, "text/csv")})
    assert response.status_code == 302
    assert Machine.objects.get().serial == shipping.TEMPLATE_EXAMPLE[0]


def test_the_model_list_is_the_catalog_with_names_a_packing_list_accepts(portal, signed):
    response = portal.get(reverse("portal:model-list"))
    assert 'filename="machine-models.csv"' in response["Content-Disposition"]
    header, *rows = _csv(response)
    assert header == list(shipping.MODEL_LIST_HEADER)
    assert len(rows) == MachineModel.objects.count() >= 5
    accepted = packing.models_by_name()
    by_slug = {m.slug: m for m in MachineModel.objects.all()}
    for row in rows:
        record = dict(zip(header, row, strict=True))
        model = by_slug[record["model"]]
        assert accepted[record["model"].casefold()] == model
        assert accepted[record["name"].casefold()] == model
        assert int(record["nameplate_w"]) == model.nameplate_power_w
        assert Decimal(record["nominal_ths"]) == model.nominal_hashrate_ths


def test_the_downloads_are_linked_from_the_contract_page_and_need_a_login(portal, signed):
    page = portal.get(reverse("portal:contract", args=[signed.pk])).content.decode()
    assert reverse("portal:packing-template") in page
    assert reverse("portal:model-list") in page
    for name in ("portal:packing-template", "portal:model-list"):
        response = Client().get(reverse(name))
        assert response.status_code == 302
        assert reverse("portal:login") in response["Location"]


# --- carriers -----------------------------------------------------------------------------


@pytest.mark.parametrize("carrier", sorted(TRACKING_URLS))
def test_each_carrier_links_its_tracking_page_with_the_number_url_encoded(carrier):
    url = tracking_url(carrier, " 1Z 999/AA&x=#1 ")
    assert url is not None
    assert url.startswith("https://")
    assert url.endswith("1Z%20999%2FAA%26x%3D%231")  # the number cannot change the address


def test_no_link_for_another_carrier_or_without_a_number():
    assert tracking_url(Carrier.OTHER, "FWD-123") is None
    assert tracking_url("", "FWD-123") is None
    assert tracking_url(Carrier.UPS, "  ") is None


# --- shipments ------------------------------------------------------------------------------


def test_a_shipment_page_lists_its_machines_and_links_the_carriers_tracking(portal, signed):
    response = upload(
        portal, signed, ["SN-1,02:aa:00:00:00:01,antminer-s19-pro,,", "SN-2,02:aa:00:00:00:02,antminer-s19j-pro,,"],
        reference="PO-7", carrier="dhl", tracking_number="JD01 4600/0033",
    )  # fmt: skip
    assert response.status_code == 302
    shipment = Shipment.objects.get()
    assert shipment.carrier == Carrier.DHL

    page = portal.get(reverse("portal:shipment", args=[shipment.pk])).content.decode()

    assert 'href="https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&amp;' in page
    assert "tracking-id=JD01%204600%2F0033" in page
    assert page.count('<tr class="machine" data-status="in_transit">') == 2
    for text in ("SN-1", "02:aa:00:00:00:01", "Antminer S19 Pro", "Antminer S19j Pro", "In transit"):
        assert text in page


def test_a_shipment_with_another_carrier_shows_the_plain_number(portal, signed):
    shipment = ship(signed, 1, carrier=Carrier.OTHER, tracking="FWD/77")
    page = portal.get(reverse("portal:shipment", args=[shipment.pk])).content.decode()
    assert '<code class="tracking">FWD/77</code>' in page
    assert 'class="tracking" href' not in page


def test_the_shipment_page_is_paginated_in_constant_queries(portal, signed, django_assert_max_num_queries):
    Contract.objects.filter(pk=signed.pk).update(it_kw=Decimal("1000"))
    signed.refresh_from_db()
    shipment = ship(signed, 5)
    url = reverse("portal:shipment", args=[shipment.pk])
    with django_assert_max_num_queries(25) as few:
        portal.get(url)
    more = ship(signed, 50, prefix="MORE", mac_prefix="02:bb:00:00")
    Machine.objects.filter(shipment=more).update(shipment=shipment)  # 55 on one shipment
    with django_assert_max_num_queries(len(few.captured_queries)):
        first = portal.get(url).content.decode()
    assert first.count('<tr class="machine"') == 50
    second = portal.get(url, {"page": 2}).content.decode()
    assert second.count('<tr class="machine"') == 5
    assert "page 2 of 2" in second


def test_the_shipments_list_costs_the_same_queries_for_few_and_many(portal, signed, django_assert_max_num_queries):
    Contract.objects.filter(pk=signed.pk).update(it_kw=Decimal("1000"))
    ship(signed, 1)
    url = reverse("portal:shipments")
    with django_assert_max_num_queries(25) as few:
        portal.get(url)
    for n in range(2, 12):
        ship(signed, 1, prefix=f"S{n}", mac_prefix=f"02:bb:00:{n:02x}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = portal.get(url).content.decode()
    assert page.count(reverse("portal:shipment", args=[Shipment.objects.last().pk])) == 1
    assert Shipment.objects.count() == 11


def test_the_shipments_list_shows_the_tenants_own_and_links_each(portal, signed, stranger):
    mine = ship(signed, 2, tracking="1Z999AA10123456784", carrier=Carrier.UPS)
    theirs = ship(stranger["contract"], 1, prefix="THEIRS", mac_prefix="02:cc:00:00")
    page = portal.get(reverse("portal:shipments")).content.decode()
    assert reverse("portal:shipment", args=[mine.pk]) in page
    assert "https://www.ups.com/track?tracknum=1Z999AA10123456784" in page
    assert reverse("portal:shipment", args=[theirs.pk]) not in page
    assert "THEIRS" not in page


def test_another_tenants_shipment_is_404(portal, signed, stranger):
    theirs = ship(stranger["contract"], 1, prefix="THEIRS", mac_prefix="02:cc:00:00")
    assert portal.get(reverse("portal:shipment", args=[theirs.pk])).status_code == 404
    assert stranger["client"].get(reverse("portal:shipment", args=[theirs.pk])).status_code == 200


def test_the_dashboard_contract_and_machine_pages_link_the_shipments(portal, signed):
    shipment = ship(signed, 1)
    assert reverse("portal:shipments") in portal.get(reverse("portal:dashboard")).content.decode()
    contract_page = portal.get(reverse("portal:contract", args=[signed.pk])).content.decode()
    assert reverse("portal:shipment", args=[shipment.pk]) in contract_page
    machine = shipment.machines.get()
    machine_page = portal.get(reverse("portal:machine", args=[machine.pk])).content.decode()
    assert reverse("portal:shipment", args=[shipment.pk]) in machine_page
    assert reverse("portal:machine-edit", args=[machine.pk]) in machine_page


def test_tracking_added_later_puts_the_announced_machines_in_transit(portal, signed):
    shipment = ship(signed, 3)
    received = shipment.machines.order_by("serial").first()
    services.transition(received, MachineStatus.RECEIVED)  # one came early, by hand
    url = reverse("portal:shipment-tracking", args=[shipment.pk])
    response = portal.post(url, {"carrier": "fedex", "tracking_number": " 7712 3456 7890 "}, follow=True)
    assert "2 announced machine(s) now in transit" in response.content.decode()
    shipment.refresh_from_db()
    assert (shipment.carrier, shipment.tracking_number) == ("fedex", "7712 3456 7890")
    assert shipment.tracking_url == "https://www.fedex.com/fedextrack/?trknbr=7712%203456%207890"
    statuses = dict(shipment.machines.values_list("serial", "status"))
    assert statuses == {"SN-1": "received", "SN-2": "in_transit", "SN-3": "in_transit"}
    event = shipment.machines.get(serial="SN-2").events.get()
    assert "tracking 7712 3456 7890" in event.reason
    assert event.by is not None


def test_tracking_is_refused_once_everything_arrived_or_without_a_number(portal, signed):
    shipment = ship(signed, 1)
    url = reverse("portal:shipment-tracking", args=[shipment.pk])
    assert "Not changed" in portal.post(url, {"carrier": "ups", "tracking_number": ""}, follow=True).content.decode()
    services.transition(shipment.machines.get(), MachineStatus.RECEIVED)
    page = portal.post(url, {"carrier": "ups", "tracking_number": "1Z1"}, follow=True).content.decode()
    assert "Nothing on" in page
    shipment.refresh_from_db()
    assert shipment.tracking_number == ""
    assert 'id="tracking-form"' not in page


def test_tracking_of_another_tenants_shipment_is_404_and_a_viewers_403(portal, signed, stranger, viewer):
    theirs = ship(stranger["contract"], 1, prefix="THEIRS", mac_prefix="02:cc:00:00")
    url = reverse("portal:shipment-tracking", args=[theirs.pk])
    assert portal.post(url, {"carrier": "ups", "tracking_number": "1Z1"}).status_code == 404
    mine = ship(signed, 1)
    page = viewer.get(reverse("portal:shipment", args=[mine.pk])).content.decode()
    assert 'id="tracking-form"' not in page
    url = reverse("portal:shipment-tracking", args=[mine.pk])
    assert viewer.post(url, {"carrier": "ups", "tracking_number": "1Z1"}).status_code == 403
    assert Shipment.objects.filter(tracking_number="1Z1").count() == 0
    assert portal.get(reverse("portal:shipment", args=[mine.pk])).content.decode().count('id="tracking-form"') == 1


# --- editing a machine before it arrives -------------------------------------------------------


def edit(client, machine, follow=False, **fields):
    data = {"serial": machine.serial, "mac": machine.mac, "model": machine.model.slug, "notes": ""} | fields
    return client.post(reverse("portal:machine-edit", args=[machine.pk]), data, follow=follow)


@pytest.mark.parametrize("status", [MachineStatus.ANNOUNCED, MachineStatus.IN_TRANSIT])
def test_a_machine_not_arrived_is_corrected(portal, signed, status):
    shipment = ship(signed, 1, tracking="1Z1" if status == MachineStatus.IN_TRANSIT else "")
    machine = shipment.machines.get()
    assert machine.status == status
    response = edit(portal, machine, serial="SN-FIXED", mac="02-AA-00-00-00-99", model="antminer-s19j-pro", notes="ok")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:shipment", args=[shipment.pk])
    machine.refresh_from_db()
    assert (machine.serial, machine.mac, machine.model.slug, machine.notes, machine.status) == (
        "SN-FIXED", "02:aa:00:00:00:99", "antminer-s19j-pro", "ok", status,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"mac": "02:aa:00:00:00:zz"}, "mac", "is not a MAC address"),
        ({"serial": "SN 1"}, "serial", "has spaces or control characters"),
        ({"serial": "SN-\x07"}, "serial", "has spaces or control characters"),
        ({"model": "antminer-s99"}, "model", "Select a valid choice"),
    ],
)
def test_an_edit_breaking_a_packing_list_rule_is_a_form_error(portal, signed, fields, field, message):
    machine = ship(signed, 1).machines.get()
    before = Machine.objects.values().get(pk=machine.pk)
    response = edit(portal, machine, **fields)
    assert response.status_code == 200
    assert f'data-field="{field}"' in response.content.decode()
    assert message in response.content.decode()
    assert Machine.objects.values().get(pk=machine.pk) == before


@pytest.mark.parametrize("column", ["serial", "mac"])
def test_a_serial_or_mac_another_machine_holds_is_a_form_error(portal, signed, stranger, column):
    holder = ship(stranger["contract"], 1, prefix="THEIRS", mac_prefix="02:cc:00:00").machines.get()
    machine = ship(signed, 1).machines.get()
    response = edit(portal, machine, **{column: getattr(holder, column)})
    assert response.status_code == 200
    assert f"{getattr(holder, column)} is already registered" in response.content.decode()
    machine.refresh_from_db()
    assert getattr(machine, column) != getattr(holder, column)


def test_a_returned_or_cancelled_machines_serial_and_mac_are_free(portal, signed):
    gone = MachineFactory(contract=signed, serial="OLD-1", mac="02:ee:00:00:00:01", status=MachineStatus.RETURNED)
    cancelled = MachineFactory(contract=signed, serial="OLD-2", mac="02:ee:00:00:00:02")
    shipping.cancel_machine(cancelled)
    machine = ship(signed, 2)
    first, second = machine.machines.order_by("serial")
    assert edit(portal, first, serial=gone.serial, mac=gone.mac).status_code == 302
    assert edit(portal, second, serial=cancelled.serial, mac=cancelled.mac).status_code == 302


def test_a_clash_the_check_could_not_see_is_still_a_form_error(portal, signed, stranger, monkeypatch):
    """The database's partial unique constraint has the last word (as when another request
    took the MAC between our check and our write): a form error, never a 500."""
    holder = ship(stranger["contract"], 1, prefix="THEIRS", mac_prefix="02:cc:00:00").machines.get()
    machine = ship(signed, 1).machines.get()
    real = shipping._taken
    calls = []

    def blind_first(m, row, *, fresh=False):
        calls.append(fresh)
        return {} if not fresh else real(m, row, fresh=fresh)

    monkeypatch.setattr(shipping, "_taken", blind_first)
    response = edit(portal, machine, mac=holder.mac)
    assert calls == [False, True]
    assert response.status_code == 200
    assert f"{holder.mac} is already registered" in response.content.decode()
    machine.refresh_from_db()
    assert machine.mac != holder.mac


def test_a_bigger_model_must_still_fit_the_contracts_kw(portal, signed):
    Contract.objects.filter(pk=signed.pk).update(it_kw=Decimal("6.5"))  # two S19 Pros at 3,250 W
    first, _ = ship(signed, 2).machines.order_by("serial")
    response = edit(portal, first, model="whatsminer-m30s-plus-plus")  # 3,472 W: more than an S19 Pro
    assert response.status_code == 200
    assert "kW allow" in response.content.decode()
    first.refresh_from_db()
    assert first.model.slug == S19_PRO


@pytest.mark.parametrize("status", [MachineStatus.RECEIVED, MachineStatus.CANCELLED])
def test_a_machine_that_arrived_or_was_cancelled_is_not_edited(portal, signed, status):
    machine = ship(signed, 1).machines.get()
    if status == MachineStatus.RECEIVED:
        services.transition(machine, MachineStatus.RECEIVED, reason="at the dock")
    else:
        shipping.cancel_machine(machine)
    machine.refresh_from_db()
    before = Machine.objects.values().get(pk=machine.pk)

    for response in (
        portal.get(reverse("portal:machine-edit", args=[machine.pk]), follow=True),
        edit(portal, machine, serial="SN-LATE", follow=True),
    ):
        assert response.redirect_chain[-1][0] == reverse("portal:machine", args=[machine.pk])
        assert "it can be edited only before it arrives" in response.content.decode()
    assert Machine.objects.values().get(pk=machine.pk) == before
    assert (
        reverse("portal:machine-edit", args=[machine.pk])
        not in portal.get(reverse("portal:machine", args=[machine.pk])).content.decode()
    )


def test_the_service_refuses_an_edit_after_arrival_under_its_lock(signed):
    machine = ship(signed, 1).machines.get()
    stale = Machine.objects.get(pk=machine.pk)  # read while still announced
    services.transition(machine, MachineStatus.RECEIVED)
    with pytest.raises(shipping.NotEditable, match="received"):
        shipping.edit_machine(stale, shipping.Edit("SN-LATE", stale.mac, S19_PRO))
    with pytest.raises(shipping.NotEditable):
        shipping.cancel_machine(stale)
    machine.refresh_from_db()
    assert (machine.serial, machine.status) == ("SN-1", MachineStatus.RECEIVED)


# --- cancelling a machine before it arrives -----------------------------------------------------


def test_cancelling_frees_the_contracts_count_kw_serial_and_mac(portal, signed):
    Contract.objects.filter(pk=signed.pk).update(it_kw=Decimal("6.5"))  # room for two S19 Pros
    shipment = ship(signed, 2)
    first = shipment.machines.order_by("serial").first()
    reservation = signed.reservation
    response = upload(portal, signed, ["SN-3,02:aa:00:00:00:03,antminer-s19-pro,,"])
    assert "kW more than its" in response.content.decode()  # full

    response = portal.post(reverse("portal:machine-cancel", args=[first.pk]), {"reason": "DOA at our warehouse"})

    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == MachineStatus.CANCELLED
    event = first.events.order_by("-at", "-pk").first()
    assert (event.from_status, event.to_status, event.reason) == ("announced", "cancelled", "DOA at our warehouse")
    assert event.by.tenants.filter(pk=signed.tenant_id).exists()
    assert Contract.objects.with_machine_figures().get(pk=signed.pk).machines_n == 1
    reservation.refresh_from_db()
    assert (reservation.it_kw, reservation.released_at) == (signed.reservation.it_kw, None)  # the contract keeps its kW
    # Its place in the contract's kW, its serial and its MAC are free for a new list.
    response = upload(portal, signed, [f"{first.serial},{first.mac},antminer-s19-pro,,"])
    assert response.status_code == 302
    assert Machine.objects.filter(serial=first.serial).count() == 2


def test_cancelling_asks_first(portal, signed):
    machine = ship(signed, 1, tracking="1Z1").machines.get()
    page = portal.get(reverse("portal:machine-cancel", args=[machine.pk])).content.decode()
    assert "cannot be undone" in page
    machine.refresh_from_db()
    assert machine.status == MachineStatus.IN_TRANSIT


def test_a_received_machine_is_not_cancelled(portal, signed):
    machine = ship(signed, 1).machines.get()
    services.transition(machine, MachineStatus.RECEIVED)
    response = portal.post(reverse("portal:machine-cancel", args=[machine.pk]), follow=True)
    assert "it can be cancelled only before it arrives" in response.content.decode()
    machine.refresh_from_db()
    assert machine.status == MachineStatus.RECEIVED


def test_cancelled_is_final():
    from hosting.lifecycle import MACHINE_TRANSITIONS

    assert MACHINE_TRANSITIONS[MachineStatus.CANCELLED] == frozenset()
    assert {s for s, moves in MACHINE_TRANSITIONS.items() if MachineStatus.CANCELLED in moves} == {
        MachineStatus.ANNOUNCED,
        MachineStatus.IN_TRANSIT,
    }


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["portal:machine-edit", "portal:machine-cancel"])
def test_a_viewer_sees_the_shipment_but_may_not_change_its_machines(viewer, signed, name):
    shipment = ship(signed, 1)
    machine = shipment.machines.get()
    page = viewer.get(reverse("portal:shipment", args=[shipment.pk]))
    assert page.status_code == 200
    assert reverse(name, args=[machine.pk]) not in page.content.decode()
    assert viewer.get(reverse(name, args=[machine.pk])).status_code == 403
    assert viewer.post(reverse(name, args=[machine.pk]), {"serial": "X", "mac": machine.mac}).status_code == 403
    machine.refresh_from_db()
    assert (machine.serial, machine.status) == ("SN-1", MachineStatus.ANNOUNCED)


@pytest.mark.parametrize("role", [Role.OWNER, Role.OPERATOR])
def test_owners_and_operators_may_change_them(signed, role):
    client = Client()
    client.force_login(MembershipFactory(tenant=signed.tenant, role=role).user)
    machine = ship(signed, 1).machines.get()
    assert edit(client, machine, serial="SN-BY-ROLE").status_code == 302
    assert client.post(reverse("portal:machine-cancel", args=[machine.pk])).status_code == 302


@pytest.mark.parametrize("name", ["portal:machine-edit", "portal:machine-cancel"])
def test_another_tenants_machine_is_404_to_edit_or_cancel(portal, signed, stranger, name):
    theirs = ship(stranger["contract"], 1, prefix="THEIRS", mac_prefix="02:cc:00:00").machines.get()
    assert portal.get(reverse(name, args=[theirs.pk])).status_code == 404
    url = reverse(name, args=[theirs.pk])
    assert portal.post(url, {"serial": "MINE", "mac": "02:dd:00:00:00:01"}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.serial, theirs.status) == ("THEIRS-1", MachineStatus.ANNOUNCED)
