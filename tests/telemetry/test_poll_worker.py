"""End to end: the beat's scheduler opens a site's poll, a real Celery worker on the site's
queue polls the emulated fleet over real TCP (pyasic) and UDP (SNMP), and the windows it
records show what the miners went through — a board that dies, a miner offline and back, a
fan that stops and chips that heat up, the PDU following them all."""

import datetime as dt

import pytest
from django.utils import timezone

from capacity.models import Pdu
from hosting import queues
from hosting.commissioning import fleet
from hosting.commissioning.emulator import INSTANT, Event, Fleet, running
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, MachineModel
from hosting.telemetry import services, services_store
from hosting.telemetry.models import CircuitWindow, PollRun, TelemetryPolicy, Window
from tests.factories import racked
from tests.workers import celery_worker, purge, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

INTERVAL_S = 300
WORKER_ENV = {"TELEMETRY_TIMEOUT_S": "2", "TELEMETRY_SPREAD_PCT": "0"}
S19, M30 = "antminer-s19-pro", "whatsminer-m30s-plus-plus"

# (name, model, story, metered)
CASES = [
    ("healthy", S19, (), True),
    ("board dies", S19, (Event.board_dies(40, board=1),), True),
    ("offline then back", S19, (Event.offline(30, for_s=300),), True),
    ("fan stops", S19, (Event.fan_stops(60, fan=0),), True),
    ("whatsminer", M30, (), True),
    ("unmetered antminer", S19, (), False),
    ("unmetered whatsminer", M30, (), False),
]


@pytest.fixture(autouse=True)
def _no_spread(settings):
    settings.TELEMETRY_SPREAD_PCT = 0  # the chunks go at once: the test drives the intervals


def world(floor, *, net: int):
    """The cases live on the floor: metered ones on circuit 0 (a PDU, outlet n), the others on
    circuit 1 (no PDU); the site polled every 300 s."""
    site = floor["site"]
    TelemetryPolicy.objects.create(site=site, poll_interval_s=INTERVAL_S)
    circuit = floor["circuits"][0]
    circuit.pdu = Pdu.objects.create(site=site, name="PDU A", host=f"127.{net}.1.1", port=16100 + net)
    circuit.save()
    machines, stories = {}, {}
    for n, (name, model, story, metered) in enumerate(CASES, start=1):
        (machine,) = racked(floor, 1, circuit=0 if metered else 1, model=MachineModel.objects.get(slug=model))
        machine.ip = f"127.{net}.0.{n}"
        machine.save(update_fields=["ip"])
        machine.slot.outlet = n if metered else None
        machine.slot.save(update_fields=["outlet"])
        machines[name] = machine
        stories[machine.serial] = story
    Machine.objects.filter(pk__in=[m.pk for m in machines.values()]).update(status=MachineStatus.LIVE)
    watched = Machine.objects.filter(pk__in=[m.pk for m in machines.values()]).select_related("model")
    miners = fleet.miner_specs(watched, stories=stories)
    pdus = fleet.pdu_specs(Pdu.objects.filter(site=site))
    return machines, Fleet(miners, web=True, latency=INSTANT), pdus


def poll(site, now: dt.datetime) -> dict[str, Window]:
    """What the beat does as an interval begins, and the windows once the worker has written them."""
    assert services.schedule_polls(now=now) == 1
    start = services.window_start(now, INTERVAL_S)
    wait_for(
        lambda: PollRun.objects.filter(site=site, window_start=start, finished_at__isnull=False).exists(),
        timeout_s=60,
        what=f"the poll of {start:%H:%M:%S}",
    )
    return {w.machine_id: w for w in Window.objects.filter(site=site, start=start)}


