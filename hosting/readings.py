"""What one read of a miner (and its outlet) is: plain data that the probes fill in and the
commissioning checks and telemetry's windows judge. No I/O, no pyasic, no database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who answered at the machine's address."""

    reachable: bool
    make: str | None = None
    model: str | None = None
    firmware: str | None = None
    mac: str | None = None
    serial: str | None = None
    hostname: str | None = None


@dataclass(frozen=True)
class Board:
    """One hashboard in one sample. A board has several chip and PCB sensors (a stock S19:
    inlet and outlet side of each); all of them are kept and judged, the hottest shown."""

    slot: int
    hashrate_ths: float | None
    chips: int | None
    chip_temp_c: float | None  # the hottest chip sensor (the library's figure where it reports none)
    board_temp_c: float | None  # the hottest PCB sensor, likewise
    present: bool = True  # pyasic lists an expected board it could not find as missing
    chip_temps_c: tuple[float, ...] = ()  # every chip sensor, as the miner reports them
    pcb_temps_c: tuple[float, ...] = ()  # every PCB sensor

    def chip_sensors_c(self) -> tuple[float, ...]:
        """The chip temperatures to judge: every sensor, or the one figure where that is all there is."""
        return _sensors(self.chip_temps_c, self.chip_temp_c)

    def pcb_sensors_c(self) -> tuple[float, ...]:
        return _sensors(self.pcb_temps_c, self.board_temp_c)


def _sensors(sensors: tuple[float, ...], figure: float | None) -> tuple[float, ...]:
    return sensors or (() if figure is None else (figure,))


@dataclass(frozen=True)
class Reading:
    """One read of a miner (and its outlet): a burn-in sample, or a telemetry poll."""

    taken_at: dt.datetime
    reachable: bool
    hashrate_ths: float | None = None
    boards: tuple[Board, ...] = ()
    fans_rpm: tuple[int, ...] = ()
    power_w: float | None = None  # as the miner reports it (stock Antminer does not)
    errors: tuple[str, ...] = ()
    env_temp_c: float | None = None
    outlet_w: float | None = None  # PDU, when the outlet is metered
    # Why a metered outlet gave no watts (the PDU did not answer, has no such outlet…); an
    # outlet configured as unmetered has neither a reading nor an error.
    outlet_error: str | None = None
    circuit_w: float | None = None  # PDU total for the circuit
    inlet_temp_c: float | None = None  # PDU sensor
    uptime_s: int | None = None  # since the miner (re)started, as it reports it
