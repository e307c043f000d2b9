"""The emulated fleet over time and under curtailment, read through the unmodified pyasic over real TCP
and through the PDUs over SNMP.

Time is the fleet's emulated clock: a test scripts "board 1 dies 40 s after start" and jumps there with
``Fleet.advance`` instead of sleeping. Commands go through pyasic's own methods (``stop_mining``,
``resume_mining``, ``set_power_limit``), exactly as pyasic 0.79 sends them to each firmware.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyasic
import pytest
from pyasic import settings as pyasic_settings
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

from hosting import snmp_profiles
from hosting.commissioning import fleet as fleet_module
from hosting.commissioning.emulator import (
    CONTACT,
    EMULATED_MODELS,
    INSTANT,
    Event,
    Fault,
    Fleet,
    Happening,
    MinerSpec,
    PduSpec,
    running,
)
from hosting.commissioning.emulator.server import shard

AM, WM = "antminer-s19-pro", "whatsminer-m30s-plus-plus"
VENDORS = {"antminer": AM, "whatsminer": WM}
PDU_PORT = 16162
STOP, RESUME, POWER_LIMIT = "stop", "resume", "power_limit"


def _spec(ip: str, model: str, serial: str, **kw) -> MinerSpec:
    n = int(ip.rsplit(".", 1)[1])
    return MinerSpec(ip, model, serial, f"02:4f:00:00:{n // 256:02x}:{n % 256:02x}", hostname=serial.lower(), **kw)


def _pdu(host: str, *ips: str, **kw) -> PduSpec:
    return PduSpec(host, PDU_PORT, outlets={i + 1: ip for i, ip in enumerate(ips)}, **kw)


def _floor(miners, pdus=(), **kw):
    return running(Fleet(list(miners), web=True, latency=INSTANT, **kw), list(pdus))


def _read(ip: str):
    async def go():
        miner = await pyasic.get_miner(ip)
        return await miner.get_data() if miner is not None else None

    return asyncio.run(go())


def _act(ip: str, action: str, *args):
    """Call one of pyasic's own methods on the miner (``stop_mining``, ``set_power_limit``, …)."""

    async def go():
        miner = await pyasic.get_miner(ip)
        return await getattr(miner, action)(*args)

    return asyncio.run(go())


def _snmp(pdu: PduSpec, *measurements: tuple[str, int | None]) -> list[float]:
    """The PDU's readings over SNMP v2c, in each measurement's unit."""
    oids = [snmp_profiles.oid(pdu.profile, name, outlet) for name, outlet in measurements]

    async def go():
        engine = SnmpEngine()
        try:
            target = await UdpTransportTarget.create((pdu.host, pdu.port), timeout=1, retries=1)
            return await get_cmd(
                engine,
                CommunityData(pdu.community, mpModel=1),  # noqa: S508 (PDUs speak v2c)
                target,
                ContextData(),
                *(ObjectType(ObjectIdentity(o)) for o, _ in oids),
            )
        finally:
            engine.close_dispatcher()

    error, status, _, binds = asyncio.run(go())
    assert error is None
    assert int(status) == 0
    return [int(value) * scale for (_, scale), (_, value) in zip(oids, binds, strict=True)]


def _outlet_w(pdu: PduSpec, outlet: int = 1) -> float:
    return _snmp(pdu, ("outlet_power_w", outlet))[0]


