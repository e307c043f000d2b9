"""The poller against the emulated fleet over real TCP and UDP, without Celery or a database:
one SNMP walk per PDU for all its outlets, the miner objects built once and reused, a miner
that stops answering dropped and looked for again."""

import asyncio

import pytest

from hosting.commissioning.emulator import INSTANT, Event, Fleet, MinerSpec, PduSpec, running
from hosting.probes import PduAddress, PduProbe
from hosting.telemetry.poller import Poller, Target
from hosting.telemetry.services import chunks

S19, M30 = "antminer-s19-pro", "whatsminer-m30s-plus-plus"
PORT = 16171


def spec(ip: str, model: str = S19, **kw) -> MinerSpec:
    n = int(ip.rsplit(".", 1)[1])
    return MinerSpec(ip, model, f"POLL-{n:04d}", f"02:50:00:00:{n // 256:02x}:{n % 256:02x}", **kw)


async def walk_once(address: PduAddress, timeout_s: float = 2, retries: int = 1):
    probe = PduProbe(timeout_s=timeout_s, retries=retries)
    try:
        return await probe.walk(address)
    finally:
        probe.close()


@pytest.mark.parametrize("profile", ["apc-rpdu2", "raritan-px2"])
def test_one_walk_reads_every_outlet_the_total_and_the_inlet(profile):
    miners = [spec(f"127.97.{1 if profile == 'apc-rpdu2' else 2}.{n}") for n in (1, 2, 3)]
    host = f"127.97.{1 if profile == 'apc-rpdu2' else 2}.200"
    pdu = PduSpec(host, PORT, profile=profile, outlets={2: miners[0].ip, 5: miners[1].ip, 24: miners[2].ip})
    with running(Fleet(miners, web=True, latency=INSTANT), [pdu]) as fleet:
        walk = asyncio.run(walk_once(PduAddress(host, PORT, "public", profile)))
        (agent,) = fleet.pdu_floor.agents.values()
        requests = dict(agent.requests)
        drawn = {o: fleet.power_w(ip) for o, ip in pdu.outlets.items()}
    assert walk.error is None
    assert sorted(walk.outlet_w) == list(range(1, 25))  # every outlet of the strip, wired or not
    for outlet, watts in drawn.items():
        assert walk.outlet_w[outlet] == pytest.approx(watts, rel=0.02)  # read a moment apart
    assert sum(walk.outlet_w.values()) == pytest.approx(sum(drawn.values()), rel=0.02)
    assert walk.device_w == pytest.approx(sum(walk.outlet_w.values()), rel=0.02)  # in 10 W steps, a moment apart
    assert walk.inlet_temp_c == pytest.approx(25.0, abs=0.1)
    assert (walk.requests, requests) == (1, {"getbulk": 1})


def test_a_table_longer_than_one_answer_takes_more_requests_and_misses_nothing(monkeypatch):
    miners = [spec("127.97.3.1")]
    pdu = PduSpec("127.97.3.200", PORT, outlets={1: miners[0].ip, 48: miners[0].ip}, outlet_count=48)
    monkeypatch.setattr(PduProbe, "MAX_REPETITIONS", 10)
    with running(Fleet(miners, web=True, latency=INSTANT), [pdu]) as fleet:
        walk = asyncio.run(walk_once(PduAddress(pdu.host, PORT, "public", "apc-rpdu2")))
        (agent,) = fleet.pdu_floor.agents.values()
    assert sorted(walk.outlet_w) == list(range(1, 49))
    assert walk.outlet_w[48] > 3000
    assert walk.requests == agent.requests["getbulk"] == 5


@pytest.mark.parametrize("profile", ["apc-rpdu2", "raritan-px2"])
def test_named_outlets_are_read_alone_in_gets_of_at_most_a_strip(profile, monkeypatch):
    net = 6 if profile == "apc-rpdu2" else 7
    miners = [spec(f"127.97.{net}.{n}") for n in (1, 2, 3)]
    host = f"127.97.{net}.200"
    pdu = PduSpec(host, PORT, profile=profile, outlets={2: miners[0].ip, 5: miners[1].ip, 24: miners[2].ip})
    monkeypatch.setattr(PduProbe, "MAX_GET_OUTLETS", 2)

    async def read(outlets):
        probe = PduProbe(timeout_s=2, retries=1)
        try:
            return await probe.outlets(PduAddress(host, PORT, "public", profile), outlets)
        finally:
            probe.close()

    with running(Fleet(miners, web=True, latency=INSTANT), [pdu]) as fleet:
        got = asyncio.run(read([24, 2, 5, 2, 7]))  # unordered, repeated, and an empty outlet
        (agent,) = fleet.pdu_floor.agents.values()
        requests = dict(agent.requests)
        drawn = {o: fleet.power_w(ip) for o, ip in pdu.outlets.items()}
    assert got.error is None
    assert sorted(got.outlet_w) == [2, 5, 7, 24]  # those asked for, no other
    for outlet, watts in drawn.items():
        assert got.outlet_w[outlet] == pytest.approx(watts, rel=0.02)
    assert got.outlet_w[7] == 0  # wired to nothing
    assert (got.device_w, got.inlet_temp_c) == (None, None)
    assert (got.requests, requests) == (2, {"get": 2})  # 4 outlets, 2 a GET


