"""Telemetry's alerts and a curtailed machine: asleep, not hashing, its boards idle — that is
what it was told to do, so it is neither offline nor low on hashrate, and its boards are not
judged; a curtailed machine whose chips overheat still alerts. A live machine in the same
state alerts as before."""

import pytest

from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.telemetry import alerting, alerts
from hosting.telemetry.models import Alert
from tests.telemetry.alert_world import at, live, site_policy, write  # noqa: F401 (a fixture)
from tests.telemetry.test_alert_rules import RULES, S19, T0, series

ASLEEP = {"hashing": False, "hashrate_ths": 0.0, "hashrate_pct": 0.0, "boards_seen": 0, "chips_seen": 0,
          "power_w": 40.0}  # fmt: skip


def test_the_rules_do_not_call_a_curtailed_machine_offline_or_low():
    down = series("d", "d", "d")
    low = series("l", "l", "l", boards_seen=0, chips_seen=0)
    assert alerts.machine_decisions(RULES, S19, down, T0)[alerts.OFFLINE] is not None
    assert alerts.machine_decisions(RULES, S19, low, T0)[alerts.LOW_HASHRATE] is not None
    for windows in (down, low):
        decisions = alerts.machine_decisions(RULES, S19, windows, T0, curtailed=True)
        assert decisions[alerts.OFFLINE] is None
        assert decisions[alerts.LOW_HASHRATE] is None
        assert alerts.BOARD_LOST not in decisions  # asleep, its boards say nothing
    hot = alerts.machine_decisions(RULES, S19, series("u", chip_temp_max_c=99.0), T0, curtailed=True)
    assert hot[alerts.CHIP_HOT] is not None


@pytest.mark.django_db
@pytest.mark.usefixtures("site_policy")
def test_evaluate_opens_nothing_for_a_sleeping_curtailed_machine(floor):
    asleep_live, curtailed = live(floor, 2)
    Machine.objects.filter(pk=curtailed.pk).update(status=MachineStatus.CURTAILED)
    for i in range(4):
        write([asleep_live, curtailed], at(i), **ASLEEP)
    alerting.evaluate(floor["site"].pk, at(3))
    opened = {(m, k) for m, k in Alert.objects.open().values_list("machine_id", "kind")}
    assert (asleep_live.pk, alerts.LOW_HASHRATE) in opened
    assert (asleep_live.pk, alerts.BOARD_LOST) in opened
    assert not Alert.objects.filter(machine=curtailed).exists()
