"""Two workers evaluating the same window at the same moment, on PostgreSQL: each alert opens
once and resolves once, round after round (tests/races.py releases them together)."""

import pytest

from hosting.telemetry import alerting
from hosting.telemetry.models import Alert, AlertKind
from tests.races import race
from tests.telemetry.alert_world import at, live, write, write_circuit

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROUNDS = 12
WORKERS = 3


def test_concurrent_evaluations_of_a_window_open_and_resolve_each_alert_once(floor, site_policy):
    site = floor["site"]
    machines = live(floor, 8)
    circuit = floor["circuits"][0]
    for r in range(ROUNDS):
        wrong = r % 2 == 0  # wrong on even rounds, fixed on odd ones
        write(machines, at(r), fans_ok=not wrong, chip_temp_max_c=99.0 if wrong else 70.0)
        write_circuit(circuit, at(r), 60_000.0 if wrong else 30_000.0)

        results, _ = race(WORKERS, lambda _, r=r: alerting.evaluate(site.pk, at(r), now=at(r)))

        openings = r // 2 + 1
        for machine in machines:
            for kind in (AlertKind.FANS_STOPPED, AlertKind.CHIP_HOT):
                assert Alert.objects.filter(machine=machine, kind=kind).count() == openings, (r, machine, kind)
        assert Alert.objects.filter(circuit=circuit, kind=AlertKind.CIRCUIT_HOT).count() == openings
        assert Alert.objects.open().count() == (2 * len(machines) + 1 if wrong else 0)
        if not wrong:
            assert sum(e.resolved for e in results) == 2 * len(machines) + 1  # resolved once, by one of them
