"""Each commissioning check's logic and its edges, without I/O."""

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from hosting.commissioning import checks
from hosting.readings import Board, Identity, Reading

T0 = dt.datetime(2021, 7, 1, tzinfo=dt.UTC)

S19_PRO = checks.Expected(
    make="AntMiner",
    model="S19 Pro",
    mac="02:00:00:00:00:01",
    serial="SN1",
    nominal_hashrate_ths=Decimal("110"),
    hashrate_tolerance_pct=Decimal("5"),
    nameplate_w=3250,
    power_tolerance_pct=Decimal("10"),
    hashboards=3,
    chips_per_board=114,
    fans=4,
    max_chip_temp_c=Decimal("95"),
    max_board_temp_c=Decimal("85"),
    min_fan_rpm=1000,
    max_ambient_c=Decimal("40"),
    circuit_usable_w=54_628,
    unmetered_accepts_nameplate=True,
)


def reading(seq=0, ths=36.7, chips=114, chip_c=70.0, board_c=60.0, boards=3, fans=(5400,) * 4, **extra):
    return Reading(
        taken_at=T0 + dt.timedelta(minutes=seq),
        reachable=True,
        hashrate_ths=ths * boards,
        boards=tuple(Board(i, ths, chips, chip_c, board_c) for i in range(boards)),
        fans_rpm=fans,
        **extra,
    )


HEALTHY = [reading(i) for i in range(5)]


# --- identity --------------------------------------------------------------------------------


def test_the_declared_machine_passes_identity():
    seen = Identity(True, "AntMiner", "S19 Pro", "fw", "02:00:00:00:00:01", "SN1", "miner-1")
    assert checks.identity(S19_PRO, seen).passed


@pytest.mark.parametrize(
    ("seen", "reason"),
    [
        (Identity(False), "does not answer"),
        (Identity(True, "AntMiner", "S19j Pro", "fw", "02:00:00:00:00:01"), "model is S19j Pro, declared S19 Pro"),
        (Identity(True, "WhatsMiner", "M30S++ VG40", "fw", "02:00:00:00:00:01"), "make is WhatsMiner"),
        (Identity(True, "AntMiner", "S19 Pro", "fw", "02:00:00:00:00:99"), "MAC is 02:00:00:00:00:99"),
        (Identity(True, "AntMiner", "S19 Pro", "fw", None), "does not report its MAC"),
        (Identity(True, "AntMiner", "S19 Pro", "fw", "02:00:00:00:00:01", "SN2"), "serial is SN2, declared SN1"),
    ],
)
def test_a_swapped_or_mislabelled_machine_fails_identity_with_the_reason(seen, reason):
    outcome = checks.identity(S19_PRO, seen)
    assert not outcome.passed
    assert any(reason in r for r in outcome.reasons), outcome.reasons


def test_identity_ignores_case_of_make_model_and_mac():
    seen = Identity(True, "antminer", "s19 pro", None, "02:00:00:00:00:01".upper())
    assert checks.identity(S19_PRO, seen).passed


# --- power ---------------------------------------------------------------------------------


def test_power_from_the_pdu_within_tolerance_passes_and_records_its_source():
    outcome = checks.power(S19_PRO, [reading(outlet_w=3300, circuit_w=40_000), reading(outlet_w=3340)])
    assert outcome.passed
    assert outcome.measurements["source"] == "pdu_outlet"
    assert outcome.measurements["power_w"] == 3320
    assert outcome.measurements["circuit_load_w"] == 40_000


@pytest.mark.parametrize(("watts", "passes"), [(2925, True), (2924, False), (3575, True), (3576, False)])
def test_power_tolerance_edges(watts, passes):
    assert checks.power(S19_PRO, [reading(outlet_w=watts)]).passed is passes  # 3,250 ± 10 %


def test_the_pdu_wins_over_the_miners_own_figure():
    outcome = checks.power(S19_PRO, [reading(outlet_w=4100, power_w=3250)])
    assert not outcome.passed
    assert "draws 4,100 W, outside 3,250 W ±10" in outcome.reasons[0]


def test_the_miners_own_watts_are_used_when_the_outlet_is_not_metered():
    outcome = checks.power(S19_PRO, [reading(power_w=3200)])
    assert outcome.passed
    assert outcome.measurements["source"] == "miner_reported"


def test_unmetered_follows_the_sites_policy():
    accepted = checks.power(S19_PRO, HEALTHY)
    assert accepted.passed
    assert accepted.measurements["accepted_on_nameplate"] is True
    refused = checks.power(replace(S19_PRO, unmetered_accepts_nameplate=False), HEALTHY)
    assert not refused.passed
    assert "not metered" in refused.reasons[0]


