"""The faces of the alerts: the staff queue (acknowledge, one click to the evidence), the
tenant's portal list and dashboard count; another tenant's alerts are never shown, staff
pages refuse tenants, lists cost the same queries for few rows and many."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hosting.models import SelfTestRun
from hosting.telemetry.models import Alert, AlertKind
from tests.factories import MembershipFactory, StaffFactory, UserFactory
from tests.staff.conftest import count_queries
from tests.telemetry.alert_world import (
    at,
    live,
    open_alerts,
    other_tenants_machine,
    write,
    write_circuit,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def world(floor, fleet):
    """Our two machines with a stopped fan, another tenant's with a hot chip, a hot circuit."""
    theirs = other_tenants_machine(floor)
    write([theirs], at(0), chip_temp_max_c=99.0)
    write_circuit(floor["circuits"][0], at(0), 60_000.0)
    open_alerts(floor, fleet)
    return {"ours": fleet, "theirs": theirs}


# --- staff queue ---------------------------------------------------------------------------


def test_the_queue_lists_open_alerts_by_site_and_kind_with_the_evidence_one_click_away(client, staff, world):
    ours = world["ours"][0]
    run = SelfTestRun.objects.create(machine=ours, status=SelfTestRun.Status.PASSED, finished_at=timezone.now())
    client.force_login(staff)
    page = client.get(reverse("staff:alerts")).content.decode()
    assert page.count('class="alert"') == 4
    assert reverse("admin:hosting_selftestrun_change", args=[run.pk]) in page  # the machine's evidence
    assert reverse("admin:hosting_machine_change", args=[ours.pk]) in page
    assert f"circuit {world['ours'][0].slot.circuit.name}" in page
    hot = client.get(reverse("staff:alerts"), {"kind": AlertKind.CHIP_HOT}).content.decode()
    assert hot.count('class="alert"') == 1
    assert world["theirs"].serial in hot
    other_site = client.get(reverse("staff:alerts"), {"site": "nowhere"}).content.decode()
    assert 'class="alert"' not in other_site


def test_staff_acknowledge_with_the_csrf_token(staff, world):
    alert = Alert.objects.filter(kind=AlertKind.FANS_STOPPED).first()
    url = reverse("staff:alert-acknowledge", args=[alert.pk])
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    queue = browser.get(reverse("staff:alerts") + "?kind=fans_stopped")
    assert browser.post(url).status_code == 403  # no token
    token = browser.cookies["csrftoken"].value
    done = browser.post(url, {"csrfmiddlewaretoken": token, "next": reverse("staff:alerts") + "?kind=fans_stopped"})
    assert done.status_code == 302
    assert done["Location"] == reverse("staff:alerts") + "?kind=fans_stopped"
    alert.refresh_from_db()
    assert alert.acknowledged_by == staff
    assert alert.resolved_at is None
    assert queue.status_code == 200
    offsite = browser.post(url, {"csrfmiddlewaretoken": token, "next": "https://evil.example/"})
    assert offsite["Location"] == reverse("staff:alerts")


def test_the_queue_and_acknowledging_refuse_tenants_and_the_anonymous(client, world):
    alert = Alert.objects.first()
    for user in (None, MembershipFactory(tenant=world["ours"][0].tenant).user, UserFactory()):
        if user is not None:
            client.force_login(user)
        for response in (
            client.get(reverse("staff:alerts")),
            client.post(reverse("staff:alert-acknowledge", args=[alert.pk])),
        ):
            assert response.status_code == 302
            assert reverse("admin:login") in response["Location"]
    assert not Alert.objects.filter(acknowledged_at__isnull=False).exists()


def test_the_queue_costs_the_same_queries_for_few_alerts_and_many(client, staff, floor, site_policy):
    client.force_login(staff)
    few = live(floor, 2)
    open_alerts(floor, few, 0)
    SelfTestRun.objects.create(machine=few[0], status=SelfTestRun.Status.PASSED, finished_at=timezone.now())
    cost_few = count_queries(client, reverse("staff:alerts"))
    many = live(floor, 12, circuit=1)
    open_alerts(floor, few + many, 1, fans_ok=False, chip_temp_max_c=99.0)
    for machine in many:
        SelfTestRun.objects.create(machine=machine, status=SelfTestRun.Status.PASSED, finished_at=timezone.now())
    assert Alert.objects.open().count() == 2 * 14
    assert count_queries(client, reverse("staff:alerts")) == cost_few


# --- the portal ----------------------------------------------------------------------------------


def test_a_tenant_sees_their_own_alerts_and_never_another_tenants(client, tenant_user, world):
    client.force_login(tenant_user)
    page = client.get(reverse("portal:alerts")).content.decode()
    assert page.count('class="alert"') == 2
    for machine in world["ours"]:
        assert reverse("portal:machine", args=[machine.pk]) in page
    assert world["theirs"].serial not in page
    assert "Circuit over breaker" not in page

    them = MembershipFactory(tenant=world["theirs"].tenant).user
    client.force_login(them)
    theirs = client.get(reverse("portal:alerts")).content.decode()
    assert theirs.count('class="alert"') == 1
    assert world["ours"][0].serial not in theirs


def test_resolved_alerts_show_with_state_all(client, tenant_user, floor, world):
    write(world["ours"], at(1))
    from hosting.telemetry import alerting

    alerting.evaluate(floor["site"].pk, at(1), now=at(1))
    client.force_login(tenant_user)
    assert 'class="alert"' not in client.get(reverse("portal:alerts")).content.decode()
    everything = client.get(reverse("portal:alerts"), {"state": "all"}).content.decode()
    assert everything.count('class="alert"') == 2


def test_the_dashboard_counts_the_tenants_open_alerts(client, tenant_user, world):
    client.force_login(tenant_user)
    page = client.get(reverse("portal:dashboard")).content.decode()
    card = page[page.index('id="open-alerts"') :]
    assert '<div class="figure">2</div>' in card[:200]
    assert reverse("portal:alerts") in page


def test_the_portal_list_needs_a_tenant(client, world):
    assert client.get(reverse("portal:alerts")).status_code == 302  # to the login page
    client.force_login(UserFactory())
    assert client.get(reverse("portal:alerts")).status_code == 403


def test_the_portal_list_costs_the_same_queries_for_few_alerts_and_many(client, floor, site_policy):
    few = live(floor, 2)
    client.force_login(MembershipFactory(tenant=few[0].tenant).user)
    open_alerts(floor, few, 0)
    cost_few = count_queries(client, reverse("portal:alerts"))
    open_alerts(floor, few + live(floor, 12, circuit=1), 1, fans_ok=False, chip_temp_max_c=99.0)
    assert count_queries(client, reverse("portal:alerts")) == cost_few