def _refused(ip: str, port: int = 4028) -> bool:
    try:
        socket.create_connection((ip, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _ths(data) -> float:
    return float(data.hashrate)


def _chip_c(data) -> float:
    return max(b.chip_temp for b in data.hashboards if not b.missing)


# --------------------------------------------------------------------------------------------
# Stories
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_board_dies_at_its_time_with_its_error_and_the_pdu_drawing_less(vendor):
    model = EMULATED_MODELS[VENDORS[vendor]]
    miner = _spec("127.96.0.1" if vendor == "antminer" else "127.96.0.2", model.slug, f"DIES-{vendor}",
                  story=(Event.board_dies(40, board=1),))  # fmt: skip
    pdu = _pdu("127.96.0.9" if vendor == "antminer" else "127.96.0.10", miner.ip)
    with _floor([miner], [pdu]) as floor:
        before, watts_before = _read(miner.ip), _outlet_w(pdu)
        floor.advance(41)
        after, watts_after = _read(miner.ip), _outlet_w(pdu)

    assert [b.missing for b in before.hashboards] == [False, False, False]
    assert before.errors == []
    assert _ths(before) == pytest.approx(model.hashrate_ths, rel=0.03)
    assert watts_before == pytest.approx(model.power_w, rel=0.03)
    # Board 1 is gone 40 s in: no chips, no hashrate, the firmware's error, a third less power.
    assert [b.missing for b in after.hashboards] == [False, True, False]
    assert after.hashboards[1].chips is None
    assert _ths(after) == pytest.approx(model.hashrate_ths * 2 / 3, rel=0.04)
    assert after.errors
    assert watts_after == pytest.approx(watts_before * 2 / 3, rel=0.03)
    if vendor == "whatsminer":
        assert after.wattage == pytest.approx(watts_after, rel=0.02)  # the miner's own reading agrees


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_an_offline_miner_is_refused_draws_nothing_then_comes_back_rebooted(vendor):
    model = EMULATED_MODELS[VENDORS[vendor]]
    ip = "127.96.1.1" if vendor == "antminer" else "127.96.1.2"
    miner = _spec(ip, model.slug, f"OUTAGE-{vendor}", story=(Event.offline(30, for_s=120),))
    pdu = _pdu("127.96.1.9" if vendor == "antminer" else "127.96.1.10", ip)
    with _floor([miner], [pdu]) as floor:
        before = _read(ip)
        floor.advance(31)
        refused, gone, watts_off = _refused(ip), _read(ip), _outlet_w(pdu)
        floor.advance(120)  # 151 s: back 1 s ago
        back, watts_back = _read(ip), _outlet_w(pdu)
        floor.advance(model.ramp_s)
        settled = _read(ip)

    assert before.uptime >= 900  # up for a while when the fleet started
    assert refused
    assert gone is None  # pyasic finds nothing there
    assert watts_off == 0
    assert back is not None
    assert back.uptime < 10  # booted again
    assert 0 <= _ths(back) < 0.2 * model.hashrate_ths  # ramping up
    assert watts_back < 0.3 * model.power_w
    assert _ths(settled) == pytest.approx(model.hashrate_ths, rel=0.03)
    assert settled.uptime == pytest.approx(model.ramp_s, abs=3)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_stopped_fan_is_flagged_at_once_and_the_chips_heat_up_over_minutes(vendor):
    model = EMULATED_MODELS[VENDORS[vendor]]
    ip = "127.96.2.1" if vendor == "antminer" else "127.96.2.2"
    miner = _spec(ip, model.slug, f"FAN-{vendor}", story=(Event.fan_stops(60, fan=0),))
    pdu = _pdu("127.96.2.9" if vendor == "antminer" else "127.96.2.10", ip)
    with _floor([miner], [pdu]) as floor:
        before, watts_before = _read(ip), _outlet_w(pdu)
        floor.advance(61)
        stopped = _read(ip)
        floor.advance(300)
        warmer = _read(ip)
        floor.advance(1800)
        hot, watts_hot = _read(ip), _outlet_w(pdu)

    assert all(f.speed > 5000 for f in before.fans)
    assert before.errors == []
    assert stopped.fans[0].speed == 0
    assert all(f.speed > 5800 for f in stopped.fans[1:])  # the others flat out
    assert stopped.errors  # the firmware flags the fan at once …
    assert _chip_c(stopped) < _chip_c(before) + 3  # … the chips have not heated up yet …
    assert _chip_c(warmer) > _chip_c(before) + 10  # … they climb over the next minutes …
    assert _chip_c(hot) > _chip_c(before) + 20  # … to well over the model's limit on the outlet side
    assert _ths(hot) == pytest.approx(model.hashrate_ths, rel=0.03)  # still hashing
    assert watts_hot == pytest.approx(0.99 * watts_before, rel=0.01)  # one fan fewer: a little less


def test_the_hashrate_decays_slowly_down_to_its_floor():
    model = EMULATED_MODELS[WM]
    miner = _spec("127.96.3.1", WM, "DECAY-1", story=(Event.decay(600, pct_per_h=10, floor_pct=70),))
    with _floor([miner]) as floor:
        fresh = _read(miner.ip)
        floor.advance(600 + 3600)
        an_hour = _read(miner.ip)
        floor.advance(5 * 3600)
        worn = _read(miner.ip)
    assert _ths(fresh) == pytest.approx(model.hashrate_ths, rel=0.03)
    assert _ths(an_hour) == pytest.approx(0.9 * model.hashrate_ths, rel=0.03)
    assert _ths(worn) == pytest.approx(0.7 * model.hashrate_ths, rel=0.03)
    assert worn.wattage == pytest.approx(fresh.wattage, rel=0.02)  # worn chips: the same watts for less
    assert worn.errors == []


def test_an_event_after_first_contact_waits_for_somebody_to_talk_to_the_miner():
    miner = _spec("127.96.4.1", WM, "CONTACT-1", story=(Event.board_dies(20, board=0, origin=CONTACT),))
    with _floor([miner]) as floor:
        floor.advance(1000)  # nobody has talked to it yet: nothing has happened
        first = _read(miner.ip)
        floor.advance(15)
        still = _read(miner.ip)
        floor.advance(10)
        dead = _read(miner.ip)
    assert not any(b.missing for b in first.hashboards)
    assert not any(b.missing for b in still.hashboards)
    assert [b.missing for b in dead.hashboards] == [True, False, False]


def test_stories_can_be_scripted_at_run_time():
    miner = _spec("127.96.4.2", AM, "RUNTIME-STORY-1")
    with _floor([miner]) as floor:
        floor.advance(100)
        floor.set_story(miner.ip, [Event.board_dies(110, board=2)])  # 110 s after the fleet's start
        before = _read(miner.ip)
        floor.advance(11)
        after = _read(miner.ip)
        with pytest.raises(ValueError, match="a story is a sequence of Event"):
            floor.set_story(miner.ip, ["board_dies"])
    assert not any(b.missing for b in before.hashboards)
    assert [b.missing for b in after.hashboards] == [False, False, True]


def test_a_time_scale_runs_the_story_faster():
    miner = _spec("127.96.4.3", WM, "SCALED-1", story=(Event.board_dies(60, board=0),))
    with _floor([miner], time_scale=120) as floor:
        deadline = time.monotonic() + 10
        while floor.now_s() < 61 and time.monotonic() < deadline:
            time.sleep(0.05)
        data = _read(miner.ip)
    assert floor.now_s() > 60
    assert data.hashboards[0].missing


def test_temperatures_follow_the_air_over_a_day_per_site_and_rack():
    midnight = dt.datetime(2026, 7, 1, tzinfo=dt.UTC).timestamp()
    air = {"inlet_temp_c": 26.0, "inlet_swing_c": 4.0, "site": "north"}
    a1 = _spec("127.96.5.1", WM, "AIR-1", rack="R01", **air)
    a2 = _spec("127.96.5.2", WM, "AIR-2", rack="R01", **air)  # same rack: same air
    b1 = _spec("127.96.5.3", WM, "AIR-3", rack="R07", **air)  # another rack of the site
    pdu = _pdu("127.96.5.9", a1.ip, inlet_temp_c=26.0, inlet_swing_c=4.0, site="north")
    day: list[tuple[float, float, float, float, float]] = []
    with _floor([a1, a2, b1], [pdu], epoch=midnight) as floor:
        for hour in range(0, 24, 2):
            floor.advance(max(0.0, hour * 3600 - floor.now_s()))
            d1, d2, d3 = _read(a1.ip), _read(a2.ip), _read(b1.ip)
            (pdu_c,) = _snmp(pdu, ("inlet_temp_c", None))
            day.append((d1.env_temp, d2.env_temp, d3.env_temp, _chip_c(d1), pdu_c))
    env = [row[0] for row in day]
    assert max(env) - min(env) > 6  # ± 4 °C over the day, give or take the wander
    hottest = env.index(max(env)) * 2
    assert 10 <= hottest <= 20  # the afternoon, at the site's own hour
    assert all(row[0] == row[1] for row in day)  # neighbours in a rack breathe the same air
    assert any(abs(row[0] - row[2]) > 0.1 for row in day)  # another rack its own
    chips = [row[3] for row in day]
    assert max(chips) - min(chips) > 5  # the chips follow the air
    assert chips.index(max(chips)) == pytest.approx(env.index(max(env)), abs=1)
    pdu_air = [row[4] for row in day]
    assert max(pdu_air) - min(pdu_air) > 6  # the PDU's inlet sensor too
    # The same start time and serials breathe the same air run after run.
    again = Fleet([a1], epoch=midnight)
    again.advance(hottest * 3600)
    assert again.inlet_temp_c(a1.ip) == pytest.approx(max(env), abs=0.01)


def test_stories_are_deterministic_per_serial():
    story = (Event.board_dies(10), Event.fan_stops(20))  # which board and fan: by the serial
    twin_a = _spec("127.96.6.1", AM, "TWIN-STORY", story=story)
    twin_b = _spec("127.96.6.2", AM, "TWIN-STORY", story=story)
    other = _spec("127.96.6.3", AM, "OTHER-STORY", story=story)

    def broken(data):
        return [b.missing for b in data.hashboards], [f.speed == 0 for f in data.fans]

    with _floor([twin_a, twin_b, other]) as floor:
        floor.advance(25)
        a, b = _read(twin_a.ip), _read(twin_b.ip)
        others = [broken(_read(other.ip))]
    assert broken(a) == broken(b)
    assert (_ths(a), [bd.chip_temp for bd in a.hashboards]) == (_ths(b), [bd.chip_temp for bd in b.hashboards])
    assert sum(broken(a)[0]) == 1
    assert sum(broken(a)[1]) == 1
    assert sum(others[0][0]) == 1  # another serial loses a board too, maybe another one

    stories = {f"D{i:05d}": fleet_module.demo_story(f"D{i:05d}", every=8) for i in range(4000)}
    told = {s: v for s, v in stories.items() if v != ((), frozenset())}
    assert 0.09 < len(told) / len(stories) < 0.16  # about one in eight
    assert stories == {s: fleet_module.demo_story(s, every=8) for s in stories}  # the same every time
    events = [e for story, _ in told.values() for e in story]
    assert {e.what for e in events} == set(Happening)
    assert sum(1 for _, faults in told.values() if faults == {Fault.IGNORES_STOP}) > 0
    assert all(e.origin == CONTACT and 300 <= e.at_s <= 1800 for e in events)  # 5–30 min after contact
    assert all(180 <= e.for_s <= 600 for e in events if e.what is Happening.OFFLINE)


def test_events_refuse_nonsense():
    with pytest.raises(ValueError, match="after start or contact"):
        Event.board_dies(10, origin="lunch")
    with pytest.raises(ValueError, match="seconds from now on"):
        Event.offline(-5)
    with pytest.raises(ValueError, match="not a valid Happening"):
        Event("melts", 10)


# --------------------------------------------------------------------------------------------
# Curtailment, as pyasic sends it
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_stop_and_resume_through_pyasic_with_the_pdu_following(vendor):
    model = EMULATED_MODELS[VENDORS[vendor]]
    ip = "127.96.7.1" if vendor == "antminer" else "127.96.7.2"
    miner = _spec(ip, model.slug, f"CURTAIL-{vendor}")
    pdu = _pdu("127.96.7.9" if vendor == "antminer" else "127.96.7.10", ip)
    with _floor([miner], [pdu]) as floor:
        hashing, watts_hashing = _read(ip), _outlet_w(pdu)
        assert _act(ip, "stop_mining") is True
        asleep, watts_asleep = _read(ip), _outlet_w(pdu)
        floor.advance(600)
        cooled = _read(ip)
        assert _act(ip, "is_mining") is False
        assert _act(ip, "resume_mining") is True
        woken = _read(ip)
        floor.advance(model.ramp_s / 2)
        halfway, watts_halfway = _read(ip), _outlet_w(pdu)
        floor.advance(model.ramp_s)
        back, watts_back = _read(ip), _outlet_w(pdu)
        commands = floor.commands(ip)

    assert hashing.is_mining is True
    assert watts_hashing == pytest.approx(model.power_w, rel=0.03)
    # Stopped: no hashrate, still answering its API, fans at idle, a sleep draw of tens of watts.
    assert asleep is not None
    assert _ths(asleep) == 0
    assert asleep.is_mining is False
    assert all(500 < f.speed < 1500 for f in asleep.fans)
    assert 10 < watts_asleep < 100
    assert _chip_c(cooled) < 35  # cooled to a few degrees over the air
    # Resumed: mining again at once, at full rate only after its ramp.
    assert woken.is_mining is True
    assert _ths(woken) < 0.1 * model.hashrate_ths
    assert 0.35 * model.hashrate_ths < _ths(halfway) < 0.65 * model.hashrate_ths
    assert watts_asleep < watts_halfway < watts_hashing
    assert _ths(back) == pytest.approx(model.hashrate_ths, rel=0.03)
    assert watts_back == pytest.approx(watts_hashing, rel=0.02)
    assert [(c.action, c.outcome) for c in commands] == [(STOP, "done"), (RESUME, "done")]
    if vendor == "antminer":  # the web UI's miner-mode: 1 sleep, 0 normal
        assert [(c.via, c.command, c.params["miner-mode"]) for c in commands] == [
            ("web", "set_miner_conf", 1), ("web", "set_miner_conf", 0),
        ]  # fmt: skip
        assert commands[0].params["pools"][0]["url"] == "stratum+tcp://stratum.haven.example:3333"  # kept
    else:  # btminer's privileged commands, decrypted
        assert [(c.via, c.command) for c in commands] == [("rpc", "power_off"), ("rpc", "power_on")]
        assert commands[0].params == {"respbefore": "true"}
    assert commands[1].at_s - commands[0].at_s == pytest.approx(600, abs=5)


def test_a_whatsminer_power_limit_lowers_draw_and_hashrate_in_proportion():
    model = EMULATED_MODELS[WM]
    miner = _spec("127.96.8.1", WM, "LIMIT-1")
    pdu = _pdu("127.96.8.9", miner.ip)
    with _floor([miner], [pdu]) as floor:
        full, watts_full = _read(miner.ip), _outlet_w(pdu)
        assert _act(miner.ip, "set_power_limit", 2600) is True
        floor.advance(model.ramp_s)
        limited, watts_limited = _read(miner.ip), _outlet_w(pdu)
        assert _act(miner.ip, "set_power_limit", 1000) is False  # under the model's range
        assert _act(miner.ip, "set_power_limit", 5000) is False  # over it
        floor.advance(model.ramp_s)
        still, watts_still = _read(miner.ip), _outlet_w(pdu)
        commands = floor.commands(miner.ip)

    share = 2600 / watts_full
    assert limited.wattage_limit == 2600
    assert watts_limited == pytest.approx(2600, rel=0.01)
    assert limited.wattage == pytest.approx(2600, rel=0.01)
    assert _ths(limited) == pytest.approx(_ths(full) * share, rel=0.02)
    assert limited.is_mining is True
    assert (still.wattage_limit, watts_still) == (2600, pytest.approx(2600, rel=0.01))  # refusals change nothing
    assert [(c.command, c.params, c.outcome) for c in commands] == [
        ("adjust_power_limit", {"power_limit": "2600"}, "done"),
        ("adjust_power_limit", {"power_limit": "1000"}, "refused"),
        ("adjust_power_limit", {"power_limit": "5000"}, "refused"),
    ]
    assert (model.power_limit_min_w, model.power_limit_w) == (1700, 3600)


def test_stock_antminer_firmware_takes_no_power_limit():
    """pyasic 0.79 has no power limit for stock Antminers (``set_power_limit`` answers False without
    sending anything): the miner hears nothing and draws as before."""
    model = EMULATED_MODELS[AM]
    miner = _spec("127.96.8.2", AM, "NOLIMIT-1")
    pdu = _pdu("127.96.8.10", miner.ip)
    with _floor([miner], [pdu]) as floor:
        assert _act(miner.ip, "set_power_limit", 2600) is False
        floor.advance(model.ramp_s)
        watts = _outlet_w(pdu)
        assert floor.commands(miner.ip) == []
    assert watts == pytest.approx(model.power_w, rel=0.03)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_miner_that_ignores_stop_answers_success_and_goes_on_hashing_and_drawing(vendor):
    model = EMULATED_MODELS[VENDORS[vendor]]
    ip = "127.96.9.1" if vendor == "antminer" else "127.96.9.2"
    miner = _spec(ip, model.slug, f"STUBBORN-{vendor}", faults={Fault.IGNORES_STOP})
    pdu = _pdu("127.96.9.9" if vendor == "antminer" else "127.96.9.10", ip)
    with _floor([miner], [pdu]) as floor:
        assert _act(ip, "stop_mining") is True
        floor.advance(120)
        data, watts = _read(ip), _outlet_w(pdu)
        (command,) = floor.commands(ip)
    assert data.is_mining is True
    assert _ths(data) == pytest.approx(model.hashrate_ths, rel=0.03)
    assert watts == pytest.approx(model.power_w, rel=0.03)  # only its watts give it away
    assert (command.action, command.outcome) == (STOP, "ignored")


@pytest.fixture
def whatsminer_password():
    old = pyasic_settings.get("default_whatsminer_rpc_password")
    yield lambda pwd: pyasic_settings.update("default_whatsminer_rpc_password", pwd)
    pyasic_settings.update("default_whatsminer_rpc_password", old)


def test_btminer_privileged_api_checks_the_password_and_the_token(whatsminer_password):
    ours = _spec("127.96.10.1", WM, "PRIV-1", rpc_password="s3cret")
    closed = _spec("127.96.10.2", WM, "PRIV-2", privileged_api=False)  # as from the factory
    with _floor([ours, closed]) as floor:
        assert _act(ours.ip, "stop_mining") is False  # pyasic's default "admin" is not its password
        whatsminer_password("s3cret")
        assert _act(ours.ip, "stop_mining") is True
        assert _act(closed.ip, "stop_mining") is False
        # A well-formed command with a token the miner never issued.
        forged = _send(ours.ip, {"enc": 1, "data": _encrypt_for(ours, {"cmd": "power_on", "token": "forged"})})
        ours_commands, closed_commands = floor.commands(ours.ip), floor.commands(closed.ip)
        asleep = _read(ours.ip)
    assert asleep.is_mining is False
    assert (forged["STATUS"], forged["Code"], forged["Msg"]) == ("E", 135, "check token err")
    assert [(c.command, c.outcome) for c in ours_commands] == [
        ("(undecryptable)", "refused"), ("power_off", "done"), ("power_on", "refused"),
    ]  # fmt: skip
    assert [c.outcome for c in closed_commands] == ["refused"]


def _send(ip: str, request: dict) -> dict:
    with socket.create_connection((ip, 4028), timeout=3) as s:
        s.sendall(json.dumps(request).encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.rstrip(b"\x00"))


def _encrypt_for(spec: MinerSpec, command: dict) -> str:
    """A command encrypted as pyasic does it, with the key the miner's password gives."""
    from pyasic.rpc.btminer import TokenData, create_privileged_cmd

    token = _send(spec.ip, {"command": "get_token"})["Msg"]
    from pyasic.rpc.btminer import _crypt

    key = _crypt(spec.rpc_password, "$1$" + token["salt"] + "$").split("$")[3]
    packet = create_privileged_cmd(TokenData(host_sign=command.pop("token"), host_passwd_md5=key), command)
    return json.loads(packet)["data"]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_reboot_through_pyasic_takes_the_miner_away_and_brings_it_back_fresh(vendor):
    model = EMULATED_MODELS[VENDORS[vendor]]
    ip = "127.96.11.1" if vendor == "antminer" else "127.96.11.2"
    miner = _spec(ip, model.slug, f"REBOOT-{vendor}")
    with _floor([miner]) as floor:
        assert _act(ip, "reboot") is True
        floor.advance(5)
        away = _refused(ip)
        floor.advance(model.boot_s)
        back = _read(ip)
        (command,) = floor.commands(ip)
    assert away
    assert back.uptime < 10
    assert command.action == "reboot"


# --------------------------------------------------------------------------------------------
# Sharded over processes: each PDU beside the miners it feeds
# --------------------------------------------------------------------------------------------


def test_shards_keep_each_pdu_with_the_miners_it_feeds():
    miners = [_spec(f"127.96.12.{i}", AM, f"SH-{i}") for i in range(1, 12)]
    pdus = [_pdu("127.96.13.1", *(m.ip for m in miners[0:4])), _pdu("127.96.13.2", *(m.ip for m in miners[4:7]))]
    shards = shard(miners, pdus, 2)
    assert sorted(m.ip for s in shards for m in s[0]) == sorted(m.ip for m in miners)
    for shard_miners, shard_pdus in shards:
        ips = {m.ip for m in shard_miners}
        for p in shard_pdus:
            assert set(p.outlets.values()) <= ips
    assert sorted(len(s[0]) for s in shards) == [5, 6]  # the unmetered ones even it out
    assert shard(miners, pdus, 2) == shards


def test_a_sharded_fleet_pdu_follows_a_stop_sent_to_its_miner(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(
        "from hosting.commissioning.emulator import MinerSpec, PduSpec, serve_forever\n"
        f"miners = [MinerSpec(f'127.96.14.{{i}}', {WM!r}, f'SHARDSTOP-{{i}}', f'02:00:00:00:14:{{i:02x}}') "
        "for i in range(1, 5)]\n"
        f"pdus = [PduSpec('127.96.15.1', {PDU_PORT}, outlets={{1: '127.96.14.3', 2: '127.96.14.4'}})]\n"
        "serve_forever(miners, pdus, processes=2)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, str(script)], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    pdu = _pdu("127.96.15.1", "127.96.14.3", "127.96.14.4")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_refused(f"127.96.14.{i}") for i in range(1, 5)):
            assert proc.poll() is None, "serve_forever exited early"
            time.sleep(0.1)
        assert _act("127.96.14.4", "stop_mining") is True
        second, first = _outlet_w(pdu, 2), _outlet_w(pdu, 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert 10 < second < 100  # asleep, read by the PDU's agent in its process
    assert first == pytest.approx(EMULATED_MODELS[WM].power_w, rel=0.03)


# --------------------------------------------------------------------------------------------
# The demo's floor: stories for machines that go live, the air per site and rack
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_floor_tells_stories_only_of_machines_that_pass_commissioning(floor):
    from capacity.models import Pdu
    from tests.factories import racked

    site, rack = floor["site"], floor["rack"]
    circuit = floor["circuits"][0]
    circuit.pdu = Pdu.objects.create(site=site, name="PDU S", host="127.97.1.1", port=PDU_PORT)
    circuit.save()
    for n in range(1, 17):
        (machine,) = racked(floor, 1, ip=f"127.97.0.{n}")
        machine.slot.outlet = n
        machine.slot.save()

    miners, pdus = fleet_module.from_database(site.slug, fault_every=4, stories_every=1, air_swing_c=3.0)

    assert len(miners) == 16
    for m in miners:
        fault = fleet_module.demo_faults(m.serial, 4)
        story, stubborn = fleet_module.demo_story(m.serial, 1)
        if fault:  # caught by commissioning, never live: no story to tell
            assert (m.faults, m.story) == (fault, ())
        else:
            assert (m.story, m.faults) == (story, stubborn)
        assert (m.site, m.rack, m.inlet_swing_c) == (site.slug, rack.name, 3.0)
    assert any(m.story for m in miners)
    assert any(not fleet_module.demo_faults(m.serial, 4) for m in miners)
    (pdu,) = pdus
    assert (pdu.site, pdu.inlet_swing_c, len(pdu.outlets)) == (site.slug, 3.0, 16)
    # Read again (as --follow does every few seconds): the same specs, so nobody's state is reset.
    assert fleet_module.from_database(site.slug, fault_every=4, stories_every=1, air_swing_c=3.0) == (miners, pdus)
    plain, _ = fleet_module.from_database(site.slug)
    assert not any(m.story or m.inlet_swing_c for m in plain)  # only when asked for
