"""services.record_poll: what one chunk's poll read becomes in the database — its windows
(replacing an unknown one written earlier), its circuits' windows, the PollRun's progress,
and `windows_recorded` once it commits. Safe to run twice."""

import datetime as dt

import pytest

from capacity.models import Pdu
from hosting.lifecycle import MachineStatus
from hosting.models import Machine
from hosting.probes import PduAddress, PduWalk
from hosting.readings import Board, Reading
from hosting.telemetry import services
from hosting.telemetry.models import CircuitWindow, PollRun, Window
from hosting.telemetry.poller import Polled
from hosting.telemetry.signals import windows_recorded
from tests.factories import racked

START = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def chunk(floor):
    site = floor["site"]
    circuit = floor["circuits"][0]
    circuit.pdu = pdu = Pdu.objects.create(site=site, name="PDU A", host="127.98.1.1", port=16100)
    circuit.save()
    machines = racked(floor, 3)
    for n, m in enumerate(machines, start=1):
        m.slot.outlet = n if n < 3 else None  # the third is not metered
        m.slot.save(update_fields=["outlet"])
    Machine.objects.filter(pk__in=[m.pk for m in machines]).update(status=MachineStatus.LIVE)
    PollRun.objects.create(site=site, window_start=START, machines=3)
    return site, pdu, services.machines_to_poll([m.pk for m in machines])


def polled(machines, pdu, *, pdu_error=None) -> Polled:
    boards = tuple(Board(i, 36.7, 114, 70.0, 60.0) for i in range(3))
    healthy = Reading(START, True, 110.0, boards, (5400,) * 4, uptime_s=3600)
    address = PduAddress(pdu.host, pdu.port, pdu.community, pdu.profile)
    walk = PduWalk({}, error=pdu_error) if pdu_error else PduWalk({1: 3300.0, 2: 0.0, 3: 120.0}, 3420.0, 24.0, 1)
    first, second, third = machines
    return Polled(
        readings={
            first.pk: Reading(**{**vars(healthy), "outlet_w": walk.outlet_w.get(1), "inlet_temp_c": 24.0}),
            second.pk: Reading(START, False, outlet_w=walk.outlet_w.get(2), inlet_temp_c=24.0),
            third.pk: healthy,
        },
        walks={address: walk},
    )


def test_a_chunk_is_recorded_once_committed_and_replaces_an_unknown_window(chunk, django_capture_on_commit_callbacks):
    site, pdu, machines = chunk
    first, second, third = machines
    Window.objects.create(  # accounting gave up on this poll and marked it unknown
        start=START, machine=first, site=site, contract=first.contract, machine_status="live", reachable=None
    )
    heard = []
    windows_recorded.connect(lambda **kw: heard.append(kw), weak=False, dispatch_uid="test-record")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = services.record_poll(site.pk, START, machines, polled(machines, pdu))
            assert heard == []  # not before the commit
    finally:
        windows_recorded.disconnect(dispatch_uid="test-record")

    rows = {w.machine_id: w for w in Window.objects.filter(start=START)}
    assert len(rows) == 3
    assert (rows[first.pk].reachable, rows[first.pk].power_w, rows[first.pk].power_source) == (True, 3300.0, "pdu")
    assert (rows[second.pk].reachable, rows[second.pk].power_w, rows[second.pk].power_source) == (False, 0.0, "pdu")
    assert (rows[third.pk].power_source, rows[third.pk].uptime_s) == ("nameplate", 3600)
    (circuit_window,) = CircuitWindow.objects.filter(start=START)
    # Outlets 1 and 2 are the circuit's metered slots; outlet 3 is on the strip but no slot's.
    assert (circuit_window.measured_w, circuit_window.outlets_read) == (3300.0, 2)
    assert (run.machines, run.windows_written, run.answered) == (3, 3, 2)
    assert run.finished_at is not None
    assert len(heard) == 1
    assert {k: heard[0][k] for k in ("site_id", "window_start", "finished")} == {
        "site_id": site.pk,
        "window_start": START,
        "finished": True,
    }
    assert sorted(heard[0]["machine_ids"]) == sorted(m.pk for m in machines)


def test_recording_twice_writes_the_same_rows_and_counts(chunk):
    site, pdu, machines = chunk
    services.record_poll(site.pk, START, machines, polled(machines, pdu))
    finished_at = PollRun.objects.get().finished_at
    run = services.record_poll(site.pk, START, machines, polled(machines, pdu))
    assert Window.objects.count() == 3
    assert CircuitWindow.objects.count() == 1
    assert (run.windows_written, run.answered, run.finished_at) == (3, 2, finished_at)


def test_a_pdu_that_did_not_answer_leaves_its_circuit_unmeasured(chunk):
    site, pdu, machines = chunk
    services.record_poll(site.pk, START, machines, polled(machines, pdu, pdu_error="the PDU does not answer"))
    (circuit_window,) = CircuitWindow.objects.filter(start=START)
    assert (circuit_window.measured_w, circuit_window.outlets_read) == (None, 0)


def test_a_poll_is_finished_only_when_every_chunk_is_in(chunk):
    site, pdu, machines = chunk
    run = services.record_poll(site.pk, START, machines[:2], polled(machines, pdu))
    assert (run.windows_written, run.finished_at) == (2, None)
    run = services.record_poll(site.pk, START, machines[2:], polled(machines, pdu))
    assert run.windows_written == 3
    assert run.finished_at is not None
