"""Alerts as rows: evaluate opens each alert once, keeps it while its rule holds and resolves
it; unknown windows decide nothing; acknowledging; the reads cost a fixed number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.telemetry import alerting
from hosting.telemetry.models import Alert, AlertKind, TelemetryPolicy
from tests.factories import StaffFactory
from tests.telemetry.alert_world import DOWN, UNKNOWN, at, live, write, write_circuit

pytestmark = pytest.mark.django_db


def kinds(**filters) -> set[str]:
    return set(Alert.objects.open().filter(**filters).values_list("kind", flat=True))


def test_offline_opens_once_after_n_windows_and_resolves_when_the_machine_answers(floor, fleet):
    site = floor["site"]
    down, up = fleet
    for i in range(3):
        write([down], at(i), **DOWN)
        write([up], at(i))
        alerting.evaluate(site.pk, at(i), now=at(i))
        assert Alert.objects.count() == (1 if i == 2 else 0)  # the third window in a row opens it

    alert = Alert.objects.get()
    assert (alert.machine, alert.kind, alert.tenant, alert.site) == (down, AlertKind.OFFLINE, down.tenant, site)
    assert alert.values["windows"] == 3
    assert alert.values["since"] == at(0).isoformat()
    assert alert.opened_at == alert.last_seen_at == at(2)
    assert alert.resolved_at is None

    write([down], at(3), **DOWN)
    alerting.evaluate(site.pk, at(3), now=at(3))
    alerting.evaluate(site.pk, at(3), now=at(3))  # the same window again: nothing new
    alert.refresh_from_db()
    assert Alert.objects.count() == 1
    assert alert.last_seen_at == at(3)

    write([down], at(4))  # it answers
    alerting.evaluate(site.pk, at(4), now=at(4))
    alert.refresh_from_db()
    assert alert.resolved_at == at(4)
    assert kinds() == set()


def test_unknown_windows_open_nothing_and_close_nothing(floor, fleet):
    site = floor["site"]
    machine = fleet[0]
    for i in range(6):  # a monitoring gap: no poll happened
        write([machine], at(i), **UNKNOWN)
        alerting.evaluate(site.pk, at(i), now=at(i))
    assert not Alert.objects.exists()

    for i in range(6, 9):
        write([machine], at(i), **DOWN)
        alerting.evaluate(site.pk, at(i), now=at(i))
    assert kinds() == {AlertKind.OFFLINE}
    for i in range(9, 12):  # the gap again: the alert stays open
        write([machine], at(i), **UNKNOWN)
        alerting.evaluate(site.pk, at(i), now=at(i))
    assert kinds() == {AlertKind.OFFLINE}


def test_a_window_with_everything_wrong_opens_each_kind_and_a_healthy_one_resolves_them(floor, fleet):
    site, machine = floor["site"], fleet[0]
    write(
        [machine], at(0),
        boards_seen=2, chips_seen=152, chip_temp_max_c=97.5, fans_ok=False, inlet_temp_c=41.0, power_w=3700.0,
    )  # fmt: skip
    alerting.evaluate(site.pk, at(0), now=at(0))
    assert kinds(machine=machine) == {
        AlertKind.BOARD_LOST,
        AlertKind.CHIP_HOT,
        AlertKind.FANS_STOPPED,
        AlertKind.INLET_HOT,
        AlertKind.OVER_DRAW,
    }
    chip = Alert.objects.get(kind=AlertKind.CHIP_HOT)
    assert chip.values["chip_temp_max_c"] == 97.5
    assert chip.values["limit_c"] == 95.0
    assert chip.values["window_start"] == at(0).isoformat()
    assert "97.5" in chip.message
    assert Alert.objects.get(kind=AlertKind.OVER_DRAW).values["limit_w"] == 3575.0  # 3,250 W + 10 %

    write([machine], at(1))
    alerting.evaluate(site.pk, at(1), now=at(1))
    assert kinds() == set()
    assert Alert.objects.filter(resolved_at=at(1)).count() == 5


def test_rules_come_from_the_sites_policy(floor, fleet, site_policy):
    site_policy.inlet_max_c = 45
    site_policy.offline_windows = 1
    site_policy.save()
    write([fleet[0]], at(0), inlet_temp_c=44.0)
    write([fleet[1]], at(0), **DOWN)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    assert set(Alert.objects.values_list("machine", "kind")) == {(fleet[1].pk, AlertKind.OFFLINE)}


def test_hashrate_low_for_n_windows(floor, fleet):
    machine = fleet[0]
    for i in range(3):
        write([machine], at(i), hashrate_ths=60.0)
        alerting.evaluate(floor["site"].pk, at(i), now=at(i))
    alert = Alert.objects.get()
    assert alert.kind == AlertKind.LOW_HASHRATE
    assert alert.values["hashrate_pct"] == 63.2


def test_a_circuit_over_80_percent_of_its_breaker_opens_a_circuit_alert_for_staff(floor, fleet):
    hot, cool = floor["circuits"]  # 415 V 100 A three-phase, PF 0.95: 68,286 W rated, 54,628 W at 80 %
    write_circuit(hot, at(0), 56_000.0)
    write_circuit(cool, at(0), 54_000.0)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    alert = Alert.objects.get()
    assert (alert.circuit, alert.kind, alert.machine, alert.tenant) == (hot, AlertKind.CIRCUIT_HOT, None, None)
    assert alert.values["limit_pct"] == 80
    assert alert.values["measured_w"] == 56_000.0

    write_circuit(hot, at(1), None)  # the PDU did not answer: no verdict
    alerting.evaluate(floor["site"].pk, at(1), now=at(1))
    assert kinds() == {AlertKind.CIRCUIT_HOT}
    write_circuit(hot, at(2), 40_000.0)
    alerting.evaluate(floor["site"].pk, at(2), now=at(2))
    assert kinds() == set()


def test_a_machine_no_longer_watched_has_its_alerts_resolved(floor, fleet):
    machine = fleet[0]
    write([machine], at(0), fans_ok=False)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    assert kinds() == {AlertKind.FANS_STOPPED}
    Machine.objects.filter(pk=machine.pk).update(status=MachineStatus.TESTING)  # back on the bench
    alerting.evaluate(floor["site"].pk, at(1), now=at(1))
    assert kinds() == set()


def test_a_site_without_a_policy_gets_the_defaults(floor):
    live(floor, 1)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    assert TelemetryPolicy.objects.get(site=floor["site"]).offline_windows == 3


def evaluate_queries(site_id, i) -> int:
    with CaptureQueriesContext(connection) as queries:
        alerting.evaluate(site_id, at(i), now=at(i))
    return len(queries)


def test_evaluate_costs_the_same_queries_for_few_machines_and_many(floor, site_policy):
    site = floor["site"]
    few = live(floor, 2)
    for i in range(3):
        write(few, at(i), **DOWN)
        write_circuit(floor["circuits"][0], at(i), 60_000.0)
    alerting.evaluate(site.pk, at(1), now=at(1))
    cost_few = evaluate_queries(site.pk, 2)  # opens 2 offline alerts and a circuit alert
    assert Alert.objects.count() == 3

    many = few + live(floor, 12, circuit=1)
    for i in range(3, 6):
        write(many, at(i), **DOWN)
        write_circuit(floor["circuits"][1], at(i), 60_000.0)
    alerting.evaluate(site.pk, at(4), now=at(4))
    cost_many = evaluate_queries(site.pk, 5)  # opens 12 offline alerts, keeps 3 open
    assert Alert.objects.open().count() == 2 + 12 + 2  # circuit 0 has no reading any more: kept open
    assert cost_many == cost_few, (cost_few, cost_many)


def test_acknowledging_records_who_and_when_once(floor, fleet):
    write([fleet[0]], at(0), fans_ok=False)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    alert = Alert.objects.get()
    first, second = StaffFactory(), StaffFactory()
    alerting.acknowledge(alert, first, now=at(1))
    alerting.acknowledge(alert, second, now=at(2))
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledged_at) == (first, at(1))


def test_a_chunk_of_the_poll_is_evaluated_for_its_machines_and_the_circuits_once_the_poll_is_in(floor, fleet):
    site = floor["site"]
    first, second = fleet
    write(fleet, at(0), fans_ok=False)
    write_circuit(floor["circuits"][0], at(0), 60_000.0)
    alerting.evaluate(site.pk, at(0), machine_ids=[first.pk], site_wide=False, now=at(0))
    assert set(Alert.objects.values_list("machine", "kind")) == {(first.pk, AlertKind.FANS_STOPPED)}
    alerting.evaluate(site.pk, at(0), machine_ids=[second.pk], site_wide=True, now=at(0))  # the last chunk
    assert kinds(machine=second) == {AlertKind.FANS_STOPPED}
    assert kinds(circuit=floor["circuits"][0]) == {AlertKind.CIRCUIT_HOT}

    write([first], at(1))  # fixed; the second's chunk of this interval is not in yet
    alerting.evaluate(site.pk, at(1), machine_ids=[first.pk], site_wide=False, now=at(1))
    assert kinds(machine=first) == set()
    assert kinds() == {AlertKind.FANS_STOPPED, AlertKind.CIRCUIT_HOT}  # the second's and the circuit's stand
