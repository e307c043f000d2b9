"""A site's DHCP lease list, read into MAC → IP: ISC dhcpd's `dhcpd.leases` or a CSV of MAC,IP.

Pure: text in, addresses out. `dhcpd.leases` is an append-only journal, so a later entry for
a MAC supersedes an earlier one, and a lease that is no longer held (`binding state free`,
`expired`, `released`, `abandoned`) gives its MAC no address.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from hosting.fields import normalize_mac

_LEASE = re.compile(r"lease\s+(?P<ip>[0-9.]+)\s*\{(?P<body>[^}]*)\}", re.DOTALL)
_HARDWARE = re.compile(r"hardware\s+ethernet\s+(?P<mac>[0-9A-Fa-f:]+)\s*;")
_BINDING = re.compile(r"(?<!next )binding\s+state\s+(?P<state>\w+)\s*;")
_HELD = {"active", "backup", "bootp"}


@dataclass
class Leases:
    """What a lease list says: each MAC's IPv4 address, and the lines that could not be read."""

    ip_by_mac: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse(text: str) -> Leases:
    """Read either format: dhcpd.leases if it has `lease … { … }` blocks, else CSV."""
    return parse_dhcpd(text) if _LEASE.search(text) else parse_csv(text)


def _ipv4(value: str) -> str:
    return str(ipaddress.IPv4Address(value.strip()))


def parse_dhcpd(text: str) -> Leases:
    leases = Leases()
    for match in _LEASE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        body = match.group("body")
        hardware = _HARDWARE.search(body)
        if hardware is None:
            continue  # a lease without a MAC (e.g. a client-id only): nothing to match
        try:
            mac = normalize_mac(hardware.group("mac"))
            ip = _ipv4(match.group("ip"))
        except (ValidationError, ValueError):
            leases.problems.append(f"line {line}: not a MAC and an IPv4 address")
            continue
        binding = _BINDING.search(body)
        if binding is not None and binding.group("state") not in _HELD:
            leases.ip_by_mac.pop(mac, None)
            continue
        leases.ip_by_mac[mac] = ip
    return leases


def parse_csv(text: str) -> Leases:
    """Rows of MAC,IP (a header row and extra columns are allowed)."""
    leases = Leases()
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        try:
            mac, ip = normalize_mac(cells[0]), _ipv4(cells[1])
        except (ValidationError, ValueError, IndexError):
            if number == 1:
                continue  # a header
            leases.problems.append(f"line {number}: expected MAC,IP, got {','.join(cells)[:80]!r}")
            continue
        leases.ip_by_mac[mac] = ip
    return leases
