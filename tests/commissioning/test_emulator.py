"""The miner/PDU emulator, read over real TCP/UDP by the unmodified pyasic and pysnmp (no mocks).

Every miner lives on its own loopback address under 127.90.0.0/16; the emulator runs on an asyncio
loop in a background thread (``running``), the clients on ``asyncio.run`` in the test thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
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

from hosting import catalog, snmp_profiles
from hosting.commissioning import fleet as fleet_module
from hosting.commissioning.emulator import (
    EMULATED_MODELS,
    FAULTS,
    INSTANT,
    REALISTIC,
    Fault,
    Fleet,
    MinerSpec,
    PduSpec,
    Quirk,
    running,
)
from hosting.commissioning.emulator.latency import Latency
from hosting.commissioning.emulator.models import emulated_models
from hosting.commissioning.emulator.noise import seed_of
from hosting.commissioning.emulator.pdu_agent import PduAgent

AM, WM = "antminer-s19-pro", "whatsminer-m30s-plus-plus"
VENDOR_MODELS = {"antminer": AM, "whatsminer": WM}
NETWORK_FAULTS = (Fault.UNREACHABLE, Fault.HUNG, Fault.FLAPPING, Fault.WEB_TIMEOUT)
READING_FAULTS = tuple(f for f in Fault if f not in NETWORK_FAULTS)
FLAP_PERIOD_S = 1.0
PDU_PORT = 16161


def _mac(i: int) -> str:
    return f"02:4e:00:00:{i // 256:02x}:{i % 256:02x}"


def _spec(ip: str, model: str, n: int, faults=(), **kw) -> MinerSpec:
    return MinerSpec(ip, model, f"EMU{n:06d}", _mac(n), hostname=f"emu-{n}", faults=frozenset(faults), **kw)


# The module's fleet: one address per (role, vendor).
NORMAL = {"antminer": "127.90.0.1", "whatsminer": "127.90.0.2"}
MODEL_IPS = {slug: f"127.90.1.{i + 1}" for i, slug in enumerate(EMULATED_MODELS)}
FAULT_IPS = {
    (fault, vendor): f"127.90.{2 + j}.{i + 1}"
    for i, fault in enumerate(READING_FAULTS + NETWORK_FAULTS)
    for j, vendor in enumerate(VENDOR_MODELS)
}
RUNTIME = {"antminer": "127.90.4.1", "whatsminer": "127.90.4.2"}
TWINS = ("127.90.5.1", "127.90.5.2", "127.90.5.3")  # same serial twice, then another serial
PDU_MINERS = {"antminer": "127.90.6.1", "whatsminer": "127.90.6.2"}
PDUS = [
    PduSpec("127.90.7.1", PDU_PORT, profile="apc-rpdu2", inlet_temp_c=24.5, outlets={1: "127.90.6.1", 2: "127.90.6.2"}),
    PduSpec(
        "127.90.7.2", PDU_PORT, community="px2", profile="raritan-px2", inlet_temp_c=31.2, outlets={1: "127.90.6.1"}
    ),
]


def _fleet_specs() -> list[MinerSpec]:
    specs, n = [], 0
    for vendor, ip in NORMAL.items():
        specs.append(_spec(ip, VENDOR_MODELS[vendor], n := n + 1))
    for slug, ip in MODEL_IPS.items():
        specs.append(_spec(ip, slug, n := n + 1))
    for (fault, vendor), ip in FAULT_IPS.items():
        specs.append(_spec(ip, VENDOR_MODELS[vendor], n := n + 1, faults=[fault]))
    for vendor, ip in RUNTIME.items():
        specs.append(_spec(ip, VENDOR_MODELS[vendor], n := n + 1))
    specs.append(MinerSpec(TWINS[0], AM, "TWIN-1", _mac(900)))
    specs.append(MinerSpec(TWINS[1], AM, "TWIN-1", _mac(901)))
    specs.append(MinerSpec(TWINS[2], AM, "TWIN-2", _mac(902)))
    for vendor, ip in PDU_MINERS.items():
        specs.append(_spec(ip, VENDOR_MODELS[vendor], n := n + 1))
    return specs


SPECS = {s.ip: s for s in _fleet_specs()}


@pytest.fixture(scope="module")
def fleet():
    # Instant answers: these tests are about what the firmware says, not how fast.
    with running(Fleet(list(SPECS.values()), web=True, flap_period_s=FLAP_PERIOD_S, latency=INSTANT), PDUS) as f:
        yield f


@pytest.fixture
def quick_pyasic():
    """pyasic gives up on a silent miner after 1 s instead of 3 (settings are process-global)."""
    old = pyasic_settings.get("factory_get_timeout")
    pyasic_settings.update("factory_get_timeout", 1)
    yield
    pyasic_settings.update("factory_get_timeout", old)


def _read(ip: str):
    async def go():
        miner = await pyasic.get_miner(ip)
        return miner, (await miner.get_data() if miner is not None else None)

    return asyncio.run(go())


def _rpc(ip: str, command: str) -> dict:
    with socket.create_connection((ip, 4028), timeout=3) as s:
        s.sendall(json.dumps({"command": command}).encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.endswith(b"\x00")  # cgminer/bmminer NUL-terminate their replies
    return json.loads(data[:-1].replace(b"}{", b"},{"))


def _web(ip: str, cgi: str, timeout: float = 3) -> dict:
    async def go():
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.get(f"http://{ip}/cgi-bin/{cgi}.cgi", auth=httpx.DigestAuth("root", "root"))
            r.raise_for_status()
            return r.json()

    return asyncio.run(go())


def _raw_chip_sensors(ip: str, vendor: str) -> list[list[float]]:
    """Every chip sensor of every board as the firmware reports it (°C): stats.cgi's temp_chip
    lists, or a Whatsminer's per-board min and max."""
    if vendor == "antminer":
        return [chain["temp_chip"] for chain in _web(ip, "stats")["STATS"][0]["chain"]]
    return [[d["Chip Temp Min"], d["Chip Temp Max"]] for d in _rpc(ip, "devs")["DEVS"]]


