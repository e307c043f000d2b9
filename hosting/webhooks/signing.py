"""Signing deliveries and checking a signature, as a receiver does (pure; no Django).

    Haven-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The timestamp is inside what is signed, so a receiver refuses a replayed delivery by
refusing an old `t` (`tolerance_s`); the event id (`Haven-Event-Id`, and `id` in the body)
lets it drop a duplicate it has already handled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

HEADER = "Haven-Signature"
SCHEME = "v1"


class SignatureError(ValueError):
    """The delivery is not to be trusted: no signature, a wrong one, or too old."""


def body_of(payload: dict) -> bytes:
    """The JSON that is sent (and signed): compact, keys sorted, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Haven-Signature` header's value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SCHEME}={signature(secret, t, body)}"


def verify(secret: str, header_value: str | None, body: bytes, tolerance_s: int = 300, now: float | None = None) -> int:
    """Check a delivery as a receiver should: the header parses, one of its `v1` signatures
    is the body's (compared in constant time), and its timestamp is within `tolerance_s` of
    now. Returns the timestamp; raises SignatureError otherwise. Several `v1=` may be
    present (a secret being rotated): any one matching is enough."""
    if not header_value:
        raise SignatureError("no Haven-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header_value.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the timestamp is not a number") from None
        elif name == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("the header has no timestamp or no v1 signature")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("the signature does not match the body")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"the timestamp is {int(now - timestamp)} s from now (tolerance {tolerance_s} s)")
    return timestamp
