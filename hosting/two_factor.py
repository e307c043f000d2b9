"""Two-factor authentication, optional per user, with django-otp: an authenticator app
(TOTP, RFC 6238) and ten one-time recovery codes (django-otp's static device).

A user turns it on in two steps — `start` makes an unconfirmed TOTP device whose secret
the page shows (an otpauth:// link and its QR code, drawn here as SVG, offline), `confirm`
takes a code from the app, confirms the device and returns the recovery codes — and off
with a code (`disable`). Once confirmed, logging in (the portal's and the admin's) asks for
a code (`verify`). Bad codes are throttled by django-otp (each failure doubles the wait
before the next code is checked) and count as failed logins for django-axes.
"""

from __future__ import annotations

import base64
import secrets

import qrcode
import qrcode.image.svg
from django.db import transaction
from django_otp import user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

APP_DEVICE = "authenticator app"
RECOVERY_DEVICE = "recovery codes"
RECOVERY_CODES = 10


def enabled(user) -> bool:
    """Whether logging in asks this user for a code (a confirmed device)."""
    return user.is_authenticated and user_has_device(user, confirmed=True)


def pending_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def start(user) -> TOTPDevice:
    """A fresh, unconfirmed authenticator device (any earlier unconfirmed one is dropped)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=APP_DEVICE, confirmed=False)


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// link as a QR code, an inline SVG (no image file, no CDN)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def secret_of(device: TOTPDevice) -> str:
    """The secret in base32, as apps take it typed in (grouped by four)."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def _clean(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def confirm(device: TOTPDevice, code: str) -> list[str] | None:
    """The app's first code confirms the device; returns the new recovery codes (shown once),
    or None when the code is wrong."""
    code = _clean(code)
    allowed, _ = device.verify_is_allowed()
    if not code or not allowed or not device.verify_token(code):
        return None
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        return new_recovery_codes(device.user)


def new_recovery_codes(user) -> list[str]:
    """Ten fresh one-time codes (the old ones stop working)."""
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE, confirmed=True)
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=c) for c in codes])
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def verify(user, code: str) -> Device | None:
    """The device a code verifies — six digits from the app, else a recovery code (used up) —
    or None; a throttled device refuses even a right code until its wait is over. Each code
    is tried on one device only, so a mistyped app code does not throttle the recovery codes."""
    code = _clean(code)
    if not code:
        return None
    model: type[TOTPDevice] | type[StaticDevice] = TOTPDevice if code.isdigit() and len(code) <= 8 else StaticDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is not None and device.verify_token(code):
            return device
    return None


def disable(user, code: str) -> bool:
    """Turn two-factor off, proven with a current code; False (nothing changes) when wrong."""
    if verify(user, code) is None:
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    return True