def _refused(ip: str, port: int = 4028) -> bool:
    try:
        socket.create_connection((ip, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _ths(rate) -> float:
    return float(rate)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def test_models_take_their_figures_from_the_catalog():
    catalog_models = {m["slug"]: m for m in catalog.MACHINE_MODELS}
    for slug, model in EMULATED_MODELS.items():
        row = catalog_models[slug]
        assert model.hashrate_ths == float(row["nominal_hashrate_ths"])
        assert model.power_w == row["nameplate_power_w"]
        counts = (row["hashboards"], row["chips_per_board"], row["fans"])
        assert (model.boards, model.chips_per_board, model.fans) == counts
        assert (model.name, model.vendor, model.pyasic_model) == (row["name"], row["vendor"], row["pyasic_model"])
        assert model.impostor in EMULATED_MODELS
        assert EMULATED_MODELS[model.impostor].vendor == model.vendor
        assert model.impostor != slug
    # One place: a catalog that rates the S19 differently makes a different emulated S19.
    rerated = {**catalog_models["antminer-s19"], "nominal_hashrate_ths": Decimal("90"), "nameplate_power_w": 3100}
    (s19,) = emulated_models([rerated]).values()
    assert (s19.hashrate_ths, s19.power_w) == (90.0, 3100)
    assert not emulated_models([catalog_models["avalon-a1246"]])  # a model without emulated firmware


def test_fault_names_are_one_enum():
    assert frozenset(Fault) == FAULTS
    assert {f.value for f in Fault} >= {"dead_board", "hung", "wrong_mac"}  # names the fleet and the tests use
    assert MinerSpec("127.92.9.1", AM, "X", _mac(1), faults={"dead_board"}).faults == {Fault.DEAD_BOARD}
    assert all(isinstance(f, Fault) for f in fleet_module.DEMO_FAULTS)


@pytest.mark.parametrize("slug", sorted(EMULATED_MODELS))
def test_pyasic_detects_each_model_as_declared(fleet, slug):
    model = EMULATED_MODELS[slug]
    miner, data = _read(MODEL_IPS[slug])
    assert type(miner).__name__ == model.pyasic_class
    assert str(miner.make) == model.pyasic_make == data.make
    assert str(miner.raw_model) == model.pyasic_model == data.model
    assert miner.model == model.pyasic_model_label
    assert (miner.expected_hashboards, miner.expected_chips, miner.expected_fans) == (
        model.boards,
        model.chips_per_board,
        model.fans,
    )
    assert _ths(data.hashrate) == pytest.approx(model.hashrate_ths, rel=0.03)


# --------------------------------------------------------------------------------------------
# A healthy miner of each vendor
# --------------------------------------------------------------------------------------------


def _assert_healthy_boards(data, model):
    assert len(data.hashboards) == model.boards
    for board in data.hashboards:
        assert not board.missing
        assert board.chips == board.expected_chips == model.chips_per_board
        assert _ths(board.hashrate) == pytest.approx(model.hashrate_ths / model.boards, rel=0.02)
        assert 62 <= board.chip_temp <= 75
        assert 55 <= board.temp <= 65
        assert board.serial_number
    assert [5000 <= f.speed <= 6000 for f in data.fans] == [True] * model.fans


def test_healthy_antminer_reads_like_stock_bmminer(fleet):
    spec = SPECS[NORMAL["antminer"]]
    model = EMULATED_MODELS[spec.model]
    miner, data = _read(spec.ip)
    assert type(miner).__name__ == "BMMinerS19Pro"
    assert (data.make, data.model, data.firmware) == ("AntMiner", "S19 Pro", "Stock")
    assert data.mac == spec.mac.upper()  # stock firmware reports it upper-case, pyasic passes it on
    assert data.serial_number == spec.serial  # only the web UI (get_system_info.cgi) has it
    assert data.hostname == spec.hostname
    assert data.fw_ver == model.firmware  # bmminer's CompileTime
    assert data.api_ver == "3.1"
    assert _ths(data.hashrate) == pytest.approx(110, rel=0.03)
    assert _ths(data.expected_hashrate) == 110
    _assert_healthy_boards(data, model)
    assert len(data.fans) == 4
    assert data.wattage is None  # stock Antminers do not report power
    assert data.errors == []
    assert data.is_mining is True
    assert data.uptime > 0
    assert data.fault_light is False
    assert len(data.pools) == 3
    assert data.pools[0].alive


def test_healthy_whatsminer_reads_like_stock_btminer(fleet):
    spec = SPECS[NORMAL["whatsminer"]]
    model = EMULATED_MODELS[spec.model]
    miner, data = _read(spec.ip)
    assert type(miner).__name__ == "BTMinerM30SPlusPlusVG40"
    assert type(miner).__mro__[1].__name__ == "BTMinerV2"  # 4433 is closed: the v2 API
    assert (data.make, data.model) == ("WhatsMiner", "M30S++ VG40")
    assert data.mac == spec.mac.upper()
    assert data.serial_number == spec.serial  # get_miner_info's minersn
    assert data.hostname == spec.hostname
    assert data.fw_ver == model.firmware
    assert _ths(data.hashrate) == pytest.approx(112, rel=0.03)
    assert _ths(data.expected_hashrate) == 112
    _assert_healthy_boards(data, model)
    assert len(data.fans) == 2
    assert data.wattage == pytest.approx(3472, rel=0.03)  # from the joined devs+summary+pools
    assert data.wattage_limit == model.power_limit_w
    assert data.env_temp == 25.0
    assert data.errors == []
    assert data.is_mining is True
    assert data.fan_psu > 0
    assert _refused(spec.ip, 4433)
    assert _refused(spec.ip, 80)


def test_healthy_power_and_temperature_follow_nameplate(fleet):
    for vendor, ip in NORMAL.items():
        model = EMULATED_MODELS[VENDOR_MODELS[vendor]]
        samples = [fleet.power_w(ip) for _ in range(20)]
        assert all(s == pytest.approx(model.power_w, rel=0.03) for s in samples)
        assert len(set(samples)) > 1  # varies a little between samples
        assert fleet.inlet_temp_c(ip) == 25.0


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(VENDOR_MODELS))
@pytest.mark.parametrize("fault", READING_FAULTS)
def test_fault_shows_in_what_pyasic_reads(fleet, fault, vendor):
    ip = FAULT_IPS[(fault, vendor)]
    spec = SPECS[ip]
    model = EMULATED_MODELS[spec.model]
    miner, data = _read(ip)
    boards = data.hashboards
    present = [b for b in boards if not b.missing]
    nominal = model.hashrate_ths
    watts = data.wattage if vendor == "whatsminer" else fleet.power_w(ip)
    if vendor == "antminer":
        assert data.wattage is None

    if fault == "dead_board":
        assert len(boards) == 3
        assert len(present) == 2
        dead = next(b for b in boards if b.missing)
        assert dead.chips is None
        assert dead.hashrate is None
        assert _ths(data.hashrate) == pytest.approx(nominal * 2 / 3, rel=0.04)
        assert watts == pytest.approx(model.power_w * 2 / 3, rel=0.04)
        assert data.errors  # the firmware flags the lost board
    elif fault == "missing_chips":
        assert len(present) == 3
        assert sorted(b.chips for b in boards) == [model.chips_per_board - 20] + [model.chips_per_board] * 2
        assert 0.8 * nominal < _ths(data.hashrate) < 0.97 * nominal
    elif fault == "under_hashing":
        assert len(present) == 3
        assert all(b.chips == model.chips_per_board for b in boards)
        assert _ths(data.hashrate) == pytest.approx(0.8 * nominal, rel=0.03)
    elif fault == "overheating":
        assert all(100 <= b.chip_temp <= 110 for b in boards)
        assert all(85 <= b.temp <= 95 for b in boards)
        assert data.errors
    elif fault == "stopped_fan":
        speeds = [f.speed for f in data.fans]
        assert len(speeds) == model.fans
        assert speeds.count(0) == 1
        assert data.errors
    elif fault == "over_drawing":
        assert watts == pytest.approx(1.25 * model.power_w, rel=0.035)
        assert _ths(data.hashrate) == pytest.approx(nominal, rel=0.03)
    elif fault == "wrong_model":
        other = EMULATED_MODELS[model.impostor]
        assert type(miner).__name__ == other.pyasic_class
        assert (data.make, data.model) == (other.pyasic_make, other.pyasic_model)
        assert data.model != model.pyasic_model
        assert all(b.chips == other.chips_per_board for b in boards)
    elif fault == Fault.HOT_OUTLET:
        # pyasic averages a board's sensors: under the 95 °C limit although its outlet chips are over.
        assert all(b.chip_temp < 95 for b in boards)
        hottest = max(max(board) for board in _raw_chip_sensors(ip, vendor))
        assert hottest > 95
    elif fault == "wrong_mac":
        assert data.mac.lower() != spec.mac
        assert data.mac == fleet.reported_mac(ip)
        assert len(data.mac.split(":")) == 6
    if fault not in ("dead_board", "overheating", "stopped_fan"):
        assert data.errors == []


@pytest.mark.parametrize("vendor", sorted(VENDOR_MODELS))
def test_unreachable_is_refused_and_draws_nothing(fleet, vendor):
    ip = FAULT_IPS[("unreachable", vendor)]
    assert _refused(ip, 4028)
    assert _refused(ip, 80)
    start = time.monotonic()
    miner, _ = _read(ip)
    assert miner is None
    assert time.monotonic() - start < 0.5
    assert fleet.power_w(ip) == 0.0


@pytest.mark.usefixtures("quick_pyasic")
def test_hung_miner_times_out_without_holding_up_the_others(fleet):
    hung = [FAULT_IPS[("hung", v)] for v in sorted(VENDOR_MODELS)]
    healthy = list(NORMAL.values())

    async def go():
        async def timed(ip):
            t = time.monotonic()
            miner = await pyasic.get_miner(ip)
            data = await miner.get_data() if miner is not None else None
            return miner, data, time.monotonic() - t

        return await asyncio.gather(*(timed(ip) for ip in hung + healthy))

    results = asyncio.run(go())
    for miner, _, took in results[: len(hung)]:
        assert miner is None
        assert 0.9 <= took < 2.0  # factory_get_timeout = 1 s
    for miner, data, took in results[len(hung) :]:
        assert miner is not None
        assert data.hashrate is not None
        assert took < 0.9  # read while the hung ones were still being waited on
    for ip in hung:  # it accepts the connection, then says nothing
        assert fleet.power_w(ip) > 0
        with socket.create_connection((ip, 4028), timeout=1) as s:
            s.sendall(b'{"command":"summary"}')
            s.settimeout(0.3)
            with pytest.raises(TimeoutError):
                s.recv(1)


def test_flapping_answers_first_then_comes_and_goes(fleet):
    ip = FAULT_IPS[("flapping", "whatsminer")]
    fleet.set_faults(ip, {"flapping"})  # its clock starts afresh at the next contact
    assert fleet.flap_elapsed_s(ip) is None
    miner, data = _read(ip)  # first contact: identified and read
    assert miner is not None
    assert data.hashrate is not None
    seen = {}
    deadline = time.monotonic() + 4 * FLAP_PERIOD_S
    while time.monotonic() < deadline and len(seen) < 2:
        phase = fleet.flap_elapsed_s(ip) % FLAP_PERIOD_S
        if 0.2 < phase < FLAP_PERIOD_S - 0.2:  # keep clear of the switch-over
            down = fleet.flap_down(ip)
            seen[down] = _refused(ip)
        time.sleep(0.05)
    assert seen == {False: False, True: True}  # refused exactly in its down periods


def test_faults_change_at_run_time(fleet):
    for _vendor, ip in RUNTIME.items():
        fleet.set_faults(ip, {"unreachable"})
        assert _refused(ip)
        assert fleet.power_w(ip) == 0.0
        fleet.set_faults(ip, {"dead_board", "stopped_fan"})
        _, data = _read(ip)
        assert sum(b.missing for b in data.hashboards) == 1
        assert [f.speed for f in data.fans].count(0) == 1
        fleet.set_faults(ip, ())
        _miner, data = _read(ip)
        assert not any(b.missing for b in data.hashboards)
        assert data.errors == []
    with pytest.raises(ValueError, match="unknown faults"):
        fleet.set_faults(RUNTIME["antminer"], {"on_fire"})
    assert set(READING_FAULTS + NETWORK_FAULTS) == FAULTS


def test_readings_are_deterministic_per_serial(fleet):
    def boards(ip):
        _, data = _read(ip)
        return _ths(data.hashrate), [(_ths(b.hashrate), b.temp, b.chip_temp) for b in data.hashboards]

    first, twin, other = (boards(ip) for ip in TWINS)
    assert first == twin  # same serial, same n-th sample
    assert first != other
    assert boards(TWINS[0]) != first  # the next sample differs a little
    assert [fleet.power_w(TWINS[0]) for _ in range(5)] == [fleet.power_w(TWINS[1]) for _ in range(5)]


# --------------------------------------------------------------------------------------------
# Protocol details pyasic relies on
# --------------------------------------------------------------------------------------------


def test_antminer_refuses_joined_commands_like_bmminer(fleet):
    ip = NORMAL["antminer"]
    reply = _rpc(ip, "summary+stats")
    assert reply["STATUS"][0]["STATUS"] == "E"
    assert reply["STATUS"][0]["Msg"] == "Invalid command"
    assert _rpc(ip, "version")["VERSION"][0]["Type"] == "Antminer S19 Pro"
    stats = _rpc(ip, "stats")  # bmminer's missing comma between the two STATS objects, mended
    assert stats["STATS"][1]["total_rateideal"] == 110000.0
    assert stats["STATS"][1]["fan_num"] == 4


def test_whatsminer_answers_joined_commands_with_the_wattage(fleet):
    reply = _rpc(NORMAL["whatsminer"], "devs+summary+pools")
    assert set(reply) == {"devs", "summary", "pools", "id"}
    assert reply["summary"][0]["SUMMARY"][0]["Power"] == pytest.approx(3472, rel=0.03)
    assert len(reply["devs"][0]["DEVS"]) == 3
    assert _rpc(NORMAL["whatsminer"], "summary+get_version")["STATUS"] == "E"


def test_antminer_web_ui_digest_auth_and_marathon_probe(fleet):
    ip = NORMAL["antminer"]

    async def go():
        async with httpx.AsyncClient(timeout=3) as client:
            anon = await client.get(f"http://{ip}/")
            wrong = await client.get(
                f"http://{ip}/cgi-bin/get_system_info.cgi", auth=httpx.DigestAuth("root", "not-root")
            )
            ok = await client.get(f"http://{ip}/cgi-bin/get_system_info.cgi", auth=httpx.DigestAuth("root", "root"))
            kaonsu = await client.get(f"http://{ip}/kaonsu/v1/brief", auth=httpx.DigestAuth("root", "root"))
            stats = await client.get(f"http://{ip}/cgi-bin/stats.cgi", auth=httpx.DigestAuth("root", "root"))
            return anon, wrong, ok, kaonsu, stats

    anon, wrong, ok, kaonsu, stats = asyncio.run(go())
    assert anon.status_code == 401
    assert anon.headers["www-authenticate"].startswith('Digest realm="antMiner Configuration"')
    assert wrong.status_code == 401
    assert ok.status_code == 200
    assert ok.json()["minertype"] == "Antminer S19 Pro"
    assert kaonsu.status_code == 404
    with pytest.raises(json.JSONDecodeError):
        json.loads(kaonsu.text)
    assert [c["index"] for c in stats.json()["STATS"][0]["chain"]] == [0, 1, 2]
    dead = FAULT_IPS[("dead_board", "antminer")]

    async def dead_chain():
        async with httpx.AsyncClient(timeout=3) as client:
            r = await client.get(f"http://{dead}/cgi-bin/stats.cgi", auth=httpx.DigestAuth("root", "root"))
            return r.json()["STATS"][0]["chain"]

    assert len(asyncio.run(dead_chain())) == 2  # a dead board is left out of the list


def _raw_http(ip: str, data: bytes) -> bytes:
    """What the web UI sends back to `data` until it closes the connection (or 1 s of silence)."""
    with socket.create_connection((ip, 80), timeout=3) as s:
        s.sendall(data)
        s.settimeout(1)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


def test_web_ui_speaks_http_like_lighttpd(fleet):
    ip = NORMAL["antminer"]
    pipelined = _raw_http(
        ip,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"  # keep-alive: the connection stays open for the next
        b"POST /cgi-bin/blink.cgi HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        b"GET /cgi-bin/stats.cgi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert pipelined.count(b"HTTP/1.1 401 Unauthorized\r\n") == 3  # every one challenged, in order
    assert pipelined.count(b"Server: lighttpd/1.4.32\r\n") == 3
    assert b"<h1>401 - Unauthorized</h1>" in pipelined

    garbage = _raw_http(ip, b"NOT HTTP AT ALL\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"<title>400 - Bad Request</title>" in garbage  # lighttpd's error page, then closed

    huge = _raw_http(ip, b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")

    old = _raw_http(ip, b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0: answered, then closed
    assert old.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"connection: close" in old.lower()


def test_the_emulator_stays_free_of_django():
    """It runs on site hosts and in test threads without settings: plain data from the catalog only."""
    import ast

    package = Path(__file__).resolve().parents[2] / "hosting" / "commissioning" / "emulator"
    allowed = ("hosting.catalog", "hosting.commissioning.emulator", "hosting.snmp_profiles")
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not name.startswith("django"), (path.name, name)
                assert not name.startswith("hosting") or name.startswith(allowed), (path.name, name)


def test_wrong_web_password_leaves_pyasic_without_identity(fleet):
    old = pyasic_settings.get("default_antminer_web_password")
    pyasic_settings.update("default_antminer_web_password", "not-root")
    try:
        miner, data = _read(NORMAL["antminer"])
    finally:
        pyasic_settings.update("default_antminer_web_password", old)
    assert type(miner).__name__ == "BMMinerS19Pro"  # RPC still identifies it
    assert data.serial_number is None
    assert data.hostname is None
    assert all(b.missing for b in data.hashboards)


# --------------------------------------------------------------------------------------------
# PDUs
# --------------------------------------------------------------------------------------------


def _snmp_get(pdu: PduSpec, oids: list[str], community: str | None = None):
    async def go():
        engine = SnmpEngine()
        try:
            target = await UdpTransportTarget.create((pdu.host, pdu.port), timeout=1, retries=1)
            return await get_cmd(
                engine,
                CommunityData(community or pdu.community, mpModel=1),  # noqa: S508 (PDUs speak v2c)
                target,
                ContextData(),
                *(ObjectType(ObjectIdentity(o)) for o in oids),
            )
        finally:
            engine.close_dispatcher()

    return asyncio.run(go())


@pytest.mark.parametrize("pdu", PDUS, ids=[p.profile for p in PDUS])
def test_pdu_agent_reads_follow_the_miners(fleet, pdu):
    prof = snmp_profiles.PROFILES[pdu.profile]
    volts = prof["nominal_volts"]
    am = PDU_MINERS["antminer"]
    measurements = [("outlet_power_w", o) for o in pdu.outlets] + [("outlet_current_a", o) for o in pdu.outlets]
    measurements += [("device_power_w", None), ("inlet_temp_c", None)]
    oids = [snmp_profiles.oid(pdu.profile, name, outlet) for name, outlet in measurements]

    def read():
        error, status, _, binds = _snmp_get(pdu, [o for o, _ in oids])
        assert error is None
        assert int(status) == 0
        return {m: int(value) * scale for m, (_, scale), (_, value) in zip(measurements, oids, binds, strict=True)}

    values = read()
    for outlet, ip in pdu.outlets.items():
        nameplate = EMULATED_MODELS[SPECS[ip].model].power_w
        assert values[("outlet_power_w", outlet)] == pytest.approx(nameplate, rel=0.03)
        assert values[("outlet_current_a", outlet)] == pytest.approx(nameplate / volts, rel=0.04)
    total = sum(values[("outlet_power_w", o)] for o in pdu.outlets)
    assert values[("device_power_w", None)] == pytest.approx(total, rel=0.02)
    assert values[("inlet_temp_c", None)] == pytest.approx(pdu.inlet_temp_c, abs=0.05)

    fleet.set_faults(am, {"over_drawing"})
    try:
        outlet = next(o for o, ip in pdu.outlets.items() if ip == am)
        assert read()[("outlet_power_w", outlet)] == pytest.approx(1.25 * EMULATED_MODELS[AM].power_w, rel=0.035)
    finally:
        fleet.set_faults(am, ())

    error, *_ = _snmp_get(pdu, ["1.3.6.1.2.1.1.1.0"], community="wrong-community")
    assert error is not None  # dropped, as a real agent does: the manager times out


def test_snmp_profile_oids():
    assert snmp_profiles.oid("apc-rpdu2", "outlet_power_w", 3) == ("1.3.6.1.4.1.318.1.1.26.9.4.3.1.7.3", 1.0)
    assert snmp_profiles.oid("apc-rpdu2", "device_power_w") == ("1.3.6.1.4.1.318.1.1.26.4.3.1.5.1", 10.0)
    assert snmp_profiles.oid("raritan-px2", "outlet_power_w", 2)[0] == "1.3.6.1.4.1.13742.6.5.4.3.1.4.1.2.5"
    for name in snmp_profiles.PROFILES:
        assert set(snmp_profiles.MEASUREMENTS) <= set(snmp_profiles.PROFILES[name])
    with pytest.raises(ValueError, match="per outlet"):
        snmp_profiles.oid("apc-rpdu2", "outlet_current_a")
    with pytest.raises(KeyError):
        snmp_profiles.oid("nope", "device_power_w")


# --------------------------------------------------------------------------------------------
# Every sensor, in the stock format
# --------------------------------------------------------------------------------------------

SENSORS = re.compile(r"^(\d+)-(\d+)-(\d+)-(\d+)$")  # bmminer's "a-b-c-d": inlet, inlet, outlet, outlet


def test_every_sensor_a_stock_s19_reports(fleet):
    ip = NORMAL["antminer"]
    stats = _rpc(ip, "stats")["STATS"][1]
    assert (stats["temp_num"], stats["fan_num"]) == (3, 4)
    assert all(5000 <= stats[f"fan{i}"] <= 6000 for i in range(1, 5))
    for i in range(1, 4):
        for kind in ("pcb", "chip"):
            inlet_a, inlet_b, outlet_a, outlet_b = map(int, SENSORS.match(stats[f"temp_{kind}{i}"]).groups())
            assert max(inlet_a, inlet_b) < min(outlet_a, outlet_b)  # the air warms across the board
        assert isinstance(stats[f"temp{i}"], int)
        assert isinstance(stats[f"temp2_{i}"], int)
        assert stats[f"chain_acn{i}"] == 114
    assert isinstance(_rpc(ip, "summary")["SUMMARY"][0]["Hardware Errors"], int)

    web = _web(ip, "stats")["STATS"][0]
    assert len(web["fan"]) == 4
    for chain in web["chain"]:
        assert len(chain["temp_pcb"]) == len(chain["temp_chip"]) == len(chain["temp_pic"]) == 4
        assert all(isinstance(t, int) for t in chain["temp_pcb"] + chain["temp_chip"])
    assert isinstance(_web(ip, "summary")["SUMMARY"][0]["hw_all"], int)


def test_hot_outlet_heats_only_the_outlet_sensors(fleet):
    """Outlet chips over a 95 °C limit (98) while the inlet ones read 83, PCB 92 against 76: only
    a check that reads every sensor sees it, and the firmware raises nothing."""
    ip = FAULT_IPS[(Fault.HOT_OUTLET, "antminer")]
    stats = _rpc(ip, "stats")["STATS"][1]
    for i in range(1, 4):
        chip = [int(t) for t in SENSORS.match(stats[f"temp_chip{i}"]).groups()]
        pcb = [int(t) for t in SENSORS.match(stats[f"temp_pcb{i}"]).groups()]
        assert max(chip[:2]) <= 84 < 96 <= min(chip[2:])
        assert max(pcb[:2]) <= 77 < 90 <= min(pcb[2:])
        assert sum(chip) / 4 < 95
        assert sum(pcb) / 4 < 85
    for chain in _web(ip, "stats")["STATS"][0]["chain"]:
        assert max(chain["temp_chip"]) > 95 > sum(chain["temp_chip"]) / 4
    assert _web(ip, "summary")["SUMMARY"][0]["status"][3] == {"type": "temp", "status": "s", "code": 0, "msg": ""}
    devs = _rpc(FAULT_IPS[(Fault.HOT_OUTLET, "whatsminer")], "devs")["DEVS"]
    assert all(d["Chip Temp Max"] > 95 > d["Chip Temp Avg"] for d in devs)


# --------------------------------------------------------------------------------------------
# Answering like real hardware: slow, uneven, one request at a time
# --------------------------------------------------------------------------------------------


def test_realistic_latency_is_uneven_with_a_long_tail_and_seeded():
    paces = [Latency.of(REALISTIC, seed_of(f"PACE{i:05d}")) for i in range(2000)]
    rpc = sorted(p.rpc_s("summary") for p in paces)
    cgi = sorted(p.cgi("/cgi-bin/summary.cgi") for p in paces)
    quick = sorted(p.quick_s() for p in paces)
    assert 0.003 < rpc[1000] < 0.03  # bmminer's RPC: a few to tens of ms
    assert 0.03 < cgi[1000] < 0.3  # lighttpd's CGIs: tens to hundreds
    assert quick[1000] < 0.005  # lighttpd's own answers
    assert 0.04 < sum(p.slow for p in paces) / len(paces) < 0.12  # some miners far slower …
    assert cgi[-20] > 4 * cgi[1000]
    many = [paces[i].cgi("/cgi-bin/stats.cgi") for i in range(200) for _ in range(50)]
    assert max(many) >= 1.0  # … and now and then a stall of a second or more
    again = Latency.of(REALISTIC, seed_of("PACE00007"))
    first = Latency.of(REALISTIC, seed_of("PACE00007"))
    assert [again.rpc_s("stats") for _ in range(30)] == [first.rpc_s("stats") for _ in range(30)]
    assert Latency.of(INSTANT, 1) is None
    with pytest.raises(ValueError, match="unknown latency profile"):
        Fleet([], latency="glacial")


async def _ask(ip: str, command: str, done: list) -> None:
    reader, writer = await asyncio.open_connection(ip, 4028)
    writer.write(json.dumps({"command": command}).encode())
    await writer.drain()
    await reader.read()
    writer.close()
    done.append((ip, command))


def test_a_miner_serves_one_request_at_a_time_in_arrival_order():
    spec = MinerSpec("127.93.0.1", AM, "SERIAL-LINE-1", _mac(3001))
    twin = Latency.of(REALISTIC, seed_of(spec.serial))  # draws what the miner will draw
    with running(Fleet([spec], web=False, latency=REALISTIC)):

        async def go():
            done: list = []
            started = time.monotonic()
            tasks = []
            for _ in range(6):
                tasks.append(asyncio.create_task(_ask(spec.ip, "summary", done)))
                await asyncio.sleep(0.002)  # arrive in this order
            await asyncio.gather(*tasks)
            return time.monotonic() - started, done

        took, done = asyncio.run(go())
    assert len(done) == 6
    queued = sum(twin.rpc_s("summary") for _ in range(6))
    # Served one after another, the last waited for all the others: never sooner than the sum of
    # their delays (served concurrently it would take about the longest one).
    assert took >= queued


def test_a_slow_answer_holds_up_its_own_miner_only():
    slow = MinerSpec("127.93.1.1", WM, "SLOW-PSU-1", _mac(3101), quirks={Quirk.SLOW_PSU})
    neighbour = MinerSpec("127.93.1.2", AM, "NEIGHBOUR-1", _mac(3102))
    with running(Fleet([slow, neighbour], web=False, latency=REALISTIC)):

        async def go():
            done: list = []
            psu = asyncio.create_task(_ask(slow.ip, "get_psu", done))
            await asyncio.sleep(0.05)
            behind = asyncio.create_task(_ask(slow.ip, "summary", done))
            beside = asyncio.create_task(_ask(neighbour.ip, "summary", done))
            await asyncio.gather(psu, behind, beside)
            return done

        done = asyncio.run(go())
    # The neighbour answered while the PSU read (2–4 s) went on: the loop never blocked; the
    # slow miner's next command waited for its PSU read (one command at a time).
    assert done == [(neighbour.ip, "summary"), (slow.ip, "get_psu"), (slow.ip, "summary")]


def test_web_ui_times_out_while_the_rpc_answers(fleet):
    ip = FAULT_IPS[(Fault.WEB_TIMEOUT, "antminer")]

    async def go():
        async with httpx.AsyncClient(timeout=0.5) as client:
            challenge = await client.get(f"http://{ip}/")
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://{ip}/cgi-bin/get_system_info.cgi", auth=httpx.DigestAuth("root", "root"))
            return challenge

    assert asyncio.run(go()).status_code == 401  # lighttpd itself still answers
    assert "SUMMARY" in _rpc(ip, "summary")


def test_pyasic_reads_a_realistic_fleet():
    slugs = sorted(EMULATED_MODELS)
    specs = [
        MinerSpec(f"127.93.2.{i + 1}", slugs[i % len(slugs)], f"REAL{i:04d}", _mac(3200 + i), quirks=quirks)
        for i, quirks in enumerate([()] * 13 + [{Quirk.SLOW_PSU}])
    ]

    async def sweep():
        async def one(spec):
            miner = await pyasic.get_miner(spec.ip)
            data = await miner.get_data()
            return type(miner).__name__, data.serial_number, data.hashrate is not None

        return await asyncio.gather(*(one(s) for s in specs))

    with running(Fleet(specs, web=True)) as emulated:
        assert emulated.latency == REALISTIC  # the default
        results = asyncio.run(sweep())
    assert results == [(EMULATED_MODELS[s.model].pyasic_class, s.serial, True) for s in specs]


def test_miners_join_and_leave_a_running_fleet():
    first = MinerSpec("127.93.3.1", AM, "JOIN-1", _mac(3301))
    later = MinerSpec("127.93.3.2", WM, "JOIN-2", _mac(3302))
    with running(Fleet([first], web=False, latency=INSTANT)) as emulated:
        assert _refused(later.ip)
        emulated.add(later)  # racked while the fleet runs
        assert "SUMMARY" in _rpc(later.ip, "summary")
        with pytest.raises(ValueError, match="two miners"):
            emulated.add(later)
        emulated.remove(first.ip)  # pulled
        assert _refused(first.ip)
        assert set(emulated.specs) == {later.ip}
    agent = PduAgent(PduSpec("127.93.3.9", PDU_PORT, outlets={1: first.ip}), emulated)
    agent.set_outlets({1: later.ip, 30: first.ip})  # rewired, past the strip's 24 outlets
    assert agent.outlet_power_w(1) > 0
    assert agent.outlet_power_w(30) == 0.0  # its miner is gone


# --------------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------------


def test_three_hundred_miners_read_concurrently():
    slugs = sorted(EMULATED_MODELS)
    specs = [
        MinerSpec(f"127.91.{i // 200}.{i % 200 + 1}", slugs[i % len(slugs)], f"SCALE{i:05d}", _mac(1000 + i))
        for i in range(300)
    ]

    async def sweep():
        gate = asyncio.Semaphore(50)

        async def one(spec):
            async with gate:
                miner = await pyasic.get_miner(spec.ip)
                data = await miner.get_data()
                model = EMULATED_MODELS[spec.model]
                return type(miner).__name__ == model.pyasic_class and data.hashrate is not None

        return await asyncio.gather(*(one(s) for s in specs))

    with running(Fleet(specs, web=True, latency=INSTANT)):  # the emulator's own cost, not firmware's
        start = time.monotonic()
        results = asyncio.run(sweep())
        took = time.monotonic() - start
    assert all(results)
    print(f"\n300 emulated miners read by pyasic at concurrency 50: {took:.1f} s, {300 / took:.0f} miners/s")


def test_fleet_refuses_bad_specs():
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        MinerSpec("10.0.0.1", AM, "X", _mac(1))
    with pytest.raises(ValueError, match="unknown model"):
        MinerSpec("127.92.0.1", "antminer-s9", "X", _mac(1))
    with pytest.raises(ValueError, match="two miners"):
        Fleet([MinerSpec("127.92.0.1", AM, "X", _mac(1)), MinerSpec("127.92.0.1", WM, "Y", _mac(2))])


def test_without_the_web_ui_only_whatsminers_are_fully_readable():
    specs = [MinerSpec("127.92.1.1", AM, "NOWEB-1", _mac(2001)), MinerSpec("127.92.1.2", WM, "NOWEB-2", _mac(2002))]
    with running(Fleet(specs, web=False)) as fleet:
        assert fleet.web is False
        assert _refused("127.92.1.1", 80)
        am_miner, am_data = _read("127.92.1.1")
        _, wm_data = _read("127.92.1.2")
    assert type(am_miner).__name__ == "BMMinerS19Pro"  # the RPC alone still identifies it
    assert am_data.hashrate is not None
    assert am_data.serial_number is None
    assert all(b.missing for b in am_data.hashboards)  # hashboards come from stats.cgi
    assert wm_data.serial_number == "NOWEB-2"
    assert not any(b.missing for b in wm_data.hashboards)


def test_serve_forever_shards_over_processes_until_sigterm(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(
        "from hosting.commissioning.emulator import MinerSpec, serve_forever\n"
        "from hosting.commissioning.emulator import PduSpec\n"
        f"miners = [MinerSpec(f'127.92.2.{{i}}', {AM!r} if i % 2 else {WM!r}, f'SHARD-{{i}}', "
        "f'02:00:00:00:02:{i:02x}') for i in range(1, 5)]\n"
        f"pdus = [PduSpec('127.92.3.1', {PDU_PORT}, outlets={{1: '127.92.2.1', 2: '127.92.2.2'}})]\n"
        "serve_forever(miners, pdus, processes=2)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, str(script)], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (_refused("127.92.2.1") or _refused("127.92.2.2")):
            assert proc.poll() is None, "serve_forever exited early"
            time.sleep(0.1)
        for i in range(1, 5):  # both shards answer
            assert "SUMMARY" in _rpc(f"127.92.2.{i}", "summary")
        pdu = PduSpec("127.92.3.1", PDU_PORT)
        oid, scale = snmp_profiles.oid("apc-rpdu2", "device_power_w")
        error, _, _, binds = _snmp_get(pdu, [oid])
        assert error is None
        expected = EMULATED_MODELS[AM].power_w + EMULATED_MODELS[WM].power_w
        assert int(binds[0][1]) * scale == pytest.approx(expected, rel=0.03)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert _refused("127.92.2.1")
