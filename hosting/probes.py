"""Probes: the only code that talks to the world — miners through pyasic, PDUs over SNMP.

Asyncio throughout (pyasic is), with a timeout on every call and a short retry with
backoff on transient network errors, so that one process checks many machines at once
and a hung miner costs its own deadline, not the others'. What comes back is turned into
the plain dataclasses of `hosting.readings`, which the commissioning checks and telemetry's
windows judge without seeing pyasic or pysnmp. Shared by commissioning (identify, burn-in
samples, one outlet's GET) and telemetry (a poll's reads, one SNMP walk per PDU).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import itertools
import logging
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pyasic
from pyasic import settings as pyasic_settings
from pyasic.device.algorithm import SHA256Unit
from pyasic.web.antminer import AntminerModernWebAPI
from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api as snmp_api

from hosting import snmp_profiles
from hosting.readings import Board, Identity, Reading

log = logging.getLogger(__name__)

# One get_data reads identity and the first sample together: for a zero-length burn-in a
# commissioning costs what a plain sweep costs.
IDENTITY_AND_SAMPLE = [
    "serial_number",
    "mac",
    "fw_ver",
    "hostname",
    "hashrate",
    "hashboards",
    "env_temp",
    "wattage",
    "fans",
    "errors",
]
SAMPLE = ["hashrate", "hashboards", "env_temp", "wattage", "fans", "errors"]
# What a telemetry window records, and no more: no identity, pools, config or LED state
# (on a stock Antminer: RPC summary and stats, web summary and stats).
POLL = [*SAMPLE, "uptime"]


def _ths(rate) -> float | None:
    return None if rate is None else round(float(rate.into(SHA256Unit.TH)), 3)


def _answered(data) -> bool:
    """pyasic fills in what it expected (boards marked missing, no fans) when a miner does
    not answer; only a hashrate, a board found or a fan reading shows that it did."""
    return (
        data.hashrate is not None
        or any(not b.missing for b in data.hashboards)
        or any(f.speed is not None for f in data.fans)
    )


Sensors = dict[int, tuple[tuple[float, ...], tuple[float, ...]]]  # board slot → (chip °C…, PCB °C…)


class Replies(dict):
    """The raw replies pyasic parsed, by (api, command), kept for what pyasic drops: it reduces
    each board's sensors to one figure (their average), the checks judge every sensor.

    Recorded at pyasic's `send_command` of the miner's RPC and web clients, the one call
    every command goes through, so reading them costs no extra request."""

    @classmethod
    def recording(cls, miner: Any) -> Replies:
        replies = cls()
        for api in ("rpc", "web"):
            client = getattr(miner, api, None)
            if client is not None and hasattr(client, "send_command"):
                client.send_command = _Recorded(replies, api, client.send_command)
        return replies

    def record(self, api: str, command: str, reply: Any) -> None:
        names = str(command).split("+")
        if len(names) == 1:
            self[(api, names[0])] = reply
        elif isinstance(reply, Mapping):  # a joined command answers {"cmd": [reply], …}
            for name in names:
                part = reply.get(name)
                if isinstance(part, list) and part:
                    self[(api, name)] = part[0]

    def sensors(self) -> Sensors:
        """Every chip and PCB sensor of each board: from the Antminer web UI's stats, else the
        bmminer RPC stats, else the Whatsminer RPC devs; empty where none of them answered."""
        for read in (_web_chain_sensors, _rpc_stats_sensors, _devs_sensors):
            try:
                found = read(self)
            except (LookupError, TypeError, ValueError, AttributeError):  # an answer of another shape
                found = {}
            if found:
                return found
        return {}


class _Recorded:
    """A client's `send_command` (`send`, which a web session may swap), each reply recorded."""

    def __init__(self, replies: Replies, api: str, send: Callable[..., Any]):
        self.replies, self.api, self.send = replies, api, send

    async def __call__(self, command: str, *args: Any, **kwargs: Any) -> Any:
        reply = await self.send(command, *args, **kwargs)
        self.replies.record(self.api, command, reply)
        return reply


