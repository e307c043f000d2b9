"""Two-factor authentication (django-otp, TOTP): a user turns it on with the QR code and a
first code, gets recovery codes; from then on the portal's login and the admin's ask for a
code after the password — a wrong one is refused, throttled and counted by django-axes
towards the lockout — and turning it off needs a code. Codes here are computed as the
authenticator app would, with django_otp.oath.totp on the device's secret."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosting import two_factor
from tests.factories import PASSWORD, MembershipFactory, StaffFactory

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"portal:{name}", args=args)


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The app's code now (or `steps_ahead` 30-second steps on: a code is accepted once, and
    the device allows one step of drift)."""
    device.refresh_from_db()
    return (
        f"{totp(device.bin_key, step=device.step, t0=device.t0 - steps_ahead * device.step, digits=device.digits):06d}"
    )


def turn_on(client) -> tuple[TOTPDevice, list[str]]:
    client.post(url("two-factor"))
    device = TOTPDevice.objects.get(confirmed=False)
    page = client.post(url("two-factor-confirm"), {"code": code(device)}).content.decode()
    device.refresh_from_db()
    assert device.confirmed
    return device, re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", page)


@pytest.fixture
def member():
    return MembershipFactory().user


@pytest.fixture
def portal(member):
    client = Client()
    client.force_login(member)
    return client


def login(username, otp_token="", path=None):
    client = Client()
    data = {"username": username, "password": PASSWORD, "otp_token": otp_token}
    return client, client.post(path or url("login"), data)


def test_turning_it_on_shows_a_qr_code_drawn_here_and_asks_for_a_first_code(portal, member):
    assert 'id="two-factor-off"' in portal.get(url("two-factor")).content.decode()
    portal.post(url("two-factor"))
    page = portal.get(url("two-factor")).content.decode()
    device = TOTPDevice.objects.get(user=member)
    assert not device.confirmed
    assert "<svg" in page
    assert "otpauth://totp/" in page
    assert two_factor.secret_of(device).split()[0] in page  # to type in by hand
    assert f"secret={two_factor.secret_of(device).replace(' ', '')}&" in device.config_url
    drawing = page[page.index("<svg") : page.index("</svg>")]
    assert "href" not in drawing
    assert "<image" not in drawing
    wrong = portal.post(url("two-factor-confirm"), {"code": "000000"}, follow=True).content.decode()
    assert "That code is not right" in wrong
    assert not two_factor.enabled(member)
    device.throttle_reset()
    done = portal.post(url("two-factor-confirm"), {"code": code(device)}).content.decode()
    assert "Two-factor is on" in done
    assert len(re.findall(r"<code>[0-9a-f]{5}-[0-9a-f]{5}</code>", done)) == 10
    assert two_factor.enabled(member)
    assert 'id="two-factor-on"' in portal.get(url("two-factor")).content.decode()


def test_with_it_on_the_portal_login_asks_for_the_code(portal, member):
    device, _ = turn_on(portal)
    _, bare = login(member.username)  # the right password alone
    assert bare.status_code == 200
    assert "enter your password again with the code" in bare.content.decode()
    client, wrong = login(member.username, "123456" if code(device, 1) != "123456" else "654321")
    assert wrong.status_code == 200
    assert "That two-factor code is not right" in wrong.content.decode()
    assert client.get(url("dashboard")).status_code == 302  # not logged in
    device.throttle_reset()
    client, right = login(member.username, code(device, 1))
    assert right.status_code == 302
    assert client.get(url("dashboard")).status_code == 200
    assert client.session["otp_device_id"] == device.persistent_id


def test_a_login_without_two_factor_needs_no_code(member):
    client, response = login(member.username)
    assert response.status_code == 302
    assert client.get(url("dashboard")).status_code == 200


def test_a_code_is_accepted_once(portal, member):
    device, _ = turn_on(portal)
    now = code(device, 1)
    assert login(member.username, now)[1].status_code == 302
    assert login(member.username, now)[1].status_code == 200  # replayed


def test_a_recovery_code_logs_in_once(portal, member):
    _, codes = turn_on(portal)
    assert login(member.username, codes[0])[1].status_code == 302
    assert login(member.username, codes[0])[1].status_code == 200
    assert StaticDevice.objects.get(user=member).token_set.count() == 9


def test_bad_codes_are_throttled_and_count_towards_the_lockout(portal, member, settings):
    device, _ = turn_on(portal)
    _, first = login(member.username, "000001")
    assert first.status_code == 200
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    # right after a wrong code even the right one waits (django-otp doubles the wait each time)
    assert login(member.username, code(device, 1))[1].status_code == 200
    for n in range(settings.AXES_FAILURE_LIMIT - 2):
        login(member.username, f"00000{n + 2}")
    device.throttle_reset()
    _, locked = login(member.username, code(device, 1))
    assert locked.status_code == 429  # five failures: django-axes locks the username here
    assert "Too many failed logins" in locked.content.decode()


def test_turning_it_off_needs_a_code(portal, member):
    device, _ = turn_on(portal)
    page = portal.post(url("two-factor-disable"), {"code": "000000"}, follow=True).content.decode()
    assert "Two-factor stays on" in page
    assert two_factor.enabled(member)
    device.throttle_reset()
    page = portal.post(url("two-factor-disable"), {"code": code(device, 1)}, follow=True).content.decode()
    assert "Two-factor is off" in page
    assert not two_factor.enabled(member)
    assert not StaticDevice.objects.filter(user=member).exists()
    assert login(member.username)[1].status_code == 302


def test_new_recovery_codes_replace_the_old_ones(portal, member):
    device, old = turn_on(portal)
    page = portal.post(url("two-factor-recovery"), {"code": code(device, 1)}).content.decode()
    new = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", page)
    assert len(new) == 10
    assert not set(new) & set(old)
    assert login(member.username, old[0])[1].status_code == 200
    StaticDevice.objects.get(user=member).throttle_reset()  # the wrong code made it wait
    assert login(member.username, new[0])[1].status_code == 302


def test_one_users_device_is_not_anothers(portal, member):
    device, _ = turn_on(portal)
    other = MembershipFactory().user
    assert not two_factor.enabled(other)
    assert two_factor.verify(other, code(device, 1)) is None
    assert login(other.username)[1].status_code == 302  # no code asked of them


def test_staff_turn_it_on_and_the_admin_login_asks_for_the_code():
    staff = StaffFactory()
    client = Client()
    client.force_login(staff)
    assert client.get(url("two-factor")).status_code == 200  # staff use the same page
    device, _ = turn_on(client)
    admin_login = reverse("admin:login")
    page = Client().get(admin_login).content.decode()
    assert 'name="otp_token"' in page
    _, bare = login(staff.username, path=admin_login)
    assert bare.status_code == 200
    assert "enter your password again with the code" in bare.content.decode()
    browser, right = login(staff.username, code(device, 1), path=admin_login + "?next=/admin/")
    assert right.status_code == 302
    assert browser.get("/admin/").status_code == 200


def test_with_it_on_a_new_secret_needs_turning_it_off_first(portal, member):
    """Else whoever holds a session could move the second factor to their own phone."""
    device, _ = turn_on(portal)
    page = portal.post(url("two-factor"), follow=True).content.decode()
    assert "Two-factor is already on" in page
    assert list(TOTPDevice.objects.filter(user=member)) == [device]
