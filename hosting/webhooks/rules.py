"""The rules of delivering (pure): when to try again, when to give up, and which addresses
are never called — loopback, private, link-local and the like, where a webhook would reach
into Haven's own network (server-side request forgery)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
from dataclasses import dataclass

NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Backoff:
    """Attempt n failed: wait base × 2^(n-1), at most `cap_s`, less up to `jitter` of it (so
    a receiver coming back is not hit by every delivery at once). After `attempts` tries the
    delivery is given up on: with the defaults (60 s, 3 h, 16) the tries span about a day."""

    base_s: int = 60
    cap_s: int = 3 * 3600
    attempts: int = 16
    jitter: float = 0.25

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> dt.timedelta:
        raw = min(self.cap_s, self.base_s * 2 ** max(0, failed_attempt - 1))
        spread = (rng or random).uniform(0, self.jitter)
        return dt.timedelta(seconds=raw * (1 - spread))

    def gives_up(self, failed_attempt: int) -> bool:
        return failed_attempt >= self.attempts

    def span(self) -> dt.timedelta:
        """From the first try to the last, without jitter (the longest it takes)."""
        return dt.timedelta(seconds=sum(min(self.cap_s, self.base_s * 2 ** (n - 1)) for n in range(1, self.attempts)))


def forbidden(address: str) -> str | None:
    """Why a webhook may not be sent to this IP address (None: it may): anything but a public
    unicast address, IPv4 and IPv6 alike, looking through IPv6 forms that carry an IPv4
    address (IPv4-mapped, NAT64, 6to4, Teredo)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # a scoped IPv6 (fe80::1%eth0) is link-local anyway
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            why = forbidden(str(embedded))
            if why:
                return f"{why} (inside {ip})"
            if ip.ipv4_mapped:
                return None  # the public IPv4 address itself
    for test, what in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, test):
            return f"{ip} is not a public address ({what})"
    if not ip.is_global:
        return f"{ip} is not a public address (special use)"
    return None