def test_a_miner_that_never_answers_does_not_pass_power_on_the_unmetered_rule():
    outcome = checks.power(S19_PRO, [Reading(T0, False)])  # unmetered outlet, nobody answered
    assert not outcome.passed
    assert outcome.reasons == ("no power reading: the outlet is not metered and the miner does not answer",)
    assert outcome.measurements["accepted_on_nameplate"] is False


@pytest.mark.parametrize(
    "error", ["the PDU at 127.0.0.9:16100 does not answer", "the PDU has no outlet 30 (noSuchInstance)"]
)
def test_a_metered_outlet_that_cannot_be_read_fails_power_and_says_why(error):
    # The miner reports its own watts and the site accepts unmetered outlets on nameplate:
    # neither rescues a meter that is configured and failed.
    failed = [reading(i, power_w=3250, outlet_error=error) for i in range(3)]
    outcome = checks.power(S19_PRO, failed)
    assert not outcome.passed
    assert outcome.reasons == (f"the outlet meter could not be read in 3 of 3 samples: {error}",)
    assert (outcome.measurements["source"], outcome.measurements["power_w"]) == ("pdu_outlet", None)
    assert outcome.measurements["accepted_on_nameplate"] is False


def test_a_meter_that_fails_in_one_sample_of_many_fails_power():
    samples = [reading(0, outlet_w=3250), reading(1, outlet_error="the PDU at h:1 does not answer")]
    outcome = checks.power(S19_PRO, samples)
    assert not outcome.passed
    assert "could not be read in 1 of 2 samples" in outcome.reasons[0]


def test_a_circuit_over_its_usable_watts_fails_power():
    outcome = checks.power(S19_PRO, [reading(outlet_w=3250, circuit_w=54_629)])
    assert not outcome.passed
    assert "over its 54,628 W usable" in outcome.reasons[0]


def test_a_site_tolerance_override_applies():
    assert not checks.power(replace(S19_PRO, power_tolerance_pct=Decimal("2")), [reading(outlet_w=3350)]).passed


# --- hashing ---------------------------------------------------------------------------------


def test_a_healthy_burn_in_passes():
    outcome = checks.hashing(S19_PRO, HEALTHY)
    assert outcome.passed, outcome.reasons
    assert outcome.measurements["average_hashrate_ths"] == pytest.approx(110.1)
    assert outcome.measurements["samples"] == 5


def test_hashrate_at_exactly_the_tolerance_passes_and_under_fails():
    at_floor = [reading(ths=104.5 / 3)]  # 95 % of 110
    assert checks.hashing(S19_PRO, at_floor).passed
    under = checks.hashing(S19_PRO, [reading(ths=104.4 / 3)])
    assert not under.passed
    assert under.reasons[0] == "averaged 104.40 TH/s, under 104.50 TH/s (95 % of 110 TH/s)"


def test_the_average_is_over_the_window_not_the_best_sample():
    samples = [reading(0, ths=40), reading(1, ths=30), reading(2, ths=30)]  # average 33.3 a board
    assert not checks.hashing(S19_PRO, samples).passed


def test_a_dead_board_fails_even_if_the_rest_make_up_the_hashrate():
    dead = [reading(i, ths=55.0, boards=2) for i in range(3)]
    outcome = checks.hashing(S19_PRO, dead)
    assert "1 of 3 hashboards missing" in outcome.reasons


def test_a_board_listed_as_missing_counts_as_missing():
    boards = (Board(0, 55.0, 114, 70, 60), Board(1, 55.0, 114, 70, 60), Board(2, None, None, None, None, False))
    outcome = checks.hashing(S19_PRO, [Reading(T0, True, 110.0, boards, (5400,) * 4)])
    assert outcome.reasons == ("1 of 3 hashboards missing",)


def test_a_board_present_but_not_hashing_fails():
    boards = (Board(0, 55.0, 114, 70, 60), Board(1, 55.0, 114, 70, 60), Board(2, 0.0, 114, 40, 35))
    outcome = checks.hashing(S19_PRO, [Reading(T0, True, 110.0, boards, (5400,) * 4)])
    assert "hashboard(s) 2 not hashing" in outcome.reasons


def test_missing_chips_are_named_per_board():
    boards = (Board(0, 37.0, 114, 70, 60), Board(1, 37.0, 94, 70, 60), Board(2, 37.0, 114, 70, 60))
    outcome = checks.hashing(S19_PRO, [Reading(T0, True, 111.0, boards, (5400,) * 4)])
    assert outcome.reasons == ("hashboard 1: 94 of 114 chips",)


