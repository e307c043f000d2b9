"""evaluate_programs turns a price or 4CP program's verdict into Event rows: one open event per
program, ended when the program says resume; evaluating again (or at once, on PostgreSQL)
creates nothing more."""

import datetime as dt
from decimal import Decimal

import pytest

from hosting.curtailment import programs, services, tasks_signals
from hosting.curtailment.models import (
    AvoidInterval,
    Event,
    EventStatus,
    Program,
    ProgramKind,
    SettlementPrice,
    SiteGrid,
)
from tests.factories import SiteFactory
from tests.races import race

T0 = dt.datetime(2026, 7, 15, 18, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)


def add_prices(point: str, *usd: float, start: dt.datetime = T0) -> None:
    for i, price in enumerate(usd):
        SettlementPrice.objects.update_or_create(
            settlement_point=point, interval_start=start + i * STEP, defaults={"price_usd_per_mwh": Decimal(str(price))}
        )


@pytest.fixture
def price_program(db):
    site = SiteFactory(slug="west", timezone="America/Chicago")
    SiteGrid.objects.create(site=site, settlement_point="LZ_WEST")
    return Program.objects.create(
        site=site, kind=ProgramKind.PRICE, name="Strike 150", strike_usd_per_mwh=Decimal("150"),
        hold_minutes=30, resume_minutes=30,
    )  # fmt: skip


def test_a_price_above_the_strike_for_the_hold_time_opens_one_event_and_then_ends_it(price_program):
    site = price_program.site
    add_prices("LZ_WEST", 200, 300, 400, 90, 80, 70)
    assert [c.decision for c in programs.evaluate_programs(site, T0 + STEP)] == ["hold"]
    assert not Event.objects.exists()
    (change,) = programs.evaluate_programs(site, T0 + 2 * STEP)
    assert change.decision == "curtail"
    event = Event.objects.get()
    assert (event.program, event.source, event.status) == (price_program, Event.Source.PRICE, EventStatus.SCHEDULED)
    assert (event.target, event.target_mw, event.starts_at, event.ends_at) == ("reach", 0, T0 + 2 * STEP, None)
    assert event.deadline_at == T0 + 2 * STEP + dt.timedelta(minutes=15)
    assert "400.00 $/MWh, above the strike 150.00 since 2026-07-15 18:00 UTC" in event.notes
    # Again at the same moment, and while it stays above: nothing more.
    for now in (T0 + 2 * STEP, T0 + 2 * STEP, T0 + 3 * STEP - dt.timedelta(seconds=1)):
        assert programs.evaluate_programs(site, now)[0].decision == "hold"
    assert Event.objects.count() == 1
    # Below from interval 3: resumed 30 minutes later.
    assert programs.evaluate_programs(site, T0 + 4 * STEP)[0].decision == "hold"
    (change,) = programs.evaluate_programs(site, T0 + 5 * STEP)
    assert (change.decision, change.event_id) == ("resume", event.pk)
    event.refresh_from_db()
    assert event.ends_at == T0 + 5 * STEP
    assert "resume: 70.00 $/MWh, below the strike" in event.notes
    assert programs.evaluate_programs(site, T0 + 5 * STEP)[0].decision == "hold"
    assert Event.objects.count() == 1


def test_a_new_spike_after_a_resume_opens_a_second_event(price_program):
    site = price_program.site
    add_prices("LZ_WEST", 200, 200, 200, 50, 50, 50, 500, 500, 500)
    programs.evaluate_programs(site, T0 + 2 * STEP)
    programs.evaluate_programs(site, T0 + 5 * STEP)
    programs.evaluate_programs(site, T0 + 8 * STEP)
    assert list(Event.objects.order_by("starts_at").values_list("starts_at", "ends_at")) == [
        (T0 + 2 * STEP, T0 + 5 * STEP),
        (T0 + 8 * STEP, None),
    ]


