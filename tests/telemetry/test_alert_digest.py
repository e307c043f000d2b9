"""The alert digest: one e-mail per recipient with what opened or resolved since the last one,
staff get every alert and each tenant its own; a second run sends nothing new; never one
mail per window."""

import pytest
from django.core import mail

from hosting.telemetry import alerting
from hosting.telemetry.models import Alert, AlertKind
from hosting.telemetry.tasks_alerts import send_alert_digests
from tests.telemetry.alert_world import at, other_tenants_machine, write, write_circuit

pytestmark = pytest.mark.django_db

STAFF = ["noc@haven.example", "ops@haven.example"]


@pytest.fixture(autouse=True)
def staff_addresses(settings):
    settings.ALERT_EMAILS = STAFF
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def to(address: str):
    (message,) = [m for m in mail.outbox if m.to == [address]]
    return message


def test_one_mail_per_recipient_whatever_the_number_of_windows_and_a_second_run_sends_nothing(floor, fleet):
    site = floor["site"]
    tenant = fleet[0].tenant
    for i in range(5):  # five windows, several alerts
        write(fleet, at(i), fans_ok=False, chip_temp_max_c=99.0)
        alerting.evaluate(site.pk, at(i), now=at(i))
    assert Alert.objects.count() == 4

    assert send_alert_digests.apply().get() == 3  # two staff addresses and the tenant
    assert sorted(m.to[0] for m in mail.outbox) == sorted([*STAFF, tenant.contact_email])
    body = to(tenant.contact_email).body
    assert body.count("[opened]") == 4
    assert fleet[0].serial in body
    assert fleet[1].serial in body
    assert "Fans stopped" in body
    assert "Chip temperature over limit" in body
    assert to(tenant.contact_email).subject == "Haven alerts: 4 opened, 0 resolved"
    assert not Alert.objects.filter(notified_at__isnull=True).exists()

    mail.outbox.clear()
    write(fleet, at(5), fans_ok=False, chip_temp_max_c=99.0)
    alerting.evaluate(site.pk, at(5), now=at(5))  # still open: nothing to say
    assert send_alert_digests.apply().get() == 0
    assert mail.outbox == []


def test_a_resolution_goes_in_the_next_digest_once(floor, fleet):
    site = floor["site"]
    write(fleet[:1], at(0), fans_ok=False)
    alerting.evaluate(site.pk, at(0), now=at(0))
    alerting.send_digests(now=at(0))
    mail.outbox.clear()

    write(fleet[:1], at(1))
    alerting.evaluate(site.pk, at(1), now=at(1))
    assert alerting.send_digests(now=at(1)) == 3
    body = to(STAFF[0]).body
    assert "[resolved] Fans stopped" in body
    assert "[opened]" not in body
    mail.outbox.clear()
    assert alerting.send_digests(now=at(2)) == 0


def test_opened_and_resolved_between_two_digests_is_said_once(floor, fleet):
    site = floor["site"]
    write(fleet[:1], at(0), fans_ok=False)
    alerting.evaluate(site.pk, at(0), now=at(0))
    write(fleet[:1], at(1))
    alerting.evaluate(site.pk, at(1), now=at(1))
    alerting.send_digests(now=at(2))
    assert "[opened and resolved] Fans stopped" in to(STAFF[0]).body
    assert alerting.send_digests(now=at(3)) == 0


def test_a_resolution_racing_a_digest_is_still_mailed(floor, fleet):
    """The evaluation read its clock before the digest stamped the alert, and wrote after."""
    site = floor["site"]
    write(fleet[:1], at(0), fans_ok=False)
    alerting.evaluate(site.pk, at(0), now=at(0))
    alerting.send_digests(now=at(2))
    write(fleet[:1], at(1))
    alerting.evaluate(site.pk, at(1), now=at(1))  # "now" earlier than the digest's stamp
    alert = Alert.objects.get()
    assert alert.resolved_at > alert.notified_at
    mail.outbox.clear()
    assert alerting.send_digests(now=at(3)) == 3
    assert "[resolved]" in to(STAFF[0]).body


def test_tenants_get_their_own_alerts_only_and_staff_get_circuits_too(floor, fleet):
    site = floor["site"]
    ours = fleet[0].tenant
    other = other_tenants_machine(floor)
    theirs = other.tenant
    write(fleet, at(0), fans_ok=False)
    write([other], at(0), chip_temp_max_c=99.0)
    write_circuit(floor["circuits"][0], at(0), 60_000.0)
    alerting.evaluate(site.pk, at(0), now=at(0))

    alerting.send_digests(now=at(1))
    ours_body, theirs_body, staff_body = (to(a).body for a in (ours.contact_email, theirs.contact_email, STAFF[0]))
    assert ours_body.count("[opened]") == 2
    assert other.serial not in ours_body
    assert "circuit" not in ours_body
    assert theirs_body.count("[opened]") == 1
    assert other.serial in theirs_body
    assert fleet[0].serial not in theirs_body
    assert staff_body.count("[opened]") == 4
    assert f"circuit {floor['circuits'][0].name}" in staff_body
    assert Alert.objects.get(kind=AlertKind.CIRCUIT_HOT).tenant is None


def test_without_staff_addresses_only_tenants_are_mailed(settings, floor, fleet):
    settings.ALERT_EMAILS = []
    write(fleet[:1], at(0), fans_ok=False)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    assert alerting.send_digests(now=at(1)) == 1
    assert mail.outbox[0].to == [fleet[0].tenant.contact_email]


def test_a_mail_that_cannot_be_sent_goes_in_the_next_digest(floor, fleet, monkeypatch):
    write(fleet[:1], at(0), fans_ok=False)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    from django.core.mail.backends.locmem import EmailBackend

    def down(self, messages):
        raise OSError("connection refused")

    monkeypatch.setattr(EmailBackend, "send_messages", down)
    assert alerting.send_digests(now=at(1)) == 0
    assert Alert.objects.get().notified_at is None  # given back
    monkeypatch.undo()
    assert alerting.send_digests(now=at(2)) == 3


def test_a_circuit_alert_reaches_staff_only(floor, fleet):
    write_circuit(floor["circuits"][0], at(0), 60_000.0)
    alerting.evaluate(floor["site"].pk, at(0), now=at(0))
    assert alerting.send_digests(now=at(1)) == 2  # staff only: a circuit belongs to no tenant
