"""Commissioning evidence for people: a check's measurements (stored with their units in
their keys, e.g. `max_chip_temp_c`) as labelled values with units. Known keys have a label
here; a key the pipeline adds later still reads well — its unit from the suffix, its words
from the rest."""

from decimal import Decimal
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from changelog import present
from changelog.record import recorded

register = template.Library()

# Suffix → unit, longest first (so `_kw` is not read as `_w`).
UNITS = (("_ths", "TH/s"), ("_rpm", "RPM"), ("_pct", "%"), ("_kw", "kW"), ("_w", "W"), ("_c", "°C"), ("_s", "s"))

LABELS = {
    # identity
    "make": "Make",
    "model": "Model",
    "firmware": "Firmware",
    "mac": "MAC",
    "serial": "Serial",
    "hostname": "Host name",
    # power
    "source": "Measured by",
    "accepted_on_nameplate": "Accepted on nameplate (no reading)",
    "power_w": "Draw",
    "nameplate_w": "Nameplate",
    "tolerance_pct": "Tolerance ±",
    "circuit_load_w": "Circuit load",
    "circuit_usable_w": "Circuit usable (80 % rule)",
    # hashing
    "samples": "Samples",
    "answered": "Answered",
    "average_hashrate_ths": "Average hashrate",
    "nominal_hashrate_ths": "Nominal",
    "minimum_hashrate_ths": "Passes from",
    "boards_seen": "Hashboards seen",
    "boards_expected": "Hashboards expected",
    "chips_per_board_min": "Fewest chips on a board",
    "chips_per_board_expected": "Chips per board expected",
    # thermal
    "max_chip_temp_c": "Hottest chip",
    "limit_chip_temp_c": "Chip limit",
    "max_board_temp_c": "Hottest board",
    "limit_board_temp_c": "Board limit",
    "fans_spinning_min": "Fans spinning (fewest)",
    "fans_expected": "Fans expected",
    "min_fan_rpm": "Spinning means at least",
    "fans_rpm_lowest": "Slowest fan",
    "max_inlet_temp_c": "Hottest inlet air",
    "inlet_source": "Inlet measured by",
    "limit_inlet_temp_c": "Inlet limit",
}

VALUES = {
    "pdu_outlet": "the PDU outlet",
    "miner_reported": "the miner's own figure",
    "unmetered": "nothing (unmetered)",
    "pdu_sensor": "the PDU's sensor",
    "miner": "the miner",
}


def unit_of(key: str) -> tuple[str, str]:
    """(the key without its unit suffix, the unit) — ("", "") parts when it has none."""
    for suffix, unit in UNITS:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], unit
    return key, ""


def label_of(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    words = unit_of(key)[0].replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _number(value: float | int | Decimal) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def value_of(key: str, value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    unit = unit_of(key)[1]
    if isinstance(value, int | float | Decimal):
        shown = _number(value)
        return f"{shown} {unit}" if unit else shown
    if isinstance(value, list | tuple):
        return ", ".join(value_of(key, v) for v in value)
    return VALUES.get(str(value), str(value))


@register.filter
def evidence(measurements) -> list[tuple[str, str]]:
    """[(label, value with unit)] in the order the check recorded them."""
    if not isinstance(measurements, dict):
        return []
    return [(label_of(key), value_of(key, value)) for key, value in measurements.items()]


@register.simple_tag
def change_log_url(obj) -> str:
    """The staff change log of one object ("" for a model the change log does not record)."""
    if obj is None or getattr(obj, "pk", None) is None or not recorded(type(obj)):
        return ""
    query = urlencode({"model": present.model_key(type(obj)), "object_id": obj.pk})
    return f"{reverse('staff:changes')}?{query}"
