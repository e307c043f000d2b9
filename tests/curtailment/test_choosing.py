"""Choosing through the database: J/TH and draw from each machine's measured windows (nameplate
when unmeasured), hours used this month from earlier events, notice from the event's
announcement, a target to reach, and machines no longer live left alone."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from hosting.billing.models import ContractTerms
from hosting.curtailment import services
from hosting.curtailment.models import CurtailmentStatus, Event, EventMachine, EventStatus
from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.telemetry import storage
from tests.curtailment.world import event, live_floor
from tests.telemetry.store_world import window

pytestmark = pytest.mark.django_db


def measured(machine, watts: float, ths: float, n: int = 3, now=None) -> None:
    now = now or timezone.now()
    storage.write_windows(
        [window(machine, now - dt.timedelta(minutes=5 * (i + 1)), power_w=watts, hashrate_ths=ths) for i in range(n)]
    )


def chosen(ev) -> list[int]:
    return list(EventMachine.objects.filter(event=ev).order_by("rank").values_list("machine_id", flat=True))


def test_least_efficient_by_measured_windows_first_and_shed_from_measured_draw(floor):
    a, b, c, d = live_floor(floor, 4, net=74)
    measured(a, 3000, 120)  # 25 J/TH
    measured(b, 3400, 100)  # 34 J/TH
    measured(c, 3300, 110)  # 30 J/TH
    # d unmeasured: the S19 Pro's nameplate, 3,250 W / 110 TH/s = 29.5 J/TH
    ev = services.start_event(event(floor["site"], target_mw="0.009").pk)
    assert chosen(ev) == [b.pk, c.pk, d.pk]  # 3,364 + 3,264 + 3,214 W ≥ 9,000 W
    rows = {e.machine_id: e for e in EventMachine.objects.filter(event=ev)}
    assert (rows[b.pk].j_per_th, rows[b.pk].power_before_w, rows[b.pk].expected_shed_w) == (34.0, 3400, 3364)
    assert (rows[d.pk].j_per_th, rows[d.pk].power_before_w) == (29.55, 3250)
    assert ev.planned_mw == Decimal("0.010")
    assert ev.shortfall_mw == 0
    assert Machine.objects.get(pk=a.pk).status == MachineStatus.LIVE


def test_hours_used_this_month_and_notice_from_the_announcement(floor):
    machines = live_floor(floor, 3, net=75, max_curtailed_hours_month=10, curtailment_notice_min=30)
    site = floor["site"]
    now = timezone.now()
    earlier = Event.objects.create(
        site=site, target_mw=1, starts_at=now - dt.timedelta(hours=12), deadline_at=now - dt.timedelta(hours=12),
        status=EventStatus.ENDED,
    )  # fmt: skip
    # The first machine was curtailed for 10 hours earlier this month: its rights are used up.
    EventMachine.objects.create(
        event=earlier, machine=machines[0], contract=floor["contract"], rank=1, expected_shed_w=3000,
        status=CurtailmentStatus.RESUMED, sent_at=now - dt.timedelta(hours=11), resumed_at=now - dt.timedelta(hours=1),
    )  # fmt: skip
    if services.month_start(site.timezone, now) > now - dt.timedelta(hours=11):
        pytest.skip("the earlier event would fall in last month")
    # Announced 20 minutes before it starts: under the contract's 30 minutes' notice.
    short = event(site, target_mw="1")
    Event.objects.filter(pk=short.pk).update(created_at=now - dt.timedelta(minutes=20))
    started = services.start_event(short.pk)
    assert chosen(started) == []
    assert started.shortfall_mw == 1
    # Announced 40 minutes before: the two with hours left are curtailed.
    long = event(site, target_mw="1")
    Event.objects.filter(pk=long.pk).update(created_at=now - dt.timedelta(minutes=40))
    assert sorted(chosen(services.start_event(long.pk))) == [machines[1].pk, machines[2].pk]


def test_a_target_to_reach_sheds_the_load_over_it_and_not_curtailable_contracts_are_left(floor):
    machines = live_floor(floor, 4, net=76)
    for m in machines:
        measured(m, 3250, 110)
    ev = services.start_event(event(floor["site"], target_mw="0.007", target=Event.Target.REACH).pk)
    # 13,000 W measured, brought down to 7,000 W: 6,000 W to shed, two machines.
    assert len(chosen(ev)) == 2
    ContractTerms.objects.filter(contract=floor["contract"]).update(curtailment_priority=None)
    services.end_event(ev.pk)
    none = services.start_event(event(floor["site"], target_mw="0.001").pk)
    assert chosen(none) == []
    assert none.shortfall_mw == Decimal("0.001")


def test_an_event_not_yet_due_waits_for_the_beat(floor):
    machines = live_floor(floor, 2, net=77)
    now = timezone.now()
    ev = Event.objects.create(
        site=floor["site"], target_mw=1, starts_at=now + dt.timedelta(minutes=10),
        deadline_at=now + dt.timedelta(minutes=20), ends_at=now + dt.timedelta(minutes=30),
    )  # fmt: skip
    assert services.start_event(ev.pk, now=now).status == EventStatus.SCHEDULED  # staff's form calls it at once
    assert chosen(ev) == []
    services.check_events(now=now + dt.timedelta(minutes=5))
    assert Event.objects.get(pk=ev.pk).status == EventStatus.SCHEDULED
    services.check_events(now=now + dt.timedelta(minutes=10))
    assert Event.objects.get(pk=ev.pk).status == EventStatus.ACTIVE
    assert sorted(chosen(ev)) == [m.pk for m in machines]
    services.check_events(now=now + dt.timedelta(minutes=30))
    assert Event.objects.get(pk=ev.pk).status == EventStatus.ENDED
    assert set(Machine.objects.filter(pk__in=[m.pk for m in machines]).values_list("status", flat=True)) == {
        MachineStatus.LIVE
    }


@pytest.mark.parametrize("ending", [False, True])
def test_the_commands_are_queued_before_the_machines_moves_webhooks(floor, ending, django_capture_on_commit_callbacks):
    """Once the start (or end) commits, its commands are published first: the deadline waits for
    them, not for the webhooks of 10,000 machines moved."""
    live_floor(floor, 2, net=75)
    ev = event(floor["site"], target_mw="1")
    if ending:
        with django_capture_on_commit_callbacks(execute=False):  # its stops never sent: resumes are
            services.start_event(ev.pk)
        EventMachine.objects.filter(event=ev).update(status=CurtailmentStatus.CURTAILED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        (services.end_event if ending else services.start_event)(ev.pk)
    names = [set(c.__code__.co_names) if hasattr(c, "__code__") else set() for c in callbacks]
    assert "_dispatch" in names[0]
    assert len(callbacks) == 3  # the commands, the machines moved (webhooks), the event's signal
