"""Every area's changes are in the log with before/after and who acted — a session user,
an API token, a task — the bulk writes too (the ledger, the pipeline, invoicing,
curtailment), and one request's changes share one id, echoed as X-Request-ID."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from capacity import ledger
from capacity.models import Reservation, Site
from changelog import context, record
from hosting import services
from hosting.billing import services as billing
from hosting.billing.models import Invoice, InvoiceStatus
from hosting.commissioning import checks, pipeline, runs
from hosting.curtailment import services as curtailment
from hosting.curtailment.models import Event, EventStatus
from hosting.models import CommissioningPolicy, Machine
from hosting.readings import Board, Reading
from tests.changes.conftest import entries_of, last_of
from tests.factories import PhaseFactory, ReservationFactory, racked

pytestmark = pytest.mark.django_db
A, U, D = LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE


def test_a_save_records_each_changed_field_before_and_after_and_the_actor(floor, staff):
    site = floor["site"]
    with context.acting(user=staff) as acting:
        site.pue = Decimal("1.10")
        ledger.save_site(site)
    entry = last_of(site)
    assert (entry.action, entry.actor, entry.cid) == (U, staff, acting.cid)
    assert list(entry.changes) == ["pue"]
    assert (Decimal(entry.changes["pue"][0]), entry.changes["pue"][1]) == (Decimal("1.00"), "1.10")
    # The ledger's cache versions moved too, but are not changes anyone made.
    assert Site.objects.get(pk=site.pk).ledger_version > 0
    assert not [e for e in entries_of(site) if "ledger_version" in (e.changes or {})]


def test_create_and_delete_are_recorded_with_every_field(floor, staff):
    with context.acting(user=staff):
        policy = CommissioningPolicy.objects.create(site=floor["site"], burn_in_s=600)
        policy_pk = policy.pk
        policy.delete()
    created, deleted = LogEntry.objects.filter(object_id=policy_pk, content_type__model="commissioningpolicy")
    assert {created.action, deleted.action} == {A, D}
    create = created if created.action == A else deleted
    assert create.changes["burn_in_s"] == [None, 600]
    assert create.actor == staff


def test_the_ledger_records_slots_it_fills_and_empties_in_bulk(floor, staff):
    slot = floor["slots"][0]
    with context.acting(user=staff) as acting:
        ledger.assign_slot(slot, watts=3250, occupant="machine:99")
        ledger.release_slots([slot.pk])
    filled, emptied = entries_of(slot, action=U)
    assert filled.changes == {"allocated_w": [0, 3250], "occupant": [None, "machine:99"]}
    assert emptied.changes == {"allocated_w": [3250, 0], "occupant": ["machine:99", None]}
    assert {filled.cid, emptied.cid} == {acting.cid}
    assert (filled.actor, filled.additional_data["via"]) == (staff, "ledger.assign_slots")


def test_reserving_over_an_expired_hold_records_its_release(floor):
    PhaseFactory(site=floor["site"], mw=Decimal("10"))
    now = timezone.now()
    hold = ReservationFactory(
        site=floor["site"],
        it_kw=Decimal("10"),
        kind="hold",
        reference="quote:1",
        expires_at=now - dt.timedelta(hours=1),
    )
    with context.acting(by="task hosting.test") as acting:
        fresh = ledger.reserve(
            floor["site"], it_kw=Decimal("20"), starts_on=dt.date.today(), ends_on=None, kind="firm",
            reference="quote:1", now=now,
        )  # fmt: skip
    (released,) = [e for e in entries_of(hold) if e.action == U]
    assert released.changes["released_at"][0] is None
    assert released.changes["released_at"][1] is not None
    assert (released.additional_data, released.cid) == (
        {"by": "task hosting.test", "via": "ledger.reserve"},
        acting.cid,
    )
    assert entries_of(fresh)[0].action == A
    release = ledger.release(fresh)
    assert last_of(release).changes["released_at"][0] is None


def run_finished(machine, *, passes: bool):
    (run,) = runs.request([machine])
    runs.dispatch(machine.contract.site_id)
    token, _ = runs.claim([run.pk])
    outcomes = [checks.Outcome("identity", True, (), {"model": "S19"}), checks.Outcome("hashing", passes, ())]
    reading = Reading(timezone.now(), True, 73.4, (Board(0, 36.7, 76, 70.0, 60.0),), (5400,) * 4)
    runs.finish([pipeline.Result(run.pk, outcomes, [reading])], token)


def test_the_pipelines_status_moves_are_recorded_in_bulk(floor):
    (machine,) = racked(floor, 1)
    run_finished(machine, passes=False)
    moves = [e.changes["status"] for e in entries_of(machine) if "status" in (e.changes or {})]
    assert moves == [[None, "received"], ["received", "racked"], ["racked", "testing"], ["testing", "failed"]]
    racking = next(e for e in entries_of(machine) if "slot" in (e.changes or {}))
    assert racking.changes["slot"] == [None, machine.slot_id]
    assert entries_of(machine)[-1].additional_data == {"via": "services.move_machines"}


def test_curtailment_start_and_end_record_the_machines_and_the_event(floor):
    from tests.curtailment.world import event, live_floor

    a, b = live_floor(floor, 2, net=81)
    ev = event(floor["site"], target_mw="0.006")
    with context.acting(by="task curtailment.act") as acting:
        curtailment.start_event(ev.pk)
        curtailment.end_event(ev.pk)
    for machine in (a, b):
        moves = [e.changes["status"] for e in entries_of(machine) if e.cid == acting.cid]
        assert moves == [["live", "curtailed"], ["curtailed", "live"]]
    statuses = [e.changes["status"] for e in entries_of(ev) if "status" in e.changes]
    assert statuses == [[None, "scheduled"], ["scheduled", "active"], ["active", "ended"]]


def test_an_event_cancelled_in_bulk_is_recorded(floor):
    now = timezone.now()
    ev = Event.objects.create(
        site=floor["site"], target_mw=Decimal(1), starts_at=now - dt.timedelta(hours=2),
        ends_at=now - dt.timedelta(hours=1), deadline_at=now - dt.timedelta(hours=2),
    )  # fmt: skip
    curtailment.act_on_due_events(now)
    assert Event.objects.get(pk=ev.pk).status == EventStatus.CANCELLED
    entry = last_of(ev)
    assert entry.changes == {"status": ["scheduled", "cancelled"]}
    assert entry.additional_data["via"] == "curtailment.act_on_due_events"


def test_invoicing_records_the_invoices_made_and_issued_in_bulk_and_a_void(floor, staff):
    from tests.billing.test_golden import april

    contract, *_ = april(floor)
    with context.acting(by="task billing.run_invoices") as acting:
        billing.run_invoices(now=dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC))
    invoice = Invoice.objects.get(contract=contract)
    made, issued = entries_of(invoice)
    assert (made.action, made.changes["status"], made.additional_data["via"]) == (
        A,
        [None, "draft"],
        "billing.invoice_site",
    )
    assert issued.changes["status"] == ["draft", "issued"]
    assert issued.changes["number"] == [None, invoice.number]
    assert {made.cid, issued.cid} == {acting.cid}
    assert "total_amount" not in made.changes  # states, not figures
    with context.acting(user=staff):
        billing.void(invoice, reason="wrong rate")
    void = last_of(invoice)
    assert void.changes["status"] == ["issued", InvoiceStatus.VOID]
    assert void.changes["reason"] == ["", "wrong rate"]
    assert void.actor == staff


def test_models_not_recorded_and_a_switched_off_log_write_no_entries(floor):
    """Telemetry, samples and events are not recorded (volume); a seed may switch the log off."""
    (machine,) = racked(floor, 1)
    before = LogEntry.objects.count()
    events = list(machine.events.all())
    assert not record.recorded(type(events[0]))
    record.bulk_update(events, ["reason"], via="test")
    with disable_auditlog():
        machine.notes = "quiet"
        record.bulk_update([machine], ["notes"], via="test")
        machine.save()
    assert LogEntry.objects.count() == before
    machine.notes = "heard"
    record.bulk_update([machine], ["notes"], via="test")
    assert last_of(machine).changes == {"notes": ["quiet", "heard"]}


# --- through HTTP: the session, the token, the request id -----------------------------------------


def upload(client, contract, data: bytes, **headers):
    url = reverse("portal:contract", args=[contract.pk])
    body = {"file": SimpleUploadedFile("list.csv", data, "text/csv"), "tracking_number": "1Z999"}
    return client.post(url, body, headers=headers)


def test_one_requests_changes_share_its_id_and_the_session_user(client, floor, tenant_user):
    PhaseFactory(site=floor["site"], mw=Decimal("10"))
    contract = services.sign_contract(floor["contract"])
    client.force_login(tenant_user)
    data = b"serial,mac,model\nSN-1,02:aa:00:00:00:01,antminer-s19-pro\nSN-2,02:aa:00:00:00:02,antminer-s19-pro\n"
    response = upload(client, contract, data)
    assert response.status_code == 302
    cid = response["X-Request-ID"]
    machines = list(Machine.objects.order_by("serial"))
    assert len(machines) == 2
    for machine in machines:
        made, shipped = entries_of(machine)
        assert (made.action, made.changes["serial"], made.changes["status"]) == (
            A,
            [None, machine.serial],
            [None, "announced"],
        )
        assert shipped.changes["status"] == ["announced", "in_transit"]
        assert {made.cid, shipped.cid} == {cid}
        assert {made.actor, shipped.actor} == {tenant_user}
        assert made.remote_addr == "127.0.0.1"


def test_a_sane_incoming_request_id_is_kept_and_a_strange_one_replaced(client, floor, tenant_user):
    client.force_login(tenant_user)
    url = reverse("portal:contract", args=[floor["contract"].pk])
    assert client.get(url, headers={"X-Request-ID": "lb-4f2a.9"})["X-Request-ID"] == "lb-4f2a.9"
    for strange in ["a b", "x" * 200, "<script>", "id\r\nSet-Cookie: x"]:
        answered = client.get(url, headers={"X-Request-ID": strange})["X-Request-ID"]
        assert answered != strange
        assert context.sane_cid(answered) == answered


def test_an_api_tokens_changes_carry_its_user_and_prefix(floor, tenant_user):
    from rest_framework.test import APIClient

    from hosting.models import ApiToken
    from tests.api.conftest import priced_site
    from tests.api.test_quotes import START  # noqa: F401 - the quotes tests' start date

    priced_site("siberia", mw="20", rate="0.04500", country="RU", slots=16)
    api = APIClient()
    token, key = ApiToken.issue(tenant_user, "automation")
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    asked = api.post(
        "/api/v1/quotes/",
        {
            "machine_model": "antminer-s19",
            "quantity": 10,
            "start_on": str(dt.date.today() + dt.timedelta(days=30)),
            "term_months": 12,
            "contact_email": "a@example.com",
        },
        format="json",
    )
    assert asked.status_code == 201, asked.json()
    response = api.post(f"/api/v1/quotes/{asked.json()['id']}/accept/", {"site": "siberia"}, format="json")
    assert response.status_code == 200, response.json()
    hold = Reservation.objects.get(reference=f"quote:{asked.json()['id']}")
    (made,) = entries_of(hold)
    assert (made.actor, made.additional_data, made.cid) == (
        tenant_user,
        {"by": f"token {token.prefix}"},
        response["X-Request-ID"],
    )
    assert made.changes["kind"] == [None, "hold"]


def test_a_bulk_update_of_alike_rows_and_of_mixed_rows_writes_and_records_each(floor, django_assert_max_num_queries):
    """Thousands of machines moved to one status at one moment go out as one plain UPDATE per
    batch (not a CASE per row); rows with different values still go through bulk_update."""
    machines = racked(floor, 3)
    for m in machines:
        m.notes = "same"
    with django_assert_max_num_queries(5) as queries:  # savepoint, read before, one UPDATE, entries, release
        assert record.bulk_update(machines, ["notes"], via="test") == 3
    assert not any("CASE" in q["sql"] for q in queries.captured_queries)
    assert set(Machine.objects.filter(pk__in=[m.pk for m in machines]).values_list("notes", flat=True)) == {"same"}
    assert [last_of(m).changes for m in machines] == [{"notes": ["", "same"]}] * 3

    machines[0].notes, machines[1].ip = "odd", "10.9.9.9"
    with django_assert_max_num_queries(8) as queries:
        assert record.bulk_update(machines, ["notes", "ip"], via="test") == 3
    assert any("CASE" in q["sql"] for q in queries.captured_queries)
    after = {m.pk: (m.notes, m.ip) for m in Machine.objects.filter(pk__in=[m.pk for m in machines])}
    assert after == {m.pk: (m.notes, m.ip) for m in machines}
    assert last_of(machines[0]).changes == {"notes": ["same", "odd"]}
    assert list(last_of(machines[1]).changes) == ["ip"]
