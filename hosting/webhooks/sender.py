"""The network side of a delivery: resolve the receiver's host, refuse addresses inside
Haven's networks, and POST to exactly the address that was checked (no second lookup for
DNS rebinding to change, no redirects followed), with short timeouts and only the first
characters of the answer kept."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import httpx

from hosting.webhooks.rules import forbidden

EXCERPT_BYTES = 200


class AddressRefused(Exception):
    """The URL may not be called: a scheme other than http(s), a host that does not resolve,
    or one that resolves to an address that is not public."""


@dataclass(frozen=True)
class Answer:
    """What one POST came to: the status (None when none came back), how long, why not."""

    status: int | None
    duration_ms: int
    error: str = ""
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def resolve(url: str, *, allow_private: bool) -> tuple[httpx.URL, str]:
    """The URL parsed and the address to connect to; every address its host resolves to must
    be public unless `allow_private` (tests, the demo)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise AddressRefused(f"not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AddressRefused("the URL must be http:// or https:// with a host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"{parsed.host} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise AddressRefused(f"{parsed.host} does not resolve")
    if not allow_private:
        for address in addresses:
            if why := forbidden(address):
                raise AddressRefused(f"{parsed.host} resolves to {why}: webhooks go to public addresses only")
    return parsed, addresses[0]


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def post(url: str, body: bytes, headers: Mapping[str, str], *, allow_private: bool, timeout_s: float) -> Answer:
    """POST `body` to `url` once. Never raises for the receiver's faults: they are the answer."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        parsed, address = resolve(url, allow_private=allow_private)
    except AddressRefused as exc:
        return Answer(None, elapsed(), str(exc)[:300])
    pinned = parsed.copy_with(host=address)
    sent_headers = {**headers, "Host": parsed.netloc.decode("ascii")}
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    try:
        with httpx.Client(
            timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False, verify=_tls()
        ) as client:
            request = client.build_request("POST", pinned, content=body, headers=sent_headers, extensions=extensions)
            response = client.send(request, stream=True)
            try:
                excerpt = b""
                for chunk in response.iter_raw():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
            finally:
                response.close()
    except httpx.TimeoutException:
        return Answer(None, elapsed(), f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Answer(None, elapsed(), f"{type(exc).__name__}: {exc}"[:300])
    text = excerpt[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    error = ""
    if response.is_redirect:
        error = f"redirect to {response.headers.get('location', '?')[:200]} not followed"
    elif not 200 <= response.status_code < 300:
        error = f"answered {response.status_code}"
    return Answer(response.status_code, elapsed(), error, text)