def _temps(values) -> tuple[float, ...]:
    """Sensor readings as numbers; 0 is how Antminers report a sensor that is not fitted."""
    if isinstance(values, str):  # bmminer RPC: "62-63-70-71"
        values = values.split("-")
    return tuple(float(v) for v in values if float(v) != 0)


def _web_chain_sensors(replies: Replies) -> Sensors:
    chains = replies[("web", "stats")]["STATS"][0]["chain"]
    return {int(c["index"]): (_temps(c.get("temp_chip", ())), _temps(c.get("temp_pcb", ()))) for c in chains}


def _rpc_stats_sensors(replies: Replies) -> Sensors:
    stats = replies[("rpc", "stats")]["STATS"][-1]
    # Chains are numbered from 1 (or 6, or 11) as pyasic finds them by their chip counts.
    offset = next((g for g in (1, 6, 11) if any(stats.get(f"chain_acn{g + i}") for i in range(5))), 1)
    found = {}
    for n in range(offset, offset + 16):
        chip, pcb = stats.get(f"temp_chip{n}"), stats.get(f"temp_pcb{n}")
        if chip is not None or pcb is not None:
            found[n - offset] = (_temps(chip or ()), _temps(pcb or ()))
    return found


def _devs_sensors(replies: Replies) -> Sensors:
    found = {}
    for dev in replies[("rpc", "devs")]["DEVS"]:
        slot = dev.get("ASC", dev.get("Slot"))
        chips = _temps([dev[k] for k in ("Chip Temp Min", "Chip Temp Max") if k in dev])
        found[int(slot)] = (chips, _temps([dev["Temperature"]]) if "Temperature" in dev else ())
    return found


def _reading(data, now: dt.datetime, sensors: Sensors | None = None) -> Reading:
    sensors = sensors or {}
    boards = []
    for b in data.hashboards:
        chip, pcb = sensors.get(b.slot, ((), ())) if not b.missing else ((), ())
        boards.append(
            Board(
                slot=b.slot,
                hashrate_ths=_ths(b.hashrate),
                chips=b.chips,
                chip_temp_c=max(chip) if chip else b.chip_temp,
                board_temp_c=max(pcb) if pcb else b.temp,
                present=not b.missing,
                chip_temps_c=chip,
                pcb_temps_c=pcb,
            )
        )
    return Reading(
        taken_at=now,
        reachable=True,
        hashrate_ths=_ths(data.hashrate),
        boards=tuple(boards),
        fans_rpm=tuple(f.speed or 0 for f in data.fans),
        power_w=data.wattage,
        errors=tuple(str(e.error_message if hasattr(e, "error_message") else e) for e in data.errors or ()),
        env_temp_c=data.env_temp,
        uptime_s=getattr(data, "uptime", None),
    )


@dataclass
class Found:
    """A miner pyasic detected, and the raw replies of its last read."""

    miner: Any
    replies: Replies = field(default_factory=Replies)


