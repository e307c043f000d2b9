"""Tenant accounts in a real browser: an owner invites a colleague as operator from the members
page; the colleague opens the e-mailed link, makes a login, lands on the dashboard under the
company's name, turns two-factor on with the QR code's secret and logs in again with a code."""

import re

import pytest
from django.core import mail
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from hosting.models import Membership, Role
from tests.factories import PASSWORD, MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def code_of(username: str, steps_ahead: int = 0) -> str:
    device = TOTPDevice.objects.get(user__username=username)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0 - steps_ahead * device.step):06d}"


def test_an_invited_operator_joins_and_turns_on_two_factor(live_server, page, shot):
    page.set_default_timeout(20_000)
    owner = MembershipFactory(tenant=TenantFactory(name="Northern Hash Ltd", slug="northern"), role=Role.OWNER)
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("input[name=username]", owner.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#tenants")).to_contain_text("Northern Hash Ltd")
    page.get_by_role("link", name="Members").click()
    invite = page.locator("form.invite")
    invite.locator("input[name=email]").fill("ops.lead@example.com")
    invite.locator("select[name=role]").select_option("operator")
    invite.get_by_role("button", name="Invite by e-mail").click()
    expect(page.locator(".messages")).to_contain_text("Invitation e-mailed to ops.lead@example.com")
    expect(page.locator("tr.invitation")).to_contain_text("operator")
    shot("members-page")

    (message,) = mail.outbox
    link = re.search(r"http://\S+/portal/invitations/[\w-]+/", message.body).group(0)
    page.get_by_role("button", name="Log out").click()
    page.goto(link)
    expect(page.locator("#invitation h1")).to_have_text("Join Northern Hash Ltd")
    page.fill("input[name=username]", "opslead")
    page.fill("input[name=password1]", "rack-and-stack-2021")
    page.fill("input[name=password2]", "rack-and-stack-2021")
    shot("invitation-new-login")
    page.get_by_role("button", name="Make my login and join").click()
    expect(page.locator(".messages")).to_contain_text("you act for it as operator")
    expect(page.locator("#tenants")).to_contain_text("Northern Hash Ltd")
    expect(page.get_by_role("link", name="Members")).to_have_count(0)  # an operator's nav
    assert Membership.objects.get(user__username="opslead").role == Role.OPERATOR

    page.get_by_role("link", name="Two-factor").click()
    page.get_by_role("button", name="Set up two-factor").click()
    expect(page.locator(".qr svg")).to_be_visible()
    shot("two-factor-setup")
    page.fill("#two-factor-setup input[name=code]", code_of("opslead"))
    page.get_by_role("button", name="Turn two-factor on").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("input[name=username]", "opslead")
    page.fill("input[name=password]", "rack-and-stack-2021")
    page.click("button[type=submit]")
    expect(page.locator("#otp-problem")).to_contain_text("Two-factor is on")
    page.fill("input[name=username]", "opslead")
    page.fill("input[name=password]", "rack-and-stack-2021")
    page.fill("input[name=otp_token]", code_of("opslead", 1))
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/portal/")
    expect(page.locator("#tenants")).to_contain_text("operator")