def test_windows_record_each_fault_through_a_real_worker(floor):
    machines, emulated, pdus = world(floor, net=91)
    site = floor["site"]
    queue = queues.queue_for(site.slug)
    base = timezone.now()
    with running(emulated, pdus), celery_worker(queues=(queue,), extra_env=WORKER_ENV, purge_first=True) as worker:
        first = poll(site, base)
        emulated.advance(200)  # the board is dead, the miner off, the fan stopped a while
        second = poll(site, base + dt.timedelta(seconds=INTERVAL_S))
        emulated.advance(2000)  # back on and ramped up; the chips without their fan much hotter
        third = poll(site, base + dt.timedelta(seconds=2 * INTERVAL_S))
        (agent,) = emulated.pdu_floor.agents.values()
        # The task logs its line once its windows are stored: wait for the third.
        wait_for(lambda: worker.output().count("miner objects") >= 3, timeout_s=10, what="the third poll's log line")
        output = worker.output()

    def of(name, windows):
        return windows[machines[name].pk]

    s19 = MachineModel.objects.get(slug=S19)
    # Every machine has its window in every poll, as the machine stood.
    for windows in (first, second, third):
        assert set(windows) == {m.pk for m in machines.values()}
        assert {w.machine_status for w in windows.values()} == {MachineStatus.LIVE}
    # At first everyone hashes with every board, chip and fan, the metered ones on PDU watts.
    for name, (_, model, _, metered) in zip(machines, CASES, strict=True):
        w = of(name, first)
        assert (w.reachable, w.hashing, w.boards_seen, w.fans_ok, w.errors) == (True, True, 3, True, ""), name
        assert 95 <= w.hashrate_pct <= 105, (name, w.hashrate_pct)
        assert w.uptime_s > 0
        assert w.power_source == ("pdu" if metered else "miner" if model == M30 else "nameplate"), name
    assert of("unmetered antminer", first).power_w == s19.nameplate_power_w
    assert of("healthy", first).chips_seen == 3 * s19.chips_per_board

    # A board dies: two seen, two thirds of the hashrate, the firmware's error; the PDU draws less.
    dead, before = of("board dies", second), of("board dies", first)
    assert (dead.reachable, dead.hashing, dead.boards_seen, dead.chips_seen) == (True, True, 2, 2 * s19.chips_per_board)
    assert dead.hashrate_pct == pytest.approx(2 / 3 * before.hashrate_pct, rel=0.05)
    assert dead.errors
    assert dead.power_w == pytest.approx(2 / 3 * before.power_w, rel=0.05)
    # Offline: down (not unknown), drawing nothing at its outlet; then back, rebooted, hashing.
    off, back = of("offline then back", second), of("offline then back", third)
    assert (off.reachable, off.hashing, off.hashrate_ths, off.power_w, off.power_source) == (
        False,
        False,
        None,
        0,
        "pdu",
    )
    assert (back.reachable, back.hashing) == (True, True)
    assert back.uptime_s < of("offline then back", first).uptime_s + 2200 - 300  # it booted meanwhile
    # A fan stops: flagged at once, the chips climbing over the minutes that follow.
    fan_first, fan_second, fan_third = (of("fan stops", ws) for ws in (first, second, third))
    assert (fan_second.fans_ok, fan_second.hashing) == (False, True)
    assert fan_second.errors
    assert fan_third.chip_temp_max_c > fan_first.chip_temp_max_c + 20
    assert of("healthy", third).chip_temp_max_c < fan_third.chip_temp_max_c - 10

    # The circuit's window is the sum of its metered outlets, read in the same walk.
    metered = [machines[name] for name, _, _, on_pdu in CASES if on_pdu]
    for windows in (first, second, third):
        start = next(iter(windows.values())).start
        cw = CircuitWindow.objects.get(start=start, circuit=floor["circuits"][0])
        assert cw.outlets_read == len(metered)
        assert cw.measured_w == pytest.approx(sum(windows[m.pk].power_w for m in metered), abs=1)
    assert not CircuitWindow.objects.filter(circuit=floor["circuits"][1]).exists()  # nothing metered there

    # One walk (a GETBULK) per PDU per interval, never a GET per outlet.
    assert agent.requests == {"getbulk": 3}
    # The miner objects were built once (detected) and reused in the polls after; the one that
    # went away was dropped and looked for again once it was back.
    polls = [line.split("miner objects ")[1].strip() for line in output.splitlines() if "miner objects" in line]
    assert polls == [
        "0 reused, 0 rebuilt, 7 detected",
        "7 reused, 0 rebuilt, 0 detected",
        "6 reused, 0 rebuilt, 1 detected",
    ]
    # Each PollRun is done, with what it found.
    runs = list(PollRun.objects.filter(site=site).order_by("window_start"))
    assert [(r.machines, r.windows_written, r.answered) for r in runs] == [(7, 7, 7), (7, 7, 6), (7, 7, 7)]
    assert all(r.finished_at is not None for r in runs)