class ProbeLimiter:
    """How many miners one process talks to at once.

    pyasic's timeouts are wall-clock: a process that takes on more miners than its CPU (or the
    network) can answer makes healthy miners time out and fail as "does not answer". Too few,
    and the process waits on slow miners with its CPU idle. So the limit adapts between
    `floor` and `ceiling`, much as TCP's congestion window does: while probes are held back
    by it and answers come back about as fast as they did unloaded, it grows (doubling at
    first, until answers begin to slow); as soon as they take twice as long and more than
    `budget_s` (a queue is forming), it shrinks; one change per round trip, so that each
    is seen before the next. Slow miners do not shrink it: a probe's latency is compared
    with what the same kind of probe took before, and the median of a window is used, so a
    tail of slow or silent miners does not count. Probes of runs under way (a retry, a
    burn-in sample) go before the first probes of new runs: their deadlines are running."""

    WINDOW = 16  # probes of a kind between adjustments
    budget_s = 1.0  # a median that is always safe: a third of pyasic's default 3 s per detection step

    def __init__(self, ceiling: int, floor: int = 4, start: int = 16):
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self.limit = float(max(self.floor, min(start, self.ceiling)))
        self.in_use = 0
        self._going: collections.deque[asyncio.Future] = collections.deque()  # probes of runs under way
        self._fresh: collections.deque[asyncio.Future] = collections.deque()  # first probes of new runs
        self._windows: dict[str, list[float]] = collections.defaultdict(list)
        self._baselines: dict[str, float] = {}
        self._measured_at: dict[str, float] = {}
        self._slow_start = True
        self._next_change = 0.0  # one change per round trip: its effect is seen before the next

    @contextlib.asynccontextmanager
    async def slot(self, kind: str, *, first: bool = False):
        """Hold one of the limit's places while talking to a miner; the wait for a place is
        not part of the probe's latency (nor of its timeout). A run's `first` probe waits
        behind every probe of runs already under way (a retry, a burn-in sample): their
        deadlines run, a fresh run's has not started."""
        await self._acquire(self._fresh if first else self._going)
        started = time.monotonic()
        try:
            yield
        finally:
            self._observe(kind, time.monotonic() - started)
            self.in_use -= 1
            self._wake()

    async def _acquire(self, queue: collections.deque[asyncio.Future]) -> None:
        if self.in_use < int(self.limit) and not self._going and not (self._fresh and queue is self._fresh):
            self.in_use += 1
            return
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn  # _wake counted us in before setting it
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.in_use -= 1  # woken and cancelled at once: give the place on
                self._wake()
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(turn)
            raise

    def _wake(self) -> None:
        for queue in (self._going, self._fresh):
            while queue and self.in_use < int(self.limit):
                turn = queue.popleft()
                if not turn.done():
                    self.in_use += 1
                    turn.set_result(None)

    def _observe(self, kind: str, seconds: float) -> None:
        window = self._windows[kind]
        window.append(seconds)
        if len(window) < self.WINDOW:
            return
        now = statistics.median(window)
        window.clear()
        # The unloaded latency, forgotten slowly (1 % a second): the fleet probed may change.
        clock = time.monotonic()
        since, self._measured_at[kind] = clock - self._measured_at.get(kind, clock), clock
        baseline = self._baselines[kind] = min(now, self._baselines.get(kind, now) * 1.01**since)
        if clock < self._next_change:
            return
        if now > max(2 * baseline, self.budget_s):
            self.limit = max(float(self.floor), self.limit * 0.8)
            self._slow_start = False
        elif self._going or self._fresh:  # the limit is what holds probes back
            # Slow start ends as answers begin to slow (HyStart): before it overshoots.
            self._slow_start = self._slow_start and now < 1.5 * baseline
            self.limit = min(float(self.ceiling), self.limit * 2 if self._slow_start else self.limit * 1.2 + 1)
        else:
            return
        self._next_change = time.monotonic() + now


