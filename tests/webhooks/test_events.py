"""Each event type fires from the code path where the thing really happens — one machine or a
bulk move, a batch's last verdict, an alert rule, an invoice being issued, a curtailment event
announced, begun and ended, a hold nearing its end — and reaches the subscriptions that want
it: the tenant's own, and staff's."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from hosting import services as hosting_services
from hosting.billing import services as billing
from hosting.commissioning import checks, pipeline, runs
from hosting.curtailment import programs
from hosting.curtailment import services as curtailment
from hosting.curtailment.models import Event as CurtailmentEvent
from hosting.lifecycle import MachineStatus
from hosting.models import Quote
from hosting.readings import Board, Reading
from hosting.telemetry import alerting
from hosting.telemetry.models import TelemetryPolicy
from hosting.webhooks import services
from hosting.webhooks.models import Delivery, Event, EventType
from tests.billing.world import billing_floor, close, hours
from tests.billing.world import live as billed_live
from tests.curtailment.world import event as curtailment_event
from tests.curtailment.world import live_floor
from tests.factories import MachineFactory, ReservationFactory, TenantFactory, racked
from tests.telemetry.alert_world import DOWN, at, write
from tests.telemetry.alert_world import live as watched

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9/hooks"


@pytest.fixture
def hooks(floor, published):
    """The floor's tenant and staff subscribed to everything, another tenant too."""
    every = list(EventType.values)
    return {
        "tenant": services.subscribe(tenant=floor["contract"].tenant, url=URL, events=every),
        "staff": services.subscribe(tenant=None, url=URL, events=every),
        "other": services.subscribe(tenant=TenantFactory(), url=URL, events=every),
    }


def events_of(type: str) -> list[Event]:
    return list(Event.objects.filter(type=type).order_by("created_at", "pk"))


def receivers(hooks, event: Event) -> set[str]:
    names = {s.pk: name for name, s in hooks.items()}
    return {names[pk] for pk in Delivery.objects.filter(event=event).values_list("subscription_id", flat=True)}


