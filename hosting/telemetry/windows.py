"""One machine's window from one poll: pure, no I/O and no database.

A reading (what the miner answered, `hosting.readings`), the figures of its model and what
its outlet drew become the fields of a `Window` row. The rules:

- reachable: the miner answered the poll. Unreachable is down, not unknown (unknown is a
  window no poll wrote, written by `services_store.fill_unknown`).
- hashing: it answered with a hashrate above zero.
- boards seen: boards present and hashing or with chips; chips seen: their chips.
- temperatures: the hottest chip and PCB sensor over every board and every sensor.
- inlet: the miner's own intake sensor where it has one, else the PDU's inlet sensor.
- fans OK: at least the model's fans report, each at `min_fan_rpm` or more.
- watts by source: the PDU outlet when it is metered and was read, else the miner's own
  figure (firmware that reports it), else the nameplate while the miner answers; an
  unreachable miner without an outlet reading draws an unknown number of watts.
"""

from __future__ import annotations

from dataclasses import dataclass

from hosting.readings import Reading

ERRORS_MAX = 500  # Window.errors


@dataclass(frozen=True)
class ModelFigures:
    """What a machine of this model should show (from `MachineModel`)."""

    nominal_hashrate_ths: float
    nameplate_w: int
    hashboards: int
    fans: int
    min_fan_rpm: int = 1  # a fan that reports fewer revolutions has stopped


@dataclass(frozen=True)
class WindowFields:
    """A `Window` row's fields but its keys (start, machine) and owners (site, contract)."""

    machine_status: str
    reachable: bool
    hashing: bool
    hashrate_ths: float | None = None
    hashrate_pct: float | None = None
    boards_seen: int | None = None
    chips_seen: int | None = None
    chip_temp_max_c: float | None = None
    board_temp_max_c: float | None = None
    inlet_temp_c: float | None = None
    fans_ok: bool | None = None
    power_w: float | None = None
    power_source: str = ""  # PowerSource: "pdu", "miner", "nameplate"; "" when unknown
    uptime_s: int | None = None
    errors: str = ""


def _round(value: float | None, places: int = 1) -> float | None:
    return None if value is None else round(value, places)


def power(reading: Reading, figures: ModelFigures, outlet_w: float | None) -> tuple[float | None, str]:
    """Watts and where they come from: PDU > miner > nameplate (the last only while it answers)."""
    if outlet_w is not None:
        return round(outlet_w, 1), "pdu"
    if reading.reachable and reading.power_w is not None and reading.power_w > 0:
        return round(float(reading.power_w), 1), "miner"
    if reading.reachable:
        return float(figures.nameplate_w), "nameplate"
    return None, ""


def window(
    reading: Reading,
    figures: ModelFigures,
    machine_status: str,
    outlet_w: float | None = None,
    pdu_inlet_c: float | None = None,
) -> WindowFields:
    """The window one poll of one machine makes."""
    power_w, source = power(reading, figures, outlet_w)
    if not reading.reachable:
        return WindowFields(
            machine_status=machine_status,
            reachable=False,
            hashing=False,
            inlet_temp_c=_round(pdu_inlet_c),
            power_w=power_w,
            power_source=source,
        )
    hashrate = reading.hashrate_ths
    present = [b for b in reading.boards if b.present and ((b.chips or 0) > 0 or (b.hashrate_ths or 0) > 0)]
    chip_temps = [t for b in reading.boards if b.present for t in b.chip_sensors_c()]
    pcb_temps = [t for b in reading.boards if b.present for t in b.pcb_sensors_c()]
    fans = reading.fans_rpm
    nominal = figures.nominal_hashrate_ths
    return WindowFields(
        machine_status=machine_status,
        reachable=True,
        hashing=hashrate is not None and hashrate > 0,
        hashrate_ths=_round(hashrate, 3),
        hashrate_pct=None if hashrate is None or nominal <= 0 else round(100 * hashrate / nominal, 1),
        boards_seen=len(present),
        chips_seen=sum(b.chips or 0 for b in present),
        chip_temp_max_c=_round(max(chip_temps, default=None)),
        board_temp_max_c=_round(max(pcb_temps, default=None)),
        inlet_temp_c=_round(reading.env_temp_c if reading.env_temp_c is not None else pdu_inlet_c),
        fans_ok=len(fans) >= figures.fans and all(rpm >= figures.min_fan_rpm for rpm in fans),
        power_w=power_w,
        power_source=source,
        uptime_s=reading.uptime_s,
        errors="; ".join(reading.errors)[:ERRORS_MAX],
    )