def test_inactive_programs_sites_without_a_point_and_other_sites_prices_do_nothing(price_program):
    add_prices("LZ_HOUSTON", 900, 900, 900)
    assert programs.evaluate_programs(price_program.site, T0 + 2 * STEP)[0].decision == "hold"
    add_prices("LZ_WEST", 900, 900, 900)
    Program.objects.filter(pk=price_program.pk).update(active=False)
    assert programs.evaluate_programs(price_program.site, T0 + 2 * STEP) == []
    Program.objects.filter(pk=price_program.pk).update(active=True)
    SiteGrid.objects.filter(site=price_program.site).update(settlement_point="")
    (change,) = programs.evaluate_programs(price_program.site, T0 + 2 * STEP)
    assert (change.decision, change.reason) == ("hold", "the site names no settlement point")
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_4cp_watch_window_opens_an_event_inside_and_ends_it_outside():
    site = SiteFactory(slug="abilene", timezone="America/Chicago")
    program = Program.objects.create(
        site=site, kind=ProgramKind.FOUR_CP, name="4CP", watch_from=dt.time(16, 0), watch_until=dt.time(17, 30)
    )
    programs.evaluate_programs(site, dt.datetime(2026, 8, 10, 20, 59, tzinfo=dt.UTC))  # 15:59 CDT
    assert not Event.objects.exists()
    programs.evaluate_programs(site, dt.datetime(2026, 8, 10, 21, 0, tzinfo=dt.UTC))  # 16:00 CDT
    event = Event.objects.get()
    assert (event.source, event.program) == (Event.Source.FOUR_CP, program)
    programs.evaluate_programs(site, dt.datetime(2026, 8, 10, 22, 30, tzinfo=dt.UTC))  # 17:30 CDT
    event.refresh_from_db()
    assert event.ends_at == dt.datetime(2026, 8, 10, 22, 30, tzinfo=dt.UTC)
    # October: the watch window is out of season; a marked interval still curtails.
    october = dt.datetime(2026, 10, 5, 21, 0, tzinfo=dt.UTC)
    programs.evaluate_programs(site, october)
    assert Event.objects.count() == 1
    AvoidInterval.objects.create(program=program, starts_at=october, ends_at=october + STEP)
    programs.evaluate_programs(site, october)
    assert Event.objects.filter(ends_at__isnull=True, starts_at=october).count() == 1


def test_the_beat_task_evaluates_every_site_with_a_triggered_program(price_program):
    add_prices("LZ_WEST", 999, 999, 999, start=dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - 2 * STEP)
    Program.objects.create(site=price_program.site, kind=ProgramKind.ERS_10, name="ERS-10", response_minutes=10)
    assert tasks_signals.evaluate_programs() == 1  # the price event opened (it starts once committed)
    assert tasks_signals.evaluate_programs() == 0
    assert Event.objects.get().source == Event.Source.PRICE


def test_the_database_refuses_a_second_open_event_for_a_program(price_program):
    from django.db import IntegrityError

    fields = {"site": price_program.site, "program": price_program, "source": "price", "target_mw": 0}
    Event.objects.create(**fields, starts_at=T0, deadline_at=T0)
    with pytest.raises(IntegrityError):
        Event.objects.create(**fields, starts_at=T0 + STEP, deadline_at=T0 + STEP)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_evaluations_at_the_same_moment_open_one_event_and_end_it_once():
    site = SiteFactory(slug="race", timezone="America/Chicago")
    SiteGrid.objects.create(site=site, settlement_point="HB_WEST")
    program = Program.objects.create(
        site=site, kind=ProgramKind.PRICE, name="p", strike_usd_per_mwh=Decimal("100"), hold_minutes=15,
        resume_minutes=15,
    )  # fmt: skip
    rounds = 12
    for n in range(rounds):
        start = T0 + n * 4 * STEP
        add_prices("HB_WEST", 500, 500, 10, 10, start=start)
        wins, _ = race(8, lambda i, now=start + STEP: programs.evaluate_programs(site, now))
        assert sum(change.decision == "curtail" for (change,) in wins) == 1, n
        assert Event.objects.filter(program=program, ends_at__isnull=True).count() == 1
        wins, _ = race(8, lambda i, now=start + 3 * STEP: programs.evaluate_programs(site, now))
        assert sum(change.decision == "resume" for (change,) in wins) == 1, n
        assert not Event.objects.filter(program=program, ends_at__isnull=True).exists()
    assert Event.objects.filter(program=program).count() == rounds