def test_with_the_worker_stopped_no_window_is_written_and_the_poll_stays_unfinished(floor):
    _, emulated, pdus = world(floor, net=92)
    site = floor["site"]
    queue = queues.queue_for(site.slug)
    purge([queue])
    now = timezone.now()
    with running(emulated, pdus):
        assert services.schedule_polls(now=now) == 1  # sent; nobody at the site takes it
        start = services.window_start(now, INTERVAL_S)
        run = PollRun.objects.get(site=site, window_start=start)
        assert (run.machines, run.finished_at) == (7, None)
        with pytest.raises(AssertionError):
            wait_for(lambda: Window.objects.filter(site=site).exists(), timeout_s=3, what="a window")
    run.refresh_from_db()
    assert (run.finished_at, run.windows_written, run.answered) == (None, 0, 0)
    assert not Window.objects.exists()
    purge([queue])
    # Accounting, once the interval is over, writes the windows down as unknown — never down.
    Machine.objects.filter(contract__site=site).update(status_changed_at=start - dt.timedelta(hours=1))
    services_store.fill_unknown(site, now=now)  # the site's accounting starts at this interval
    ended = start + dt.timedelta(seconds=INTERVAL_S + 1)
    assert services_store.fill_unknown(site, now=ended, grace_s=0) == 7
    assert Window.objects.filter(site=site, start=start, reachable__isnull=True).count() == 7
    assert not Window.objects.filter(reachable=False).exists()


def test_scheduling_twice_in_one_interval_sends_the_poll_once(floor, monkeypatch):
    machines, _, _ = world(floor, net=93)
    sent = []
    monkeypatch.setattr(queues, "publish", lambda task, messages, queue, timeout_s: sent.append(messages) or 0)
    now = timezone.now()
    start = services.window_start(now, INTERVAL_S)
    assert services.schedule_polls(now=now) == 1
    assert services.schedule_polls(now=start + dt.timedelta(seconds=INTERVAL_S - 1)) == 0  # same interval
    assert PollRun.objects.filter(site=floor["site"]).count() == 1
    (messages,) = sent
    (((site_id, window_start, ids, _), _),) = messages  # one chunk: the PDU's machines and the rest
    assert (site_id, window_start, sorted(ids)) == (
        floor["site"].pk,
        start.isoformat(),
        sorted(m.pk for m in machines.values()),
    )
    assert services.schedule_polls(now=start + dt.timedelta(seconds=INTERVAL_S)) == 1  # the next one
    assert len(sent) == 2


def test_the_scheduler_never_waits_on_a_broker_that_is_down(floor, monkeypatch):
    """One short attempt, no retries: the beat's tick goes on; that interval's windows stay
    unwritten (unknown), the next interval tries again."""
    import socket

    from hosting.celery import app

    world(floor, net=94)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: it refuses connections
    monkeypatch.setattr(app.conf, "broker_write_url", f"redis://127.0.0.1:{port}/0")
    attempts = []
    publish = queues.publish
    monkeypatch.setattr(queues, "publish", lambda *a: attempts.append(publish(*a)) or attempts[-1])
    assert services.schedule_polls(now=timezone.now()) == 1
    assert attempts == [0]  # tried once, nothing sent
    run = PollRun.objects.get(site=floor["site"])
    assert (run.finished_at, run.windows_written) == (None, 0)
