"""`make bench`'s calibration of curtailment: a bare pyasic stop, then resume, of the fleet —
real TCP to emulated Antminers, two shards that start each pass together."""

from __future__ import annotations

import threading

from hosting import benchmark
from hosting.commissioning.emulator import INSTANT, Fault, Fleet, MinerSpec, running

IPS = [f"127.97.0.{k}" for k in range(1, 5)]
STUBBORN = "127.97.0.5"


def _spec(ip: str, n: int, faults=()) -> MinerSpec:
    return MinerSpec(ip, "antminer-s19-pro", f"BARE{n:04d}", f"02:4e:00:09:00:{n:02x}", faults=frozenset(faults))


def test_the_bare_calibration_stops_then_resumes_every_miner_of_each_shard(tmp_path):
    specs = [_spec(ip, n) for n, ip in enumerate(IPS, 1)] + [_spec(STUBBORN, 9, {Fault.IGNORES_STOP})]
    ips = [s.ip for s in specs]
    results: dict[int, dict] = {}

    def shard(k: int) -> None:
        results[k] = benchmark.bare_curtail(ips[k::2], 2, k, 2, str(tmp_path))

    with running(Fleet(specs, web=True, latency=INSTANT)) as fleet:
        threads = [threading.Thread(target=shard, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        actions = {ip: [(c.action, c.outcome) for c in fleet.commands(ip)] for ip in ips}

    assert sorted(results) == [0, 1]
    assert sum(r["built"] for r in results.values()) == 5
    # pyasic's Antminer answers True once the config is posted: the stubborn one counts as told.
    assert sum(r["stop"]["ok"] for r in results.values()) == 5
    assert sum(r["resume"]["ok"] for r in results.values()) == 5
    for ip in IPS:
        assert actions[ip] == [("stop", "done"), ("resume", "done")]
    assert actions[STUBBORN] == [("stop", "ignored"), ("resume", "done")]
    # The barrier: neither shard began resuming before both had finished stopping.
    stops_ended = max(r["stop"]["ended"] for r in results.values())
    assert all(r["resume"]["started"] >= stops_ended - 0.05 for r in results.values())
    assert {p.name for p in tmp_path.iterdir()} == {"stop-0", "stop-1", "resume-0", "resume-1"}