class MinerProbe:
    """Finds a miner once (pyasic detection), then samples the object it built."""

    def __init__(
        self, timeout_s: float, attempts: int = 3, backoff_s: float = 0.5, limiter: ProbeLimiter | None = None
    ):
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.limiter = limiter or ProbeLimiter(ceiling=1_000_000, start=1_000_000)
        # pyasic's detection gives each of its steps 3 s of wall clock, so a busy process (or a
        # busy network) times healthy miners out or takes them for another model; let them
        # have the probe's own timeout, which bounds the whole call.
        if pyasic_settings.get("factory_get_timeout", 3) < timeout_s:
            pyasic_settings.update("factory_get_timeout", math.ceil(timeout_s))

    async def identify(
        self, ip: str, started: Callable[[], None] = lambda: None
    ) -> tuple[Identity, Reading, Found | None]:
        """Who answers at `ip`, and a first sample; retried with backoff while nobody does.
        `started` is called when the first attempt begins (after any wait for a place)."""
        for attempt in range(self.attempts):
            try:
                async with self.limiter.slot("identify", first=attempt == 0):
                    started()
                    identified = await self._identify(ip)
                if identified is not None:
                    return identified
            except (TimeoutError, OSError) as exc:
                log.info("%s: no answer (%s), attempt %d", ip, type(exc).__name__, attempt + 1)
            except Exception:  # pyasic raises what it meets in odd answers (APIError, KeyError, …)
                log.warning("%s: unreadable answer, attempt %d", ip, attempt + 1, exc_info=True)
            if attempt + 1 < self.attempts:
                await asyncio.sleep(self.backoff_s * 2**attempt)
        return Identity(reachable=False), Reading(_now(), reachable=False), None

    async def _identify(self, ip: str) -> tuple[Identity, Reading, Found] | None:
        miner = await asyncio.wait_for(pyasic.get_miner(ip), self.timeout_s)
        if miner is None:
            return None
        found = Found(miner, Replies.recording(miner))
        data = await asyncio.wait_for(miner.get_data(include=IDENTITY_AND_SAMPLE), self.timeout_s)
        identity = Identity(
            reachable=True,
            make=data.make or getattr(miner, "make", None),
            model=data.model or getattr(miner, "model", None),
            firmware=data.fw_ver,
            mac=(data.mac or "").lower() or None,
            serial=data.serial_number,
            hostname=data.hostname,
        )
        answered = _answered(data)
        first = _reading(data, _now(), found.replies.sensors()) if answered else Reading(_now(), reachable=False)
        return identity, first, found

    async def find(self, ip: str) -> Found | None:
        """Detect what answers at `ip` (pyasic's detection) and build its miner object, without
        reading it; None when nothing answers in time or pyasic cannot tell what it is."""
        try:
            async with self.limiter.slot("identify"):
                miner = await asyncio.wait_for(pyasic.get_miner(ip), self.timeout_s)
        except (TimeoutError, OSError) as exc:
            log.info("%s: no answer (%s)", ip, type(exc).__name__)
            return None
        except Exception:
            log.warning("%s: unreadable answer", ip, exc_info=True)
            return None
        return None if miner is None else Found(miner, Replies.recording(miner))

    @staticmethod
    def kind_of(found: Found) -> str | None:
        """What pyasic detected, as a key of its class table (`_miner_class` reads it back):
        what another process needs to build the miner object without detecting it."""
        return _kind_of(type(found.miner))

    @staticmethod
    def build(ip: str, kind: str) -> Found | None:
        """A miner object of the `kind` that `kind_of` named, for `ip`: no request is sent."""
        made = _miner_class(kind)
        if made is None:
            return None
        cls, version = made
        miner = cls(ip, version)
        if _kind_of(type(miner)) != kind:  # pyasic builds another class now: detect instead
            return None
        return Found(miner, Replies.recording(miner))

    async def sample(self, found: Found, include: list[str] = SAMPLE, kind: str = "sample") -> Reading:
        """One sample (a burn-in's, or a poll's with `include=POLL`). A miner that does not
        answer in time, or whose answer cannot be read (pyasic raises on odd ones), is recorded
        as unreachable for this sample."""
        found.replies.clear()
        try:
            async with self.limiter.slot(kind):
                data = await asyncio.wait_for(found.miner.get_data(include=include), self.timeout_s)
        except (TimeoutError, OSError):
            return Reading(_now(), reachable=False)
        except Exception:
            log.warning("%s: unreadable answer", getattr(found.miner, "ip", "?"), exc_info=True)
            return Reading(_now(), reachable=False)
        if not _answered(data):
            return Reading(_now(), reachable=False)
        return _reading(data, _now(), found.replies.sensors())


