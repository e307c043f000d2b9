"""The commissioning checks: pure functions from what was measured to a verdict with reasons.

No I/O and no database: `probes` measure, `pipeline` sequences, `tasks` store. Every
threshold comes in through `Expected` (from the machine model and the site's policy),
never from a literal here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import fmean

from hosting.readings import Identity, Reading


@dataclass(frozen=True)
class Expected:
    """What a machine must show, from its declared model, the tenant's declaration and the site."""

    make: str  # as pyasic names it, e.g. "AntMiner"
    model: str  # as pyasic names it, e.g. "S19 Pro"
    mac: str
    serial: str
    nominal_hashrate_ths: Decimal
    hashrate_tolerance_pct: Decimal
    nameplate_w: int
    power_tolerance_pct: Decimal
    hashboards: int
    chips_per_board: int
    fans: int
    max_chip_temp_c: Decimal
    max_board_temp_c: Decimal
    min_fan_rpm: int
    max_ambient_c: Decimal
    circuit_usable_w: int
    unmetered_accepts_nameplate: bool


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    reasons: tuple[str, ...] = ()
    measurements: dict = field(default_factory=dict)


def _n(value: Decimal | int) -> str:
    """A limit as people write it: 95, 5.5, 110 — not 95.0 or 110.00."""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _round(value: float | None, places: int = 1) -> float | None:
    return None if value is None else round(value, places)


def identity(expected: Expected, seen: Identity) -> Outcome:
    """The right machine answers at the address: make, model, MAC (and serial where exposed)."""
    measured = {
        "make": seen.make,
        "model": seen.model,
        "firmware": seen.firmware,
        "mac": seen.mac,
        "serial": seen.serial,
        "hostname": seen.hostname,
    }
    if not seen.reachable:
        return Outcome("identity", False, ("the miner does not answer at its address",), measured)
    reasons = []
    if (seen.make or "").casefold() != expected.make.casefold():
        reasons.append(f"make is {seen.make or 'unknown'}, declared {expected.make}")
    if (seen.model or "").casefold() != expected.model.casefold():
        reasons.append(f"model is {seen.model or 'unknown'}, declared {expected.model}")
    if seen.mac and seen.mac.casefold() != expected.mac.casefold():
        reasons.append(f"MAC is {seen.mac}, declared {expected.mac}")
    if seen.mac is None:
        reasons.append("the miner does not report its MAC")
    if seen.serial and seen.serial != expected.serial:
        reasons.append(f"serial is {seen.serial}, declared {expected.serial}")
    return Outcome("identity", not reasons, tuple(reasons), measured)


def power(expected: Expected, readings: Sequence[Reading]) -> Outcome:
    """Draw within tolerance of nameplate, from the PDU outlet where it is metered, else the
    miner's own figure, else the site's policy for unmetered outlets; and the circuit within
    its usable watts. A metered outlet that cannot be read fails (it is not "unmetered"), and
    so does a miner that never answers on an unmetered one: no reading is not a pass."""
    low = expected.nameplate_w * (1 - expected.power_tolerance_pct / 100)
    high = expected.nameplate_w * (1 + expected.power_tolerance_pct / 100)
    outlet = [r.outlet_w for r in readings if r.outlet_w is not None]
    meter_errors = [r.outlet_error for r in readings if r.outlet_error]
    metered = bool(outlet or meter_errors)
    miner = [r.power_w for r in readings if r.reachable and r.power_w is not None]
    circuit = [r.circuit_w for r in readings if r.circuit_w is not None]
    answered = any(r.reachable for r in readings)
    if metered:
        source, watts = "pdu_outlet", fmean(outlet) if outlet and not meter_errors else None
    elif miner:
        source, watts = "miner_reported", fmean(miner)
    else:
        source, watts = "unmetered", None
    on_nameplate = source == "unmetered" and answered and expected.unmetered_accepts_nameplate
    measured = {
        "source": source,
        "accepted_on_nameplate": on_nameplate,
        "power_w": _round(watts),
        "nameplate_w": expected.nameplate_w,
        "tolerance_pct": float(expected.power_tolerance_pct),
        "circuit_load_w": _round(max(circuit)) if circuit else None,
        "circuit_usable_w": expected.circuit_usable_w,
        "meter_errors": sorted(set(meter_errors)),
    }
    reasons = []
    if meter_errors:
        reasons.append(
            f"the outlet meter could not be read in {len(meter_errors)} of {len(readings)} samples: "
            + "; ".join(sorted(set(meter_errors)))
        )
    elif watts is None and not answered:
        reasons.append("no power reading: the outlet is not metered and the miner does not answer")
    elif watts is None and not on_nameplate:
        reasons.append("no power reading: the outlet is not metered and the miner reports no watts")
    elif watts is not None and not float(low) <= watts <= float(high):
        reasons.append(
            f"draws {watts:,.0f} W, outside {expected.nameplate_w:,} W ±{_n(expected.power_tolerance_pct)} % "
            f"({float(low):,.0f}–{float(high):,.0f} W)"
        )
    if circuit and max(circuit) > expected.circuit_usable_w:
        reasons.append(
            f"the circuit carries {max(circuit):,.0f} W, over its {expected.circuit_usable_w:,} W usable (80 % rule)"
        )
    return Outcome("power", not reasons, tuple(reasons), measured)


