"""Choosing machines for a target, pure: golden cases worked by hand.

S19 Pro: 3,250 W nameplate, 110 TH/s (29.5 J/TH); sleep draw 36 W, so a machine measured at
3,250 W sheds 3,214 W."""

from hosting.curtailment import selection
from hosting.curtailment.selection import Candidate, choose, release_offsets_s, resume_order


def c(machine_id, *, priority=1, max_h=None, used=0.0, notice=0, watts=None, j=None, circuit=None, contract=1):
    return Candidate(
        machine_id=machine_id, contract_id=contract, priority=priority, max_hours_month=max_h, hours_used=used,
        notice_min=notice, nameplate_w=3250, nameplate_ths=110, sleep_w=36, measured_w=watts,
        measured_j_per_th=j, circuit_id=circuit,
    )  # fmt: skip


def ids(plan):
    return [x.machine_id for x in plan.chosen]


def test_least_efficient_first_until_the_target_is_reached():
    fleet = [c(1, j=25.0, watts=3000), c(2, j=34.0, watts=3400), c(3, j=30.0, watts=3300), c(4, j=21.0, watts=2900)]
    plan = choose(fleet, target_w=6000, notice_given_min=0)
    # 34 J/TH sheds 3,364 W, then 30 J/TH 3,264 W: 6,628 W ≥ 6,000 W, stop there.
    assert ids(plan) == [2, 3]
    assert [x.rank for x in plan.chosen] == [1, 2]
    assert [x.expected_shed_w for x in plan.chosen] == [3364, 3264]
    assert plan.planned_w == 6628
    assert plan.shortfall_w == 0


def test_unmeasured_machines_rank_by_nameplate_efficiency_and_shed_nameplate_minus_sleep():
    plan = choose([c(1, j=31.0, watts=3300), c(2), c(3, j=28.0, watts=3100)], target_w=10_000, notice_given_min=0)
    assert ids(plan) == [1, 2, 3]  # 31, 29.5 (3,250 / 110), 28 J/TH
    assert plan.chosen[1].j_per_th == 3250 / 110
    assert plan.chosen[1].expected_shed_w == 3214
    assert plan.chosen[1].power_before_w == 3250


def test_priority_before_efficiency():
    fleet = [c(1, priority=2, j=40.0), c(2, priority=1, j=22.0), c(3, priority=1, j=26.0)]
    assert ids(choose(fleet, 100_000, 0)) == [3, 2, 1]


def test_rights_not_curtailable_hours_used_and_notice():
    fleet = [
        c(1, priority=None, j=40.0),  # not curtailable
        c(2, max_h=10, used=10.0, j=39.0),  # its hours this month are used up
        c(3, max_h=10, used=9.5, j=38.0),  # half an hour left: eligible
        c(4, notice=30, j=37.0),  # wants 30 minutes' notice, got 20
        c(5, notice=20, j=36.0),  # got just enough
        c(6, max_h=None, used=500.0, j=20.0),  # no monthly limit
    ]
    plan = choose(fleet, 100_000, notice_given_min=20)
    assert ids(plan) == [3, 5, 6]
    assert plan.ineligible == {1: selection.NOT_CURTAILABLE, 2: selection.HOURS_USED, 4: selection.NOTICE}


def test_shortfall_when_rights_do_not_reach_the_target():
    plan = choose([c(1, watts=3250, j=30.0), c(2, priority=None), c(3, watts=2036, j=29.0)], 10_000, 0)
    assert ids(plan) == [1, 3]
    assert plan.planned_w == 3214 + 2000
    assert plan.shortfall_w == 10_000 - 5214


def test_nothing_to_shed_chooses_nothing():
    plan = choose([c(1)], 0, 0)
    assert (plan.chosen, plan.planned_w, plan.shortfall_w) == ((), 0, 0)


def test_resume_most_efficient_first():
    plan = choose([c(1, j=25.0), c(2, j=34.0), c(3, j=30.0)], 100_000, 0)
    assert ids(plan) == [2, 3, 1]
    assert [x.machine_id for x in resume_order(plan.chosen)] == [1, 3, 2]


def test_release_offsets_follow_the_ramp_and_space_each_circuit():
    # 1 MW/min = 16,666.7 W/s: each 3,333 W machine waits for the watts before it.
    rows = [(10, 3333.4), (11, 3333.4), (10, 3333.4)]
    assert release_offsets_s(rows, 1_000_000 / 60, circuit_gap_s=0.1) == [0.0, 0.2, 0.4]
    # No ramp: all at once, but two of one circuit 0.5 s apart.
    assert release_offsets_s(rows, None, circuit_gap_s=0.5) == [0.0, 0.0, 0.5]


def test_the_last_machine_needed_is_limited_not_stopped_when_its_firmware_takes_a_limit():
    """Whatsminers (limit floor 55 % of 3,472 W = 1,910 W): the target wants 3,214 + 1,000 W.
    The S19 stops (3,214 W); the M30S++ at 3,400 W is limited to 2,400 W — sheds 1,000, not 3,358."""
    s19 = c(1, j=40.0, watts=3250)
    m30 = Candidate(
        machine_id=2, contract_id=1, priority=1, max_hours_month=None, hours_used=0.0, notice_min=0,
        nameplate_w=3472, nameplate_ths=112, sleep_w=42, measured_w=3400, measured_j_per_th=30.0,
        power_limit_min_w=selection.power_limit_min_w("microbt", 3472),
    )  # fmt: skip
    assert m30.power_limit_min_w == 1910
    plan = choose([s19, m30], target_w=4214, notice_given_min=0)
    chosen = [(x.machine_id, x.power_limit_w, x.expected_shed_w) for x in plan.chosen]
    assert chosen == [(1, None, 3214), (2, 2400, 1000)]
    assert (plan.planned_w, plan.shortfall_w) == (4214, 0)
    # Needing more than the floor allows (3,400 − 1,910 = 1,490 W at most by limiting): stopped.
    plan = choose([s19, m30], target_w=3214 + 1600, notice_given_min=0)
    assert [(x.machine_id, x.power_limit_w) for x in plan.chosen] == [(1, None), (2, None)]
    # A stock Antminer takes no limit: the last one is stopped, overshooting.
    assert selection.power_limit_min_w("bitmain", 3250) is None
    plan = choose([c(1, j=40.0), c(2, j=30.0)], target_w=3214 + 500, notice_given_min=0)
    assert [x.power_limit_w for x in plan.chosen] == [None, None]