def test_machine_status_moves_one_by_one_and_in_bulk(floor, hooks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        (one,) = racked(floor, 1)  # rack_machine: one machine
        received = [MachineFactory(contract=floor["contract"], status=MachineStatus.RECEIVED) for _ in range(3)]
        hosting_services.rack_machines(received, commission=False)  # the planner's bulk move: one event
        hosting_services.transition(one, MachineStatus.RECEIVED, reason="moved to the other hall")
    single, bulk, back = events_of(EventType.MACHINE_STATUS_CHANGED)
    assert single.tenant_id == floor["contract"].tenant_id
    assert single.payload["data"]["to_status"] == "racked"
    (moved,) = single.payload["data"]["machines"]
    assert (moved["id"], moved["serial"], moved["from_status"]) == (one.pk, one.serial, "received")
    assert moved["site"] == floor["site"].slug
    assert sorted(m["id"] for m in bulk.payload["data"]["machines"]) == sorted(m.pk for m in received)
    assert back.payload["data"]["machines"][0]["reason"] == "moved to the other hall"
    assert receivers(hooks, bulk) == {"tenant", "staff"}  # never the other tenant


def test_a_bulk_move_of_many_machines_makes_an_event_per_500(floor, hooks, django_capture_on_commit_callbacks):
    from hosting.webhooks import receivers as hooks_receivers

    machines = racked(floor, 3)
    hooks_receivers.MACHINES_PER_EVENT, saved = 2, hooks_receivers.MACHINES_PER_EVENT
    try:
        with django_capture_on_commit_callbacks(execute=True):
            runs.request(machines)  # racked → testing, all at once
    finally:
        hooks_receivers.MACHINES_PER_EVENT = saved
    chunks = [e for e in events_of(EventType.MACHINE_STATUS_CHANGED) if e.payload["data"]["to_status"] == "testing"]
    assert sorted(len(e.payload["data"]["machines"]) for e in chunks) == [1, 2]


def _verdict(run, passed: bool) -> pipeline.Result:
    outcome = checks.Outcome("hashing", passed, () if passed else ("slow",))
    reading = Reading(timezone.now(), True, 95.0, (Board(0, 31.7, 76, 70.0, 60.0),), (5400,) * 4)
    return pipeline.Result(run.pk, [outcome], [reading])


def test_a_batch_is_announced_once_when_its_last_verdict_is_stored(floor, hooks, django_capture_on_commit_callbacks):
    machines = racked(floor, 2)
    with django_capture_on_commit_callbacks(execute=True):
        batch = runs.start_batch(machines, contract=floor["contract"], label="April shipment")
    runs.dispatch(floor["site"].pk)
    token, claimed = runs.claim([r.pk for r in batch.runs.all()])
    first, second = sorted(claimed, key=lambda r: r.pk)
    with django_capture_on_commit_callbacks(execute=True):
        runs.finish([_verdict(first, True)], token)
    assert events_of(EventType.BATCH_FINISHED) == []  # one machine still under test
    with django_capture_on_commit_callbacks(execute=True):
        runs.finish([_verdict(second, False)], token)
        runs._announce_finished({batch.pk})  # a second worker seeing it finished too
    (finished,) = events_of(EventType.BATCH_FINISHED)
    data = finished.payload["data"]
    assert (data["id"], data["label"], data["machines"], data["passed"], data["failed"]) == (
        str(batch.pk), "April shipment", 2, 1, 1,
    )  # fmt: skip
    assert receivers(hooks, finished) == {"tenant", "staff"}


def test_an_alert_opened_and_resolved_by_the_rules(floor, hooks, django_capture_on_commit_callbacks):
    TelemetryPolicy.objects.create(site=floor["site"], poll_interval_s=60)
    (down,) = watched(floor, 1)
    for i in range(3):
        write([down], at(i), **DOWN)
        with django_capture_on_commit_callbacks(execute=True):
            alerting.evaluate(floor["site"].pk, at(i), now=at(i))
    (opened,) = events_of(EventType.ALERT_OPENED)
    assert (opened.payload["data"]["kind"], opened.payload["data"]["serial"]) == ("offline", down.serial)
    assert opened.payload["data"]["resolved_at"] is None
    with django_capture_on_commit_callbacks(execute=True):
        alerting.evaluate(floor["site"].pk, at(2), now=at(2))  # the same window again: nothing new
    write([down], at(3))  # it answers
    with django_capture_on_commit_callbacks(execute=True):
        alerting.evaluate(floor["site"].pk, at(3), now=at(3))
    assert len(events_of(EventType.ALERT_OPENED)) == 1
    (resolved,) = events_of(EventType.ALERT_RESOLVED)
    assert resolved.payload["data"]["id"] == opened.payload["data"]["id"]
    assert resolved.payload["data"]["resolved_at"] == at(3).isoformat()
    assert receivers(hooks, resolved) == {"tenant", "staff"}


def test_an_invoice_issued(floor, hooks, django_capture_on_commit_callbacks):
    april, a0, may = dt.date(2026, 4, 1), dt.datetime(2026, 4, 1, tzinfo=dt.UTC), dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    contract = billing_floor(floor)
    (machine,) = billed_live(floor, 1, since=a0 - dt.timedelta(days=1))
    hours(machine, a0, may)
    close(floor["site"], may)
    draft = billing.invoice_month(contract, april).invoice
    assert events_of(EventType.INVOICE_ISSUED) == []  # a draft is not announced
    with django_capture_on_commit_callbacks(execute=True):
        invoice = billing.issue(draft, now=may + dt.timedelta(hours=2))
        billing.issue(invoice)  # issuing again changes nothing
    (issued,) = events_of(EventType.INVOICE_ISSUED)
    data = issued.payload["data"]
    assert (data["id"], data["number"], data["total_amount"], data["due_on"]) == (
        invoice.pk, invoice.number, str(invoice.total_amount), invoice.due_on.isoformat(),
    )  # fmt: skip
    assert receivers(hooks, issued) == {"tenant", "staff"}


def test_a_curtailment_announced_begun_and_ended(floor, hooks, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(curtailment, "_dispatch", lambda *args, **kwargs: None)  # no miners to tell here
    live_floor(floor, 2, net=91)
    with django_capture_on_commit_callbacks(execute=True):
        event = curtailment_event(floor["site"], target_mw="0.005")
    (notice,) = events_of(EventType.CURTAILMENT_NOTICE)
    assert notice.payload["data"]["id"] == event.pk
    assert notice.tenant_id is None  # the site's event, told to the tenants it concerns
    assert receivers(hooks, notice) == {"tenant", "staff"}
    with django_capture_on_commit_callbacks(execute=True):
        curtailment.start_event(event.pk)
        curtailment.start_event(event.pk)  # started twice: announced once
    (started,) = events_of(EventType.CURTAILMENT_STARTED)
    assert started.payload["data"]["status"] == "active"
    curtailed = [
        e for e in events_of(EventType.MACHINE_STATUS_CHANGED) if e.payload["data"]["to_status"] == "curtailed"
    ]
    assert len(curtailed) == 1  # and the machines it stopped, as moves
    with django_capture_on_commit_callbacks(execute=True):
        programs.end_event_now(event)
        curtailment.end_event(event.pk)
    (ended,) = events_of(EventType.CURTAILMENT_ENDED)
    assert ended.payload["data"]["status"] == "ended"
    assert receivers(hooks, ended) == {"tenant", "staff"}


def test_a_curtailment_cancelled_before_it_began_is_announced_ended(floor, hooks, django_capture_on_commit_callbacks):
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        event = CurtailmentEvent.objects.create(
            site=floor["site"], target_mw=Decimal(1), starts_at=now + dt.timedelta(hours=1),
            deadline_at=now + dt.timedelta(hours=2), created_at=now,
        )  # fmt: skip
        programs.end_event_now(event, note="the QSE called it off")
    (ended,) = events_of(EventType.CURTAILMENT_ENDED)
    assert (ended.payload["data"]["id"], ended.payload["data"]["status"]) == (event.pk, "cancelled")


def test_a_hold_about_to_expire_is_announced_once(floor, hooks, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOKS_HOLD_NOTICE_HOURS = 24
    now = timezone.now()
    tenant = floor["contract"].tenant
    hold = ReservationFactory(
        site=floor["site"], kind="hold", it_kw=Decimal(50), expires_at=now + dt.timedelta(hours=3)
    )
    ReservationFactory(site=floor["site"], kind="hold", expires_at=now + dt.timedelta(days=3))  # not yet
    quote = Quote.objects.create(
        contact_email="a@example.com", it_kw=Decimal(50), start_on=dt.date(2027, 1, 1), term_months=12,
        status=Quote.Status.ACCEPTED, tenant=tenant, hold=hold, accepted_site=floor["site"],
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        services.announce_expiring_holds(now=now)
        services.announce_expiring_holds(now=now + dt.timedelta(minutes=5))  # the next beat: nothing new
    (expiring,) = events_of(EventType.HOLD_EXPIRING)
    assert expiring.payload["data"]["quote"] == str(quote.pk)
    assert expiring.payload["data"]["expires_at"] == hold.expires_at.isoformat()
    assert receivers(hooks, expiring) == {"tenant", "staff"}

    hold.expires_at = now + dt.timedelta(hours=20)  # extended: announced again as it nears its new end
    hold.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.announce_expiring_holds(now=now + dt.timedelta(hours=1))
    assert len(events_of(EventType.HOLD_EXPIRING)) == 2