def test_a_new_event_is_started_by_the_services_once_committed_and_ended_on_resume(
    price_program, django_capture_on_commit_callbacks
):
    add_prices("LZ_WEST", 200, 200, 200, 10, 10, 10)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        programs.evaluate_programs(price_program.site, T0 + 2 * STEP)
    event = Event.objects.get()
    assert event.status == EventStatus.SCHEDULED  # not before the commit
    for callback in callbacks:
        callback()
    event.refresh_from_db()
    assert event.status == EventStatus.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        programs.evaluate_programs(price_program.site, T0 + 2 * STEP)  # nothing new
        programs.evaluate_programs(price_program.site, T0 + 5 * STEP)
    event.refresh_from_db()
    assert event.status == EventStatus.ENDED
    assert Event.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_qse_id_posted_at_once_records_one_event():
    site = SiteFactory(slug="qse-race")
    Program.objects.create(site=site, kind=ProgramKind.ERS_10, name="ERS-10")
    start = dt.datetime.now(dt.UTC)
    for n in range(10):
        wins, _ = race(
            8,
            lambda i, n=n: programs.post_event(
                site=site, kind="ers10", target="shed", target_mw=Decimal(2), starts_at=start, external_id=f"Q{n}"
            ),
        )
        assert sum(created for _, created in wins) == 1, n
        assert len({event.pk for event, _ in wins}) == 1
    assert Event.objects.count() == 10


def test_a_posted_event_with_a_later_start_is_started_and_ended_by_the_beat(db, django_capture_on_commit_callbacks):
    site = SiteFactory(slug="later")
    Program.objects.create(site=site, kind=ProgramKind.ERS_30, name="ERS-30")
    ends = T0 + 4 * STEP
    with django_capture_on_commit_callbacks(execute=True):
        now_event, _ = programs.post_event(
            site=site, kind="ers30", target="shed", target_mw=Decimal(1), starts_at=T0, now=T0
        )
        later, _ = programs.post_event(
            site=site, kind="ers30", target="shed", target_mw=Decimal(1), starts_at=T0 + STEP, ends_at=ends, now=T0
        )
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert statuses == {now_event.pk: EventStatus.ACTIVE, later.pk: EventStatus.SCHEDULED}  # waits for its start
    assert services.act_on_due_events(T0 + STEP - dt.timedelta(seconds=2)) == (0, 0, 0)
    assert services.act_on_due_events(T0 + STEP) == (1, 0, 0)
    assert services.act_on_due_events(T0 + STEP) == (0, 0, 0)  # started once
    assert Event.objects.filter(programs.is_open(T0 + 2 * STEP)).count() == 2
    assert services.act_on_due_events(ends) == (0, 1, 0)
    assert Event.objects.get(pk=later.pk).status == EventStatus.ENDED
    # Ended early by the QSE although it had an end of its own.
    event, ended = programs.end_event_now(now_event, now=T0 + 2 * STEP)
    assert ended
    assert event.ends_at == T0 + 2 * STEP


@pytest.mark.django_db
def test_an_event_whose_end_passed_before_it_started_is_cancelled_not_started():
    site = SiteFactory(slug="late")
    Program.objects.create(site=site, kind=ProgramKind.VOLUNTARY, name="v")
    event, _ = programs.post_event(
        site=site, kind="voluntary", target="reach", target_mw=Decimal(0), starts_at=T0 + STEP,
        ends_at=T0 + 2 * STEP, now=T0,
    )  # fmt: skip
    assert services.act_on_due_events(T0 + 2 * STEP) == (0, 0, 1)
    event.refresh_from_db()
    assert event.status == EventStatus.CANCELLED
