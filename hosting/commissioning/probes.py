"""Probes: the only code that talks to the world — miners through pyasic, PDUs over SNMP.

Asyncio throughout (pyasic is), with a timeout on every call and a short retry with
backoff on transient network errors, so that one process checks many machines at once
and a hung miner costs its own deadline, not the others'. What comes back is turned into
the plain dataclasses of `checks`, which never see pyasic or pysnmp.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

import pyasic
from pyasic.device.algorithm import SHA256Unit
from pysnmp.hlapi.v3arch import asyncio as snmp

from hosting.commissioning.checks import Board, Identity, Reading

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


def _reading(data, now: dt.datetime) -> Reading:
    boards = tuple(
        Board(
            slot=b.slot,
            hashrate_ths=_ths(b.hashrate),
            chips=b.chips,
            chip_temp_c=b.chip_temp,
            board_temp_c=b.temp,
            present=not b.missing,
        )
        for b in data.hashboards
    )
    return Reading(
        taken_at=now,
        reachable=True,
        hashrate_ths=_ths(data.hashrate),
        boards=boards,
        fans_rpm=tuple(f.speed or 0 for f in data.fans),
        power_w=data.wattage,
        errors=tuple(str(e.error_message if hasattr(e, "error_message") else e) for e in data.errors or ()),
        env_temp_c=data.env_temp,
    )


class MinerProbe:
    """Finds a miner once (pyasic detection), then samples the object it built."""

    def __init__(self, timeout_s: float, attempts: int = 3, backoff_s: float = 0.5):
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s

    async def identify(self, ip: str) -> tuple[Identity, Reading, object | None]:
        """Who answers at `ip`, and a first sample; retried with backoff while nobody does."""
        for attempt in range(self.attempts):
            try:
                miner = await asyncio.wait_for(pyasic.get_miner(ip), self.timeout_s)
                if miner is not None:
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
                    first = _reading(data, _now()) if _answered(data) else Reading(_now(), reachable=False)
                    return identity, first, miner
            except (TimeoutError, OSError) as exc:
                log.info("%s: no answer (%s), attempt %d", ip, type(exc).__name__, attempt + 1)
            if attempt + 1 < self.attempts:
                await asyncio.sleep(self.backoff_s * 2**attempt)
        return Identity(reachable=False), Reading(_now(), reachable=False), None

    async def sample(self, miner) -> Reading:
        """One burn-in sample; a miner that does not answer in time is recorded as unreachable."""
        try:
            data = await asyncio.wait_for(miner.get_data(include=SAMPLE), self.timeout_s)
        except (TimeoutError, OSError):
            return Reading(_now(), reachable=False)
        if not _answered(data):
            return Reading(_now(), reachable=False)
        return _reading(data, _now())


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


NO_PDU_READING = PduReading(None, None, None)


class PduProbe:
    """Reads an outlet's watts, the PDU's total and its inlet sensor in one SNMP GET."""

    MEASUREMENTS = ("outlet_power_w", "device_power_w", "inlet_temp_c")

    def __init__(self, timeout_s: float, retries: int = 1):
        self.timeout_s = timeout_s
        self.retries = retries
        self._engine: snmp.SnmpEngine | None = None  # costly to build: one per probe

    async def read(self, pdu: PduAddress, outlet: int) -> PduReading:
        from hosting.commissioning import snmp_profiles  # the OID tables, shared with the emulator

        engine = self._engine = self._engine or snmp.SnmpEngine()
        oids = [snmp_profiles.oid(pdu.profile, name, outlet) for name in self.MEASUREMENTS]
        try:
            target = await snmp.UdpTransportTarget.create(
                (pdu.host, pdu.port), timeout=self.timeout_s, retries=self.retries
            )
            error, status, _, binds = await snmp.get_cmd(
                engine,
                snmp.CommunityData(pdu.community, mpModel=1),  # noqa: S508 - PDUs on the site network speak v2c
                target,
                snmp.ContextData(),
                *(snmp.ObjectType(snmp.ObjectIdentity(oid)) for oid, _ in oids),
            )
        except (TimeoutError, OSError) as exc:
            log.info("PDU %s:%s: %s", pdu.host, pdu.port, exc)
            return NO_PDU_READING
        if error or status:
            log.info("PDU %s:%s: %s", pdu.host, pdu.port, error or status.prettyPrint())
            return NO_PDU_READING
        values = []
        for (_, scale), (_, value) in zip(oids, binds, strict=True):
            try:
                values.append(float(int(value)) * scale)
            except (TypeError, ValueError):  # noSuchInstance: that outlet is not metered
                values.append(None)
        return PduReading(*values)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