def test_errors_reported_by_the_miner_fail_hashing():
    outcome = checks.hashing(S19_PRO, [reading(errors=("chain 2 asic error",))])
    assert outcome.reasons == ("the miner reports: chain 2 asic error",)


def test_a_miner_that_drops_out_during_burn_in_fails():
    flapping = [*HEALTHY[:3], Reading(T0, False), HEALTHY[4]]
    outcome = checks.hashing(S19_PRO, flapping)
    assert outcome.reasons == ("identified, then unreachable in 1 of 5 samples",)


def test_no_samples_or_none_answered_fail():
    assert not checks.hashing(S19_PRO, []).passed
    assert not checks.hashing(S19_PRO, [Reading(T0, False)]).passed


# --- thermal ---------------------------------------------------------------------------------


def test_healthy_temperatures_and_fans_pass():
    outcome = checks.thermal(S19_PRO, [reading(inlet_temp_c=28.0)])
    assert outcome.passed, outcome.reasons
    assert outcome.measurements["inlet_source"] == "pdu_sensor"


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (reading(chip_c=96.0), "chips reached 96 °C (hashboard 2), over the 95 °C limit"),
        (reading(board_c=86.0), "boards reached 86 °C (hashboard 2), over the 85 °C limit"),
        (reading(fans=(5400, 5400, 5400, 0)), "only 3 of 4 fans spin at 1,000 RPM or more"),
        (reading(fans=(5400, 5400, 5400)), "only 3 of 4 fans"),
        (reading(fans=(5400, 5400, 5400, 999)), "only 3 of 4 fans"),
        (reading(inlet_temp_c=41.0), "inlet air reached 41 °C, over the site's 40 °C"),
        (reading(env_temp_c=45.0), "inlet air reached 45 °C"),
    ],
)
def test_thermal_failures_say_what_and_how_much(sample, reason):
    outcome = checks.thermal(S19_PRO, [sample])
    assert not outcome.passed
    assert any(reason in r for r in outcome.reasons), outcome.reasons


def test_every_chip_and_pcb_sensor_counts_not_the_boards_average():
    # A stock S19 board's inlet sensors read cool and its outlet sensors hot; the library's
    # one figure per board (their average) is under the limit, the outlet sensors are over it.
    hot_chips = Board(1, 36.7, 114, 90.5, 60.0, chip_temps_c=(83, 83, 98, 98), pcb_temps_c=(58, 58, 62, 62))
    hot_pcb = Board(2, 36.7, 114, 70.0, 84.5, chip_temps_c=(66, 66, 74, 74), pcb_temps_c=(77, 77, 92, 92))
    cool = Board(0, 36.7, 114, 70.0, 60.0)
    outcome = checks.thermal(S19_PRO, [Reading(T0, True, 110.1, (cool, hot_chips, hot_pcb), (5400,) * 4)])
    assert outcome.reasons == (
        "chips reached 98 °C (hashboard 1), over the 95 °C limit",
        "boards reached 92 °C (hashboard 2), over the 85 °C limit",
    )
    assert (outcome.measurements["max_chip_temp_c"], outcome.measurements["max_board_temp_c"]) == (98, 92)
    assert (outcome.measurements["chip_sensors"], outcome.measurements["pcb_sensors"]) == (4, 4)


def test_a_limit_reached_once_during_the_window_fails():
    samples = [reading(0), reading(1, chip_c=97.0), reading(2)]
    assert not checks.thermal(S19_PRO, samples).passed


def test_the_pdu_inlet_sensor_wins_over_the_miners_ambient():
    outcome = checks.thermal(S19_PRO, [reading(inlet_temp_c=30.0, env_temp_c=60.0)])
    assert outcome.passed
    assert outcome.measurements["max_inlet_temp_c"] == 30.0


# --- verdict ---------------------------------------------------------------------------------


def test_the_verdict_is_live_only_when_every_check_passed_and_lists_every_reason():
    good = checks.Outcome("power", True)
    bad_hash = checks.Outcome("hashing", False, ("1 of 3 hashboards missing", "hashboard 1: 94 of 114 chips"))
    bad_heat = checks.Outcome("thermal", False, ("chips reached 101 °C, over the 95 °C limit",))
    assert checks.verdict([good]) == (True, [])
    passed, reasons = checks.verdict([good, bad_hash, bad_heat])
    assert not passed
    assert reasons == [
        "hashing: 1 of 3 hashboards missing",
        "hashing: hashboard 1: 94 of 114 chips",
        "thermal: chips reached 101 °C, over the 95 °C limit",
    ]
    assert checks.verdict([]) == (False, [])