def test_a_pdu_that_does_not_answer_is_an_error_for_all_its_outlets():
    walk = asyncio.run(walk_once(PduAddress("127.97.4.200", PORT, "public", "apc-rpdu2"), timeout_s=0.3, retries=0))
    assert (walk.outlet_w, walk.error) == ({}, "the PDU at 127.97.4.200:16171 does not answer")


def test_miner_objects_are_built_once_reused_and_dropped_when_a_miner_goes_away():
    miners = [spec("127.97.5.1"), spec("127.97.5.2", M30), spec("127.97.5.3", story=(Event.offline(30, for_s=600),))]
    targets = [Target(n, m.ip, m.model) for n, m in enumerate(miners, start=1)]
    with running(Fleet(miners, web=True, latency=INSTANT)) as fleet:

        async def polls():
            poller = Poller(timeout_s=2, concurrency=10)
            first = await poller.poll(targets)
            again = await poller.poll(targets)
            fleet.advance(60)  # the third goes off
            off = await poller.poll(targets)
            fleet.advance(700)  # and is back
            back = await poller.poll(targets)
            poller.close()
            return first, again, off, back

        first, again, off, back = asyncio.run(polls())
    assert (first.built, first.reused, len(first.learned)) == (3, 0, 3)
    assert all(r.reachable and r.hashrate_ths for r in first.readings.values())
    assert (again.built, again.reused, again.learned) == (0, 3, {})
    assert (off.reused, off.readings[3].reachable, off.forgotten) == (3, False, [targets[2].key])
    assert (back.built, back.reused, back.readings[3].reachable) == (1, 2, True)  # looked for again, found


def test_another_process_builds_the_miner_object_from_the_class_without_detecting():
    miners = [spec("127.97.6.1"), spec("127.97.6.2", M30)]
    targets = [Target(n, m.ip, m.model) for n, m in enumerate(miners, start=1)]
    with running(Fleet(miners, web=True, latency=INSTANT)):

        async def polls():
            one, other = Poller(timeout_s=2, concurrency=10), Poller(timeout_s=2, concurrency=10)
            learned = (await one.poll(targets)).learned
            polled = await other.poll(targets, known=learned)
            one.close()
            other.close()
            return learned, polled

        learned, polled = asyncio.run(polls())
    # Keys of pyasic's class table; btminer's with the API base its firmware version chose.
    assert sorted(learned.values()) == ["ANTMINER|ANTMINER S19 PRO", "WHATSMINER|M30S++VG40|BTMinerV2"]
    assert (polled.built, polled.rebuilt) == (0, 2)
    assert all(r.reachable and r.hashrate_ths for r in polled.readings.values()), polled.readings


def test_reads_are_spread_over_the_time_given():
    miners = [spec(f"127.97.7.{n}") for n in range(1, 5)]
    targets = [Target(n, m.ip, m.model) for n, m in enumerate(miners, start=1)]
    with running(Fleet(miners, web=True, latency=INSTANT)):

        async def poll():
            poller = Poller(timeout_s=2, concurrency=10)
            polled = await poller.poll(targets, spread_s=1.2)
            poller.close()
            return polled

        polled = asyncio.run(poll())
    taken = [polled.readings[t.machine_id].taken_at for t in targets]
    assert taken == sorted(taken)  # one after another, in order, not all at once
    assert (taken[-1] - taken[0]).total_seconds() >= 0.9 - 0.05  # the last started 3/4 of the way in


def test_chunks_keep_each_pdus_machines_together():
    machines = [(1, 10), (2, 10), (3, 11), (4, None), (5, 11), (6, 10), (7, None), (8, 12)]
    parts = chunks(machines, size=3)
    assert parts == [[1, 2, 6], [3, 5, 8], [4, 7]]  # whole PDUs first, the unmetered fill in
    assert chunks([(n, 1) for n in range(5)], size=2) == [[0, 1, 2, 3, 4]]  # a PDU is never split
