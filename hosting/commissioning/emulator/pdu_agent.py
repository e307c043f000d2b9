"""An emulated metered PDU: an SNMP v1/v2c agent over UDP whose readings follow the emulated miners.

Built on pysnmp's low-level message API (``pysnmp.proto.api`` + pyasn1 BER) on an asyncio datagram
endpoint: every request is decoded, answered from values computed at that moment, and encoded
back — no MIB tree, no SNMP engine. It answers GetRequest, GetNextRequest and GetBulkRequest (and
refuses SetRequest) for the OIDs of its profile (``snmp_profiles.PROFILES``) plus sysDescr,
sysUpTime and sysName. A request with another community is dropped, as real agents do.

Readings: outlet watts = ``source.power_w(ip)`` of the miner on that outlet (0 for an empty
outlet), outlet amps = watts / the profile's nominal volts, device power = the sum of the outlets,
and the inlet temperature sensor reads the air where the PDU hangs (``PduSpec.inlet_temp_c``, swinging
over the day as the miners' air does when ``inlet_swing_c`` is set). The readings follow the miners
over time: what befalls them (their story), what they were told (asleep, limited), powered off.
Values are encoded as the profile's raw integers (``round(value / scale)``).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

from hosting import snmp_profiles
from hosting.snmp_profiles import MEASUREMENTS, PROFILES

log = logging.getLogger(__name__)

_SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
_SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
_SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)

_NO_SUCH_NAME = 2  # SNMPv1 errorStatus
_GEN_ERR = 5
_NOT_WRITABLE = 17  # SNMPv2 errorStatus
_READ_ONLY = 4  # SNMPv1 errorStatus for a set on a read-only agent
_MAX_BULK_VARBINDS = 256


class PowerSource(Protocol):
    def power_w(self, ip: str) -> float: ...

    def air_temp_c(self, mean_c: float, swing_c: float, site: str = "", rack: str = "") -> float: ...


@dataclass
class PduSpec:
    host: str  # 127.x.y.z
    port: int  # e.g. 16100 (161 needs root; taken as given)
    community: str = "public"
    profile: str = "apc-rpdu2"  # a key of snmp_profiles.PROFILES
    inlet_temp_c: float = 25.0
    outlets: dict[int, str] = field(default_factory=dict)  # outlet number → miner ip
    name: str = ""  # sysName; "" → "pdu-<host>"
    outlet_count: int = 24  # metered outlets on the strip; unwired ones read 0 W
    inlet_swing_c: float = 0.0  # the air's daily swing (clock.air_temp_c), 0: constant
    site: str = ""
    rack: str = ""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown PDU profile {self.profile!r}; known: {sorted(PROFILES)}")
        self.outlets = {int(k): str(v) for k, v in self.outlets.items()}
        if any(k < 1 for k in self.outlets):
            raise ValueError("outlets are numbered from 1")

    def same_device(self, other: PduSpec) -> bool:
        """Whether `other` is this PDU as it answers (its outlets' wiring aside)."""
        keys = (
            "host", "port", "community", "profile", "name", "outlet_count", "inlet_temp_c", "inlet_swing_c", "site",
            "rack",
        )  # fmt: skip
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def _oid_tuple(dotted: str) -> tuple[int, ...]:
    return tuple(int(x) for x in dotted.strip(".").split("."))


class PduAgent:
    """Serves one ``PduSpec`` on UDP, reading power from ``source`` (a ``Fleet``)."""

    def __init__(self, spec: PduSpec, source: PowerSource):
        self.spec = spec
        self.source = source
        self.prof = PROFILES[spec.profile]
        self._transport: asyncio.DatagramTransport | None = None
        self._t0 = time.monotonic()
        self._getters: dict[tuple[int, ...], Callable[[], object]] = {}
        self.n_outlets = max(spec.outlet_count, max(spec.outlets, default=0))
        self.requests: collections.Counter[str] = collections.Counter()  # answered, by kind: get, getnext, getbulk
        self._build()

    def set_outlets(self, outlets: dict[int, str]) -> None:
        """Rewire the strip (machines racked or pulled): outlet number → miner IP."""
        outlets = {int(k): str(v) for k, v in outlets.items()}
        if outlets == self.spec.outlets:
            return
        self.spec.outlets = outlets
        if max(outlets, default=0) > self.n_outlets:
            self.n_outlets = max(outlets)
            self._build()

    # -- readings --------------------------------------------------------------------------

    def outlet_power_w(self, outlet: int) -> float:
        ip = self.spec.outlets.get(outlet)
        if ip is None:
            return 0.0
        try:
            return float(self.source.power_w(ip))
        except KeyError:
            return 0.0

    def device_power_w(self) -> float:
        return sum(self.outlet_power_w(o) for o in self.spec.outlets)

    def inlet_temp_c(self) -> float:
        spec = self.spec
        return self.source.air_temp_c(spec.inlet_temp_c, spec.inlet_swing_c, spec.site, spec.rack)

    # -- OID table -------------------------------------------------------------------------

    def _build(self) -> None:
        prof = self.prof
        v2 = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        syntax = v2.Gauge32 if prof.get("syntax") == "Gauge32" else v2.Integer32
        volts = float(prof["nominal_volts"])
        getters: dict[tuple[int, ...], Callable[[], object]] = {}

        def raw(value: float, scale: float):
            return syntax(max(0, min(2147483647, round(value / scale))))

        value_of: dict[str, Callable[[int], float]] = {  # in the measurement's unit (outlet 0: the device)
            "outlet_power_w": lambda o: self.outlet_power_w(o),
            "outlet_current_a": lambda o: self.outlet_power_w(o) / volts,
            "device_power_w": lambda _o: self.device_power_w(),
            "inlet_temp_c": lambda _o: self.inlet_temp_c(),
        }

        def reading(measure: Callable[[int], float], outlet: int, scale: float) -> Callable[[], object]:
            return lambda: raw(measure(outlet), scale)

        def constant(value: int) -> Callable[[], object]:
            return lambda: syntax(value)

        for measurement in MEASUREMENTS:
            per_outlet = "{outlet}" in prof[measurement][0]
            for o in range(1, self.n_outlets + 1) if per_outlet else (0,):
                dotted, scale = snmp_profiles.oid(self.spec.profile, measurement, o or None)  # what the probe reads
                getters[_oid_tuple(dotted)] = reading(value_of[measurement], o, scale)
        for dotted, value in prof.get("static", {}).items():
            getters[_oid_tuple(dotted)] = constant(value)
        for template, value in prof.get("static_per_outlet", {}).items():
            for o in range(1, self.n_outlets + 1):
                getters[_oid_tuple(template.format(outlet=o))] = constant(value)
        descr = f"{prof.get('description', self.spec.profile)} (Haven emulator)"
        name = self.spec.name or f"pdu-{self.spec.host}"
        getters[_SYS_DESCR] = lambda: v2.OctetString(descr)
        getters[_SYS_UPTIME] = lambda: v2.TimeTicks(int((time.monotonic() - self._t0) * 100) % 4294967296)
        getters[_SYS_NAME] = lambda: v2.OctetString(name)
        self._getters = getters
        self._sorted = sorted(getters)
        self._columns = {oid[:-1] for oid in getters}

    # -- serving ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._t0 = time.monotonic()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _SnmpProtocol(self), local_addr=(self.spec.host, self.spec.port)
        )

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            await asyncio.sleep(0)

    def handle(self, data: bytes) -> bytes | None:
        """Answer one SNMP message (None: drop it)."""
        try:
            version = int(api.decodeMessageVersion(data))
            p_mod = api.PROTOCOL_MODULES[version]
        except (PyAsn1Error, KeyError, ValueError):
            return None
        try:
            req_msg, _ = decoder.decode(data, asn1Spec=p_mod.Message())
        except PyAsn1Error:
            return None
        if str(p_mod.apiMessage.get_community(req_msg)) != self.spec.community:
            return None
        req_pdu = p_mod.apiMessage.get_pdu(req_msg)
        rsp_msg = p_mod.apiMessage.get_response(req_msg)
        rsp_pdu = p_mod.apiMessage.get_pdu(rsp_msg)
        v2 = version == api.SNMP_VERSION_2C
        req_binds = p_mod.apiPDU.get_varbinds(req_pdu)
        out: list[tuple[object, object]] = []
        error = (0, 0)
        try:
            if req_pdu.isSameTypeWith(p_mod.GetRequestPDU()):
                self.requests["get"] += 1
                for i, (oid, _) in enumerate(req_binds):
                    key = tuple(oid)
                    getter = self._getters.get(key)
                    if getter is not None:
                        out.append((oid, getter()))
                    elif v2:
                        missing = p_mod.NoSuchInstance("") if key[:-1] in self._columns else p_mod.NoSuchObject("")
                        out.append((oid, missing))
                    else:
                        error = error if error[0] else (_NO_SUCH_NAME, i + 1)
                        out.append((oid, p_mod.null))
            elif req_pdu.isSameTypeWith(p_mod.GetNextRequestPDU()):
                self.requests["getnext"] += 1
                for i, (oid, _) in enumerate(req_binds):
                    nxt = self._next(tuple(oid))
                    if nxt is not None:
                        out.append((p_mod.ObjectIdentifier(nxt), self._getters[nxt]()))
                    elif v2:
                        out.append((oid, p_mod.EndOfMibView("")))
                    else:
                        error = error if error[0] else (_NO_SUCH_NAME, i + 1)
                        out.append((oid, p_mod.null))
            elif v2 and req_pdu.isSameTypeWith(p_mod.GetBulkRequestPDU()):
                self.requests["getbulk"] += 1
                out = self._bulk(p_mod, req_pdu, req_binds)
            elif req_pdu.isSameTypeWith(p_mod.SetRequestPDU()):
                error = (_NOT_WRITABLE if v2 else _READ_ONLY, 1)
                out = list(req_binds)
            else:
                return None
        except Exception:  # a broken getter must not kill the agent
            log.exception("pdu agent %s:%s: request failed", self.spec.host, self.spec.port)
            error = (_GEN_ERR, 1)
            out = list(req_binds)
        if error[0]:
            out = list(req_binds) if not v2 or error[0] in (_NOT_WRITABLE, _GEN_ERR) else out
            p_mod.apiPDU.set_error_status(rsp_pdu, error[0])
            p_mod.apiPDU.set_error_index(rsp_pdu, error[1])
        p_mod.apiPDU.set_varbinds(rsp_pdu, out)
        return encoder.encode(rsp_msg)

    def _next(self, oid: tuple[int, ...]) -> tuple[int, ...] | None:
        i = bisect.bisect_right(self._sorted, oid)
        return self._sorted[i] if i < len(self._sorted) else None

    def _bulk(self, p_mod, req_pdu, req_binds) -> list[tuple[object, object]]:
        non_rep = max(0, int(p_mod.apiBulkPDU.get_non_repeaters(req_pdu)))
        max_rep = max(0, int(p_mod.apiBulkPDU.get_max_repetitions(req_pdu)))
        out: list[tuple[object, object]] = []
        for oid, _ in req_binds[:non_rep]:
            nxt = self._next(tuple(oid))
            out.append((p_mod.ObjectIdentifier(nxt), self._getters[nxt]()) if nxt else (oid, p_mod.EndOfMibView("")))
        repeaters = [tuple(oid) for oid, _ in req_binds[non_rep:]]
        for _ in range(max_rep):
            if not repeaters or len(out) >= _MAX_BULK_VARBINDS:
                break
            row_done = True
            for j, cur in enumerate(repeaters):
                nxt = self._next(cur) if cur is not None else None
                if nxt is None:
                    out.append((p_mod.ObjectIdentifier(cur or ()), p_mod.EndOfMibView("")))
                    repeaters[j] = cur
                else:
                    out.append((p_mod.ObjectIdentifier(nxt), self._getters[nxt]()))
                    repeaters[j] = nxt
                    row_done = False
            if row_done:
                break
        return out


class _SnmpProtocol(asyncio.DatagramProtocol):
    def __init__(self, agent: PduAgent):
        self.agent = agent
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        reply = self.agent.handle(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc):
        log.debug("pdu agent %s: %s", self.agent.spec.host, exc)
