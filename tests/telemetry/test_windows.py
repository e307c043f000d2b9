"""windows.window: one poll's reading → a window's fields (pure, no database)."""

import datetime as dt

from hosting.readings import Board, Reading
from hosting.telemetry.windows import ModelFigures, window

S19_PRO = ModelFigures(nominal_hashrate_ths=110.0, nameplate_w=3250, hashboards=3, fans=4)
AT = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def board(slot, ths=36.7, chips=114, chip_c=70.0, pcb_c=60.0, chip_temps=(), pcb_temps=(), present=True):
    return Board(slot, ths, chips, chip_c, pcb_c, present=present, chip_temps_c=chip_temps, pcb_temps_c=pcb_temps)


def healthy(**changes) -> Reading:
    fields = {
        "taken_at": AT,
        "reachable": True,
        "hashrate_ths": 110.1,
        "boards": (board(0), board(1), board(2)),
        "fans_rpm": (5400, 5460, 5400, 5520),
        "uptime_s": 86_400,
    }
    return Reading(**{**fields, **changes})


def test_a_healthy_miner_on_a_metered_outlet():
    w = window(healthy(), S19_PRO, "live", outlet_w=3261.0, pdu_inlet_c=24.46)
    assert (w.reachable, w.hashing, w.hashrate_ths, w.hashrate_pct) == (True, True, 110.1, 100.1)
    assert (w.boards_seen, w.chips_seen) == (3, 342)
    assert (w.chip_temp_max_c, w.board_temp_max_c) == (70.0, 60.0)
    assert (w.fans_ok, w.power_w, w.power_source) == (True, 3261.0, "pdu")
    assert (w.inlet_temp_c, w.uptime_s, w.errors, w.machine_status) == (24.5, 86_400, "", "live")


def test_an_unreachable_miner_is_down_not_unknown_and_its_outlet_still_counts():
    w = window(Reading(AT, reachable=False), S19_PRO, "live", outlet_w=0.0, pdu_inlet_c=25.0)
    assert (w.reachable, w.hashing) == (False, False)
    assert (w.hashrate_ths, w.boards_seen, w.chips_seen, w.fans_ok, w.uptime_s) == (None, None, None, None, None)
    assert (w.power_w, w.power_source, w.inlet_temp_c) == (0.0, "pdu", 25.0)


def test_an_unreachable_miner_without_an_outlet_reading_draws_unknown_watts_not_its_nameplate():
    w = window(Reading(AT, reachable=False), S19_PRO, "live")
    assert (w.power_w, w.power_source) == (None, "")


def test_a_dead_board_is_not_seen_and_its_chips_are_not_counted():
    dead = board(1, ths=0.0, chips=0, chip_c=None, pcb_c=None)
    w = window(healthy(hashrate_ths=73.4, boards=(board(0), dead, board(2))), S19_PRO, "live")
    assert (w.boards_seen, w.chips_seen, w.hashing, w.hashrate_pct) == (2, 228, True, 66.7)


def test_a_board_pyasic_lists_as_missing_is_not_seen():
    missing = board(2, ths=None, chips=None, chip_c=None, pcb_c=None, present=False)
    w = window(healthy(boards=(board(0), board(1), missing)), S19_PRO, "live")
    assert (w.boards_seen, w.chips_seen) == (2, 228)


def test_answering_without_a_hashrate_is_reachable_but_not_hashing():
    for rate in (0.0, None):
        w = window(healthy(hashrate_ths=rate), S19_PRO, "live")
        assert (w.reachable, w.hashing) == (True, False), rate
    assert window(healthy(hashrate_ths=0.0), S19_PRO, "live").hashrate_pct == 0.0


def test_the_hottest_of_every_sensor_on_every_board_is_kept():
    hot = board(1, chip_c=71.0, pcb_c=61.0, chip_temps=(71.0, 72.0, 96.5, 80.0), pcb_temps=(60.0, 88.0, 61.0, 62.0))
    w = window(healthy(boards=(board(0), hot, board(2))), S19_PRO, "live")
    assert (w.chip_temp_max_c, w.board_temp_max_c) == (96.5, 88.0)


def test_a_stopped_fan_or_a_missing_one_is_not_ok():
    assert window(healthy(fans_rpm=(5400, 0, 6000, 6000)), S19_PRO, "live").fans_ok is False
    assert window(healthy(fans_rpm=(5400, 5400, 5400)), S19_PRO, "live").fans_ok is False
    immersion = ModelFigures(nominal_hashrate_ths=190.0, nameplate_w=5300, hashboards=3, fans=0)
    assert window(healthy(fans_rpm=()), immersion, "live").fans_ok is True


def test_watts_come_from_the_pdu_then_the_miner_then_the_nameplate():
    assert window(healthy(power_w=3390), S19_PRO, "live", outlet_w=3401.4).power_source == "pdu"
    w = window(healthy(power_w=3390), S19_PRO, "live")
    assert (w.power_w, w.power_source) == (3390.0, "miner")
    w = window(healthy(power_w=None), S19_PRO, "live")
    assert (w.power_w, w.power_source) == (3250.0, "nameplate")


def test_the_miners_own_intake_sensor_goes_before_the_pdus():
    assert window(healthy(env_temp_c=31.04), S19_PRO, "live", pdu_inlet_c=25.0).inlet_temp_c == 31.0
    assert window(healthy(), S19_PRO, "live", pdu_inlet_c=25.0).inlet_temp_c == 25.0
    assert window(healthy(), S19_PRO, "live").inlet_temp_c is None


def test_errors_are_joined_and_cut_to_the_column():
    w = window(healthy(errors=("chain 1: lost", "fan 2: 0 rpm")), S19_PRO, "live")
    assert w.errors == "chain 1: lost; fan 2: 0 rpm"
    assert len(window(healthy(errors=("x" * 400, "y" * 400)), S19_PRO, "live").errors) == 500


def test_the_machine_status_at_poll_time_is_recorded():
    assert window(healthy(), S19_PRO, "curtailed").machine_status == "curtailed"
