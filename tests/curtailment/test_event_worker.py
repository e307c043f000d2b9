"""End to end: an event starts, a real Celery worker on the site's queue tells the emulated
miners to stop through pyasic over real TCP, reads their PDU outlets over SNMP, and the event
shows its machines verified off by their measured watts and the MW achieved; a miner that
answers success and goes on hashing is caught by its watts and told again, a bounded number
of times. Then the event ends and they are resumed, most efficient first."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from hosting import queues
from hosting.commissioning.emulator import REALISTIC, Fault, running
from hosting.curtailment import services
from hosting.curtailment.models import (
    Command,
    CurtailmentStatus,
    Event,
    EventMachine,
    EventSample,
    EventStatus,
    Program,
    ProgramKind,
)
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, MachineEvent
from tests.api.conftest import client_for
from tests.curtailment.world import emulated, event, live_floor
from tests.factories import UserFactory
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CS = CurtailmentStatus
WORKER_ENV = {
    "CURTAILMENT_TIMEOUT_S": "3",
    "CURTAILMENT_SETTLE_MS": "300",
    "CURTAILMENT_BACKOFF_MS": "100",
    "CURTAILMENT_RETRIES": "2",
}


def statuses(ev) -> dict[int, str]:
    return dict(EventMachine.objects.filter(event=ev).values_list("machine_id", "status"))


def test_stop_verify_by_watts_flag_the_stubborn_one_then_resume(floor):
    site = floor["site"]
    machines = live_floor(floor, 5, net=71)
    stubborn = machines[-1]
    fleet, pdus = emulated(site, machines, faults={stubborn.serial: {Fault.IGNORES_STOP}})
    ev = event(site, target_mw="1", deadline_s=2)
    queue = queues.control_queue_for(site.slug)
    with running(fleet, pdus), celery_worker(queues=(queue,), extra_env=WORKER_ENV, purge_first=True) as worker:
        started = services.start_event(ev.pk)
        # Everything was chosen (1 MW is far more than five machines): the rest is the shortfall.
        assert started.status == EventStatus.ACTIVE
        assert float(started.planned_mw) == pytest.approx(5 * (3250 - 36) / 1e6, abs=0.001)
        assert float(started.shortfall_mw) == pytest.approx(1 - 5 * (3250 - 36) / 1e6, abs=0.001)
        assert set(Machine.objects.filter(pk__in=[m.pk for m in machines]).values_list("status", flat=True)) == {
            MachineStatus.CURTAILED
        }
        healthy = [m.pk for m in machines[:-1]]
        wait_for(
            lambda: all(s == CS.VERIFIED for m, s in statuses(ev).items() if m in healthy),
            timeout_s=30,
            what="the healthy machines verified off",
        )

        # The beat verifies open events every 30 s: here, until the stubborn one has had its retries.
        def retried_out():
            services.check_events()
            em = EventMachine.objects.get(event=ev, machine=stubborn)
            return em.status == CS.STILL_DRAWING and em.attempts == 1 + settings.CURTAILMENT_RETRIES

        wait_for(retried_out, timeout_s=40, interval_s=1.5, what="the stubborn miner flagged and retried")
        asleep_w = {ip: fleet.commands(ip) for ip in (m.ip for m in machines)}

        # The event ends: every machine live again, resume sent to each that had stopped.
        ended = services.end_event(ev.pk)
        assert ended.status == EventStatus.ENDED
        wait_for(lambda: set(statuses(ev).values()) == {CS.RESUMED}, timeout_s=30, what="every machine resumed")
        after = {m.ip: fleet.commands(m.ip) for m in machines}
        output = worker.output()

    # Each healthy miner took one stop, answered it, and its outlet fell to its sleep draw.
    for m in machines[:-1]:
        em = EventMachine.objects.get(event=ev, machine=m)
        assert em.attempts == 1
        assert em.power_before_w == 3250  # unmeasured: nameplate
        assert 0 < em.power_after_w < 36 * 1.1 * 1.01 + 1
        assert em.verified_at is not None
        assert em.sent_at <= em.verified_at
        stop, resume = Command.objects.filter(event_machine=em).order_by("sent_at")
        assert (stop.command, stop.ok, resume.command, resume.ok) == ("stop_mining", True, "resume_mining", True)
        assert [(c.action, c.outcome) for c in asleep_w[m.ip]] == [("stop", "done")]
        assert [(c.action, c.outcome) for c in after[m.ip]] == [("stop", "done"), ("resume", "done")]
    # The stubborn one answered success three times and went on drawing: flagged by its watts.
    em = EventMachine.objects.get(event=ev, machine=stubborn)
    assert em.power_after_w > 3000
    assert "still drawing" in em.last_error
    stubborn_commands = list(Command.objects.filter(event_machine=em).values_list("command", "ok"))
    assert stubborn_commands.count(("stop_mining", True)) == 3
    assert [c.outcome for c in asleep_w[stubborn.ip]] == ["ignored"] * 3
    # Achieved MW over time, from the PDU: four machines off at the last sample before the end.
    samples = list(EventSample.objects.filter(event=ev).order_by("at"))
    assert len(samples) >= 2
    best = max(samples, key=lambda s: s.achieved_mw)
    assert best.machines_off == 4
    assert float(best.achieved_mw) == pytest.approx(4 * (3250 - 36) / 1e6, abs=0.002)
    assert float(best.site_load_mw) == pytest.approx((4 * 36 + 3250) / 1e6, abs=0.001)
    assert best.target_mw == 1
    # Both moves went through the lifecycle, recorded.
    for m in machines:
        moves = MachineEvent.objects.filter(machine=m).order_by("at", "pk").values_list("from_status", "to_status")
        moves = list(moves)
        assert moves[-2:] == [("live", "curtailed"), ("curtailed", "live")]
    assert set(Machine.objects.filter(pk__in=[m.pk for m in machines]).values_list("status", flat=True)) == {
        MachineStatus.LIVE
    }
    assert "Traceback" not in output


def test_a_qse_event_posted_through_the_api_is_shed_by_the_sites_worker_and_ended_through_the_api(floor):
    """The QSE's service account posts an ERS-10 event for 10 kW; the request starts it (on
    commit), the site's worker stops the least efficient miners that reach the target over
    real TCP (realistic latency), the outlets show them asleep; the QSE ends it through the API
    and every machine is resumed."""
    site = floor["site"]
    Program.objects.create(site=site, kind=ProgramKind.ERS_10, name="ERS-10", response_minutes=10)
    machines = live_floor(floor, 4, net=72)
    fleet, pdus = emulated(site, machines, latency=REALISTIC)
    account = UserFactory(is_staff=True)
    account.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="curtailment", codename__in=["add_event", "change_event"])
    )
    qse = client_for(account)
    url = "/api/v1/curtailment/events/"
    queue = queues.control_queue_for(site.slug)
    with running(fleet, pdus), celery_worker(queues=(queue,), extra_env=WORKER_ENV, purge_first=True) as worker:
        posted = qse.post(
            url,
            {"site": site.slug, "program": "ers10", "target": "shed", "target_mw": "0.01",
             "starts_at": timezone.now().isoformat(), "external_id": "ERCOT-ERS-E2E"},
            format="json",
        )  # fmt: skip
        assert posted.status_code == 201, posted.content
        ev = Event.objects.get(pk=posted.json()["id"])
        assert ev.status == EventStatus.ACTIVE  # started by the request, once committed
        # 3 machines × (3,250 − 36) W fall short of 10 kW: all four are chosen.
        assert qse.get(f"{url}{ev.pk}/").json()["machine_count"] == 4
        wait_for(lambda: set(statuses(ev).values()) == {CS.VERIFIED}, timeout_s=60, what="every machine verified off")

        def sampled():  # the beat's whole-site reading: achieved MW against the target
            services.check_events()
            return EventSample.objects.filter(event=ev, machines_off=4).exists()

        wait_for(sampled, timeout_s=30, interval_s=1.5, what="a sample of the event with every machine off")
        asleep = {m.ip: fleet.commands(m.ip) for m in machines}
        listed = qse.get(f"{url}{ev.pk}/machines/", {"status": "verified"}).json()
        assert listed["count"] == 4
        assert all(0 < row["power_after_w"] < 45 for row in listed["results"])
        ended = qse.post(f"{url}{ev.pk}/end/")
        assert ended.status_code == 200
        assert ended.json()["status"] == EventStatus.ENDED
        wait_for(lambda: set(statuses(ev).values()) == {CS.RESUMED}, timeout_s=60, what="every machine resumed")
        after = {m.ip: fleet.commands(m.ip) for m in machines}
        output = worker.output()
    for m in machines:
        assert [(c.action, c.outcome) for c in asleep[m.ip]] == [("stop", "done")]
        assert [(c.action, c.outcome) for c in after[m.ip]] == [("stop", "done"), ("resume", "done")]
    assert set(Machine.objects.filter(pk__in=[m.pk for m in machines]).values_list("status", flat=True)) == {
        MachineStatus.LIVE
    }
    sample = EventSample.objects.filter(event=ev).order_by("-achieved_mw").first()
    assert sample is not None
    assert sample.machines_off == 4
    assert float(sample.achieved_mw) >= 0.01 * 1.2  # 4 × ~3.2 kW
    assert "Traceback" not in output


def test_whatsminers_shed_the_last_kilowatts_by_a_power_limit_verified_by_their_outlet(floor):
    """8 kW from three M30S++ (3,472 W nameplate, 42 W asleep): two stop (6,860 W), the third is
    limited to 3,472 − 1,140 = 2,332 W over btminer's privileged API; its outlet is judged
    against the limit. Ended, the limit goes back up to its nameplate."""
    site = floor["site"]
    machines = live_floor(floor, 3, net=73, model="whatsminer-m30s-plus-plus")
    fleet, pdus = emulated(site, machines)
    ev = event(site, target_mw="0.008", deadline_s=30)
    queue = queues.control_queue_for(site.slug)
    with running(fleet, pdus), celery_worker(queues=(queue,), extra_env=WORKER_ENV, purge_first=True) as worker:
        services.start_event(ev.pk)
        rows = {e.machine_id: e for e in EventMachine.objects.filter(event=ev)}
        limited = machines[-1]
        assert [(rows[m.pk].action, rows[m.pk].power_limit_w) for m in machines] == [
            ("stop_mining", None), ("stop_mining", None), ("set_power_limit", 2332),
        ]  # fmt: skip
        wait_for(lambda: set(statuses(ev).values()) == {CS.VERIFIED}, timeout_s=30, what="all three verified")
        during = {m.ip: fleet.commands(m.ip) for m in machines}
        services.end_event(ev.pk)
        wait_for(lambda: set(statuses(ev).values()) == {CS.RESUMED}, timeout_s=30, what="all three resumed")
        after = fleet.commands(limited.ip)
        output = worker.output()
    assert 0 < EventMachine.objects.get(event=ev, machine=limited).power_after_w <= 2332 + 100
    assert [(c.action, c.outcome) for c in during[limited.ip]] == [("power_limit", "done")]
    assert [(c.action, c.outcome) for c in during[machines[0].ip]] == [("stop", "done")]
    assert [(c.action, c.outcome) for c in after] == [("power_limit", "done"), ("power_limit", "done")]
    assert "3472" in str(after[-1].params)  # back up to its nameplate
    sent = list(Command.objects.filter(event_machine__machine=limited).order_by("sent_at").values_list("command", "ok"))
    assert sent == [("set_power_limit", True), ("set_power_limit", True)]
    assert "Traceback" not in output