def _present(reading: Reading) -> int:
    return sum(1 for b in reading.boards if b.present)


def hashing(expected: Expected, readings: Sequence[Reading]) -> Outcome:
    """Burn-in: average hashrate within tolerance of nominal, every board present and hashing
    with all its chips, reachable throughout, no errors."""
    answered = [r for r in readings if r.reachable]
    floor = expected.nominal_hashrate_ths * (1 - expected.hashrate_tolerance_pct / 100)
    rates = [r.hashrate_ths for r in answered if r.hashrate_ths is not None]
    average = fmean(rates) if rates else None
    measured = {
        "samples": len(readings),
        "answered": len(answered),
        "average_hashrate_ths": _round(average, 2),
        "nominal_hashrate_ths": float(expected.nominal_hashrate_ths),
        "minimum_hashrate_ths": _round(float(floor), 2),
        "boards_seen": min((_present(r) for r in answered), default=0),
        "boards_expected": expected.hashboards,
        "chips_per_board_min": min((b.chips or 0 for r in answered for b in r.boards if b.present), default=None),
        "chips_per_board_expected": expected.chips_per_board,
    }
    reasons: list[str] = []
    if not readings:
        return Outcome("hashing", False, ("no sample was taken",), measured)
    if len(answered) < len(readings):
        # The first sample is identification's: when it answered, say that it went away later.
        then = "identified, then " if readings[0].reachable else ""
        reasons.append(f"{then}unreachable in {len(readings) - len(answered)} of {len(readings)} samples")
    if not answered:
        return Outcome("hashing", False, tuple(reasons), measured)
    if average is None or average < float(floor):
        shown = "no hashrate" if average is None else f"{average:,.2f} TH/s"
        reasons.append(
            f"averaged {shown}, under {float(floor):,.2f} TH/s "
            f"({_n(100 - expected.hashrate_tolerance_pct)} % of {_n(expected.nominal_hashrate_ths)} TH/s)"
        )
    present = min(_present(r) for r in answered)
    if present < expected.hashboards:
        reasons.append(f"{expected.hashboards - present} of {expected.hashboards} hashboards missing")
    idle = sorted({b.slot for r in answered for b in r.boards if b.present and not b.hashrate_ths})
    if idle:
        reasons.append(f"hashboard(s) {', '.join(map(str, idle))} not hashing")
    short: dict[int, int] = {}
    for r in answered:
        for b in r.boards:
            if b.present and b.chips is not None and b.chips < expected.chips_per_board:
                short[b.slot] = min(b.chips, short.get(b.slot, b.chips))
    for slot, chips in sorted(short.items()):
        reasons.append(f"hashboard {slot}: {chips} of {expected.chips_per_board} chips")
    errors = sorted({e for r in answered for e in r.errors})
    if errors:
        reasons.append("the miner reports: " + "; ".join(errors))
    return Outcome("hashing", not reasons, tuple(reasons), measured)