def web_client() -> aiohttp.ClientSession:
    """The HTTP client for a task's web sessions (`web_session`), opened on the task's loop and
    closed when its commands are done: one connection pool keyed by host, no cookies kept, no
    proxies from the environment, no limit on connections (the caller's gate is the limit)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


def web_session(miner: Any, client: aiohttp.ClientSession) -> contextlib.AbstractAsyncContextManager[None]:
    """The calls of one command to a stock Antminer's web UI (pyasic's `stop_mining` reads the
    miner's config, then posts it back) on `client`, with one Digest challenge between them.

    pyasic opens an httpx client, and meets a 401 challenge, for every CGI call: four requests on
    two connections for a stop, about 5 ms of CPU on the 2-core bench machine. In a session the
    config is posted with the challenge the read met (aiohttp's preemptive Digest auth), on the
    read's kept-alive connection: three requests on one, and aiohttp's lighter stack — about
    1.5 ms (docs/performance.md). A miner that refuses the reused challenge is challenged again
    (the middleware answers once); a closed connection is simply opened again. pyasic still
    builds and reads the config; other web APIs than its modern Antminer one are left as they are."""
    web = getattr(miner, "web", None)
    if type(web) is not AntminerModernWebAPI:  # exactly pyasic's own: a subclass may send otherwise
        return contextlib.nullcontext()
    return _antminer_session(web, client)


@contextlib.asynccontextmanager
async def _antminer_session(web: AntminerModernWebAPI, client: aiohttp.ClientSession):
    digest = aiohttp.DigestAuthMiddleware(web.username or "", web.pwd or "")
    lent = functools.partial(_send_in_session, web, client, digest)
    recorded = web.__dict__.get("send_command")  # Replies' recording, which stays outermost
    if not isinstance(recorded, _Recorded):
        web.__dict__["send_command"] = lent
        try:
            yield
        finally:
            web.__dict__.pop("send_command", None)
        return
    own, recorded.send = recorded.send, lent
    try:
        yield
    finally:
        recorded.send = own


async def _send_in_session(
    web: AntminerModernWebAPI,
    client: aiohttp.ClientSession,
    digest: aiohttp.DigestAuthMiddleware,
    command: str,
    *_: Any,
    **parameters: Any,
) -> dict:
    """pyasic's AntminerModernWebAPI.send_command (0.79) on a lent client: the same requests,
    timeouts (5 s, api_function_timeout for a post) and answers ({"success": False, …} rather
    than an exception on a failure)."""
    url = f"http://{web.ip}:{web.port}/cgi-bin/{command}.cgi"
    for flag in ("ignore_errors", "allow_warning", "privileged"):
        parameters.pop(flag, None)
    try:
        if parameters:
            timeout = aiohttp.ClientTimeout(total=pyasic_settings.get("api_function_timeout", 3))
            request = client.post(url, json=parameters, middlewares=(digest,), timeout=timeout)
        else:
            request = client.get(url, middlewares=(digest,), timeout=aiohttp.ClientTimeout(total=5))
        async with request as answer:
            if answer.status != 200:
                return {"success": False, "message": "Unknown error occurred"}
            try:
                return await answer.json(content_type=None)  # lighttpd's CGI answers text/plain
            except ValueError:
                return {"success": False, "message": "Failed to decode JSON"}
    except (aiohttp.ClientError, TimeoutError) as exc:
        return {"success": False, "message": f"HTTP error occurred: {exc!r}"}


# btminer's classes pick their API (v2, or v3 from firmware 2024.11 on) from the version
# pyasic's detection found, and make a class of their own with that base first.
_BTMINER_VERSIONS = {"BTMinerV2": None, "BTMinerV3": "20250101"}


@functools.cache
def _miner_classes() -> tuple[dict[type, str], dict[str, list[tuple[str, type]]]]:
    from pyasic.miners.factory import MINER_CLASSES

    by_class: dict[type, str] = {}
    by_name: dict[str, list[tuple[str, type]]] = collections.defaultdict(list)
    for miner_type, models in MINER_CLASSES.items():
        for model, cls in models.items():
            key = f"{miner_type.name}|{model or ''}"
            by_class.setdefault(cls, key)
            by_name[cls.__name__].append((key, cls))
    return by_class, by_name


def _kind_of(cls: type) -> str | None:
    by_class, by_name = _miner_classes()
    if cls in by_class:
        return by_class[cls]
    api = cls.__bases__[0].__name__ if cls.__bases__ else ""
    for key, original in by_name.get(cls.__name__, []):
        if api in _BTMINER_VERSIONS and original.__bases__[1:] == cls.__bases__[1:]:
            return f"{key}|{api}"
    return None


def _miner_class(kind: str) -> tuple[Any, str | None] | None:
    """The class table's entry `kind` names, and the version to build it with."""
    from pyasic.miners.factory import MINER_CLASSES, MinerTypes

    miner_type, _, rest = kind.partition("|")
    model, _, api = rest.partition("|")
    try:
        cls = MINER_CLASSES[MinerTypes[miner_type]][model or None]
    except KeyError:
        return None
    if api and api not in _BTMINER_VERSIONS:
        return None
    return cls, _BTMINER_VERSIONS.get(api)


@dataclass(frozen=True)
class PduAddress:
    host: str
    port: int
    community: str
    profile: str


@dataclass(frozen=True)
class PduReading:
    outlet_w: float | None
    circuit_w: float | None
    inlet_temp_c: float | None
    error: str | None = None  # why the outlet's watts could not be read


NO_PDU_READING = PduReading(None, None, None)  # the outlet is not metered


_V2C = snmp_api.PROTOCOL_MODULES[snmp_api.SNMP_VERSION_2C]


class _SnmpSocket(asyncio.DatagramProtocol):
    """One UDP socket for all of a probe's GETs; each answer goes to the request of its id."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, asyncio.Future] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            message, _ = decoder.decode(data, asn1Spec=_V2C.Message())
            pdu = _V2C.apiMessage.get_pdu(message)
            request_id = int(_V2C.apiPDU.get_request_id(pdu))
        except (PyAsn1Error, ValueError, TypeError):  # not an SNMP answer: ignore it, as agents do
            return
        answer = self.waiting.pop(request_id, None)
        if answer is not None and not answer.done():
            answer.set_result(pdu)

    def error_received(self, exc: Exception) -> None:
        log.debug("SNMP socket: %s", exc)  # e.g. ICMP port unreachable: that request times out


@dataclass(frozen=True)
class PduWalk:
    """Every outlet of one PDU, read in one walk: watts by outlet number, the device's total
    and its inlet sensor (None where the profile or the PDU has none)."""

    outlet_w: dict[int, float]
    device_w: float | None = None
    inlet_temp_c: float | None = None
    requests: int = 0  # SNMP requests the walk took (one, unless the table outgrew an answer)
    error: str | None = None  # why it could not be read: every outlet of it is unread


class PduProbe:
    """Reads PDUs over SNMP v2c, each request sent again `retries` times when no answer comes
    in `timeout_s`: one outlet's watts, the PDU's total and its inlet sensor in one GET
    (`read`, commissioning), every outlet at once in one GETBULK walk (`walk`, telemetry), or
    the watts of named outlets only (`outlets`, curtailment's check of a chunk's machines).

    Built on pysnmp's message layer (as the emulated agent is) rather than its high-level
    API, which resolves every OID against the MIBs on the way out and back: that cost a
    fifth of a worker's CPU at 10,000 machines."""

    MEASUREMENTS = ("outlet_power_w", "device_power_w", "inlet_temp_c")
    MAX_REPETITIONS = 128  # rows asked for per GETBULK (a 48-outlet strip with two sensors each); more take more
    MAX_REQUESTS = 32  # a walk gives up after this many (an agent that never ends its table)
    MAX_GET_OUTLETS = 48  # outlets asked for per GET (`outlets`): one answer of a whole strip

    def __init__(self, timeout_s: float, retries: int = 1):
        self.timeout_s = timeout_s
        self.retries = retries
        self._socket: _SnmpSocket | None = None
        self._request_ids = itertools.count(random.randrange(1, 1 << 30))  # noqa: S311 - an id, not a secret

    async def _open(self) -> _SnmpSocket:
        if self._socket is None or self._socket.transport is None or self._socket.transport.is_closing():
            _, self._socket = await asyncio.get_running_loop().create_datagram_endpoint(
                _SnmpSocket,
                local_addr=("0.0.0.0", 0),  # noqa: S104 - a client socket, any source address
            )
        return self._socket

    async def _exchange(self, pdu: PduAddress, request, where: str) -> tuple[Any, str | None]:
        """Send one request PDU (retried) and return the agent's answer PDU, or why there is none."""
        request_id = next(self._request_ids) & 0x7FFFFFFF
        _V2C.apiPDU.set_request_id(request, request_id)
        message = _V2C.Message()
        _V2C.apiMessage.set_defaults(message)
        _V2C.apiMessage.set_community(message, pdu.community)
        _V2C.apiMessage.set_pdu(message, request)
        data = encoder.encode(message)
        try:
            sock = await self._open()
        except OSError as exc:
            log.info("%s: %s", where, exc)
            return None, f"{where} does not answer"
        for _ in range(1 + self.retries):
            waiting = sock.waiting[request_id] = asyncio.get_running_loop().create_future()
            try:
                assert sock.transport is not None
                sock.transport.sendto(data, (pdu.host, pdu.port))
                answer = await asyncio.wait_for(waiting, self.timeout_s)
            except (TimeoutError, OSError) as exc:
                log.info("%s: %s", where, type(exc).__name__)
                continue
            finally:
                sock.waiting.pop(request_id, None)
            status = int(_V2C.apiPDU.get_error_status(answer))
            if status:
                return None, f"{where} refused the read (SNMP error status {status})"
            return answer, None
        return None, f"{where} does not answer"

    async def _get(self, pdu: PduAddress, oids: Sequence[str], where: str) -> tuple[Any, str | None]:
        """One GET of these OIDs (dotted): the answer PDU, or why there is none."""
        request = _V2C.GetRequestPDU()
        _V2C.apiPDU.set_defaults(request)
        _V2C.apiPDU.set_varbinds(request, [(_V2C.ObjectIdentifier(oid), _V2C.null) for oid in oids])
        return await self._exchange(pdu, request, where)

    async def read(self, pdu: PduAddress, outlet: int) -> PduReading:
        oids = [snmp_profiles.oid(pdu.profile, name, outlet) for name in self.MEASUREMENTS]
        where = f"the PDU at {pdu.host}:{pdu.port}"
        answer, error = await self._get(pdu, [oid for oid, _ in oids], where)
        if answer is None:
            return PduReading(None, None, None, error)
        values: list[float | None] = []
        for (_, scale), (_, value) in zip(oids, _V2C.apiPDU.get_varbinds(answer), strict=True):
            values.append(_scaled(value, scale))
        outlet_w, circuit_w, inlet_temp_c = values
        if outlet_w is None:
            return PduReading(None, circuit_w, inlet_temp_c, f"{where} has no metered outlet {outlet}")
        return PduReading(outlet_w, circuit_w, inlet_temp_c)

    async def walk(self, pdu: PduAddress) -> PduWalk:
        """Every outlet's watts in one GETBULK (more only if the table outgrows an answer): the
        outlet power column as the repeated varbind, the device total and the inlet sensor as
        non-repeaters (GETNEXT of the OID just before each, so the answer is that OID itself)."""
        where = f"the PDU at {pdu.host}:{pdu.port}"
        column, suffix, scale = _outlet_column(pdu.profile)
        scalars = {}
        for name in ("device_power_w", "inlet_temp_c"):
            dotted, unit = snmp_profiles.oid(pdu.profile, name)
            scalars[name] = (_oid_tuple(dotted), unit)
        outlet_w: dict[int, float] = {}
        found: dict[str, float | None] = dict.fromkeys(scalars)
        cursor = column
        requests = 0
        while requests < self.MAX_REQUESTS:
            request = _V2C.GetBulkRequestPDU()
            _V2C.apiBulkPDU.set_defaults(request)
            first = requests == 0
            non_repeaters = [_just_before(oid) for oid, _ in scalars.values()] if first else []
            _V2C.apiBulkPDU.set_non_repeaters(request, len(non_repeaters))
            _V2C.apiBulkPDU.set_max_repetitions(request, self.MAX_REPETITIONS)
            _V2C.apiBulkPDU.set_varbinds(
                request, [(_V2C.ObjectIdentifier(oid), _V2C.null) for oid in [*non_repeaters, cursor]]
            )
            answer, error = await self._exchange(pdu, request, where)
            requests += 1
            if answer is None:
                return PduWalk({}, requests=requests, error=error)
            binds = [(tuple(oid), value) for oid, value in _V2C.apiBulkPDU.get_varbinds(answer)]
            if first:
                for (name, (oid, unit)), (got, value) in zip(scalars.items(), binds, strict=False):
                    found[name] = _scaled(value, unit) if got == oid else None
                binds = binds[len(non_repeaters) :]
            ended = not binds
            for oid, value in binds:
                if oid[: len(column)] != column or _end_of_mib(value):
                    ended = True
                    break
                cursor = oid
                rest = oid[len(column) :]
                if len(rest) == 1 + len(suffix) and rest[1:] == suffix:
                    watts = _scaled(value, scale)
                    if watts is not None:
                        outlet_w[rest[0]] = watts
            if ended:
                break
        return PduWalk(outlet_w, found["device_power_w"], found["inlet_temp_c"], requests)

    async def outlets(self, pdu: PduAddress, outlets: Sequence[int]) -> PduWalk:
        """These outlets' watts only, in GETs of up to MAX_GET_OUTLETS each (a few machines of a
        48-outlet strip: a fraction of a walk's work on both ends). No total, no sensor."""
        where = f"the PDU at {pdu.host}:{pdu.port}"
        wanted = sorted(set(outlets))
        outlet_w: dict[int, float] = {}
        requests = 0
        for at in range(0, len(wanted), self.MAX_GET_OUTLETS):
            part = wanted[at : at + self.MAX_GET_OUTLETS]
            oids = [snmp_profiles.oid(pdu.profile, "outlet_power_w", n) for n in part]
            answer, error = await self._get(pdu, [oid for oid, _ in oids], where)
            requests += 1
            if answer is None:
                return PduWalk({}, requests=requests, error=error)
            for n, (_, scale), (_, value) in zip(part, oids, _V2C.apiPDU.get_varbinds(answer), strict=True):
                watts = _scaled(value, scale)
                if watts is not None:
                    outlet_w[n] = watts
        return PduWalk(outlet_w, requests=requests)

    def close(self) -> None:
        if self._socket is not None and self._socket.transport is not None:
            self._socket.transport.close()
        self._socket = None


def _oid_tuple(dotted: str) -> tuple[int, ...]:
    return tuple(int(x) for x in dotted.strip(".").split("."))


def _just_before(oid: tuple[int, ...]) -> tuple[int, ...]:
    """The last OID before `oid` in walk order: its GETNEXT answers `oid` itself, if it exists."""
    if oid[-1] == 0:
        return oid[:-1]
    return (*oid[:-1], oid[-1] - 1, 0xFFFFFFFF)  # no arc is larger: nothing lies between


def _outlet_column(profile: str) -> tuple[tuple[int, ...], tuple[int, ...], float]:
    """The table column the outlets' watts are in, what follows the outlet number in their
    OIDs (Raritan: the sensor type) and the scale."""
    template, scale = snmp_profiles.PROFILES[profile]["outlet_power_w"]
    head, tail = template.split("{outlet}")
    return _oid_tuple(head), _oid_tuple(tail) if tail.strip(".") else (), scale


def _end_of_mib(value) -> bool:
    return value.isSameTypeWith(_V2C.EndOfMibView("")) if hasattr(value, "isSameTypeWith") else False


def _scaled(value, scale: float) -> float | None:
    try:
        return float(int(value)) * scale
    except (TypeError, ValueError, PyAsn1Error):  # noSuchInstance / noSuchObject / endOfMibView: not there
        return None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
