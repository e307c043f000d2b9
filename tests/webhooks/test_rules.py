"""The pure rules: a signature a receiver can check (and refuse when tampered with, signed with
another secret, or replayed late), backoff that spans about a day, and which addresses are
never called."""

import datetime as dt
import random

import pytest

from hosting.webhooks.rules import Backoff, forbidden
from hosting.webhooks.signing import SignatureError, body_of, header, verify

SECRET = "whsec_test"
BODY = body_of({"id": "e1", "type": "alert.opened", "data": {"kw": "1.5", "name": "Сибирь"}})
T = 1_790_000_000


def test_a_signed_body_verifies_and_returns_its_timestamp():
    assert verify(SECRET, header(SECRET, BODY, T), BODY, tolerance_s=300, now=T + 299) == T


@pytest.mark.parametrize(
    ("secret", "body", "now", "why"),
    [
        ("whsec_other", BODY, T, "does not match"),
        (SECRET, BODY.replace(b"1.5", b"9.5"), T, "does not match"),
        (SECRET, BODY, T + 301, "tolerance 300 s"),  # a replay, five minutes late
        (SECRET, BODY, T - 301, "tolerance 300 s"),
    ],
)
def test_a_wrong_secret_a_changed_body_or_an_old_timestamp_is_refused(secret, body, now, why):
    with pytest.raises(SignatureError, match=why):
        verify(secret, header(SECRET, BODY, T), body, tolerance_s=300, now=now)


@pytest.mark.parametrize("value", [None, "", "v1=abc", f"t={T}", "t=soon,v1=abc", "garbage"])
def test_a_missing_or_malformed_header_is_refused(value):
    with pytest.raises(SignatureError):
        verify(SECRET, value, BODY, now=T)


def test_the_timestamp_is_signed_too():
    value = header(SECRET, BODY, T)
    moved = value.replace(f"t={T}", f"t={T + 1000}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, moved, BODY, now=T + 1000)


def test_one_matching_signature_of_several_is_enough():
    signed = header(SECRET, BODY, T)
    both = signed + ",v1=" + "0" * 64
    assert verify(SECRET, both, BODY, now=T) == T


def test_the_body_is_compact_sorted_utf8_json():
    assert body_of({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_backoff_doubles_to_a_cap_and_the_tries_span_about_a_day():
    policy = Backoff()
    rng = random.Random(7)  # noqa: S311 - jitter, not a secret
    delays = [policy.delay(n, rng).total_seconds() for n in range(1, 16)]
    assert 45 <= delays[0] <= 60
    assert 90 <= delays[1] <= 120
    assert all(0.75 * 10800 <= d <= 10800 for d in delays[8:])  # capped at 3 h
    assert dt.timedelta(hours=20) <= policy.span() <= dt.timedelta(hours=26)
    assert not policy.gives_up(15)
    assert policy.gives_up(16)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "0.0.0.0",  # noqa: S104
        "100.64.0.1", "224.0.0.251", "240.0.0.1", "255.255.255.255", "192.0.2.1",
        "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2001:db8::1",
    ],
)  # fmt: skip
def test_addresses_inside_networks_are_forbidden(address):
    assert forbidden(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert forbidden(address) is None