def _hottest(sensors: Sequence[tuple[float, int]]) -> tuple[float, int] | None:
    return max(sensors, default=None)


def thermal(expected: Expected, readings: Sequence[Reading]) -> Outcome:
    """Every chip and PCB sensor of every board within the model's limits throughout, the
    expected fans spinning, inlet (PDU sensor, else the miner's ambient) within the site's
    maximum."""
    answered = [r for r in readings if r.reachable]
    chip = _hottest([(t, b.slot) for r in answered for b in r.boards for t in b.chip_sensors_c()])
    board = _hottest([(t, b.slot) for r in answered for b in r.boards for t in b.pcb_sensors_c()])
    spinning = [sum(1 for rpm in r.fans_rpm if rpm >= expected.min_fan_rpm) for r in answered]
    inlet_pdu = [r.inlet_temp_c for r in readings if r.inlet_temp_c is not None]
    inlet_miner = [r.env_temp_c for r in answered if r.env_temp_c is not None]
    inlet = inlet_pdu or inlet_miner
    measured = {
        "max_chip_temp_c": _round(chip[0]) if chip else None,
        "limit_chip_temp_c": float(expected.max_chip_temp_c),
        "max_board_temp_c": _round(board[0]) if board else None,
        "limit_board_temp_c": float(expected.max_board_temp_c),
        "chip_sensors": max((len(b.chip_sensors_c()) for r in answered for b in r.boards), default=0),
        "pcb_sensors": max((len(b.pcb_sensors_c()) for r in answered for b in r.boards), default=0),
        "fans_spinning_min": min(spinning) if spinning else None,
        "fans_expected": expected.fans,
        "min_fan_rpm": expected.min_fan_rpm,
        "fans_rpm_lowest": min((rpm for r in answered for rpm in r.fans_rpm), default=None),
        "max_inlet_temp_c": _round(max(inlet)) if inlet else None,
        "inlet_source": "pdu_sensor" if inlet_pdu else ("miner" if inlet_miner else None),
        "limit_inlet_temp_c": float(expected.max_ambient_c),
    }
    if not answered:
        return Outcome("thermal", False, ("no temperatures: the miner did not answer",), measured)
    reasons = []
    if chip is None:
        reasons.append("the miner reports no chip temperatures")
    elif chip[0] > expected.max_chip_temp_c:
        reasons.append(
            f"chips reached {chip[0]:.0f} °C (hashboard {chip[1]}), over the {_n(expected.max_chip_temp_c)} °C limit"
        )
    if board is not None and board[0] > expected.max_board_temp_c:
        reasons.append(
            f"boards reached {board[0]:.0f} °C (hashboard {board[1]}), "
            f"over the {_n(expected.max_board_temp_c)} °C limit"
        )
    if min(spinning) < expected.fans:
        reasons.append(f"only {min(spinning)} of {expected.fans} fans spin at {expected.min_fan_rpm:,} RPM or more")
    if inlet and max(inlet) > expected.max_ambient_c:
        reasons.append(f"inlet air reached {max(inlet):.0f} °C, over the site's {_n(expected.max_ambient_c)} °C")
    return Outcome("thermal", not reasons, tuple(reasons), measured)


def not_measured(name: str, why: str) -> Outcome:
    return Outcome(name, False, (f"not measured: {why}",), {})


def verdict(outcomes: Sequence[Outcome]) -> tuple[bool, list[str]]:
    """Live only if every check passed; otherwise every reason of every failed check."""
    reasons = [f"{o.name}: {reason}" for o in outcomes for reason in o.reasons if not o.passed]
    return all(o.passed for o in outcomes) and bool(outcomes), reasons
