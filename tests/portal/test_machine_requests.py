"""A tenant's next step for a machine that failed: ask for a re-test or an RMA from the
machine page; staff see it in the intake queue (and the admin) and act on it; the tenant
sees what became of it. One open request per machine; another tenant's machine is not found."""

import pytest
from django.test import Client
from django.urls import reverse

from hosting import machine_requests, services
from hosting.lifecycle import MachineStatus
from hosting.models import MachineEvent, MachineRequest, SelfTestRun
from tests.factories import MachineFactory, MembershipFactory, StaffFactory, racked

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"portal:{name}", args=args)


@pytest.fixture
def failed(floor):
    """A racked machine of the floor's tenant that failed its self-test."""
    (machine,) = racked(floor, 1)
    machine = services.transition(machine, MachineStatus.TESTING)
    return services.transition(machine, MachineStatus.FAILED, reason="hashboard 2 not detected")


@pytest.fixture
def staff(client):
    staff_client = Client()
    staff_client.force_login(StaffFactory(username="ops"))
    return staff_client


def test_a_tenant_asks_for_a_retest_of_a_failed_machine_and_sees_it_open(portal, failed, tenant_user):
    page = portal.get(url("machine", failed.pk)).content.decode()
    assert 'id="machine-request-form"' in page
    assert '<option value="retest">re-test</option>' in page
    assert '<option value="rma">RMA (send for repair)</option>' in page
    asked = {"kind": "retest", "note": "swapped the PSU"}
    response = portal.post(url("machine-request", failed.pk), asked, follow=True)
    page = response.content.decode()
    assert "Asked for a re-test" in page
    ask = MachineRequest.objects.get()
    assert (ask.machine, ask.kind, ask.state, ask.requested_by, ask.note) == (
        failed, "retest", "open", tenant_user, "swapped the PSU"
    )  # fmt: skip
    assert 'class="open-request"' in page
    assert 'id="machine-request-form"' not in page  # one at a time
    again = portal.post(url("machine-request", failed.pk), {"kind": "rma"}, follow=True).content.decode()
    assert "already has an open request" in again
    assert MachineRequest.objects.count() == 1


def test_only_what_the_lifecycle_allows_can_be_asked(portal, floor):
    (machine,) = racked(floor, 1)  # racked, not failed: a re-test yes, an RMA no
    form = portal.get(url("machine", machine.pk)).content.decode()
    assert '<option value="retest">' in form
    assert '<option value="rma">' not in form
    refused = portal.post(url("machine-request", machine.pk), {"kind": "rma"}, follow=True).content.decode()
    assert "Not asked" in refused
    in_transit = MachineFactory(contract=floor["contract"], status=MachineStatus.IN_TRANSIT)
    page = portal.get(url("machine", in_transit.pk)).content.decode()
    assert "Nothing to ask while the machine is in transit" in page
    with pytest.raises(machine_requests.RequestRefused):
        machine_requests.file(in_transit, "retest")
    assert not MachineRequest.objects.exists()


def test_another_tenants_machine_is_not_found_and_the_form_needs_its_csrf_token(portal, floor, failed):
    theirs = MachineFactory(status=MachineStatus.RECEIVED)
    assert portal.post(url("machine-request", theirs.pk), {"kind": "rma"}).status_code == 404
    stranger = Client(enforce_csrf_checks=True)
    stranger.force_login(MembershipFactory(tenant=floor["contract"].tenant).user)
    assert stranger.post(url("machine-request", failed.pk), {"kind": "retest"}).status_code == 403
    assert not MachineRequest.objects.exists()


def test_staff_see_the_request_in_intake_and_a_retest_starts_the_self_test(portal, staff, failed):
    machine_requests.file(failed, "retest", note="swapped the PSU")
    intake = staff.get(reverse("staff:intake")).content.decode()
    assert 'id="machine-requests"' in intake
    assert failed.serial in intake
    assert "swapped the PSU" in intake
    ask = MachineRequest.objects.get()
    assert staff.get(reverse("staff:home")).context["counts"]["requests"] == 1

    done = staff.post(reverse("staff:request-act", args=[ask.pk]), {"decision": "do"}, follow=True)
    assert "re-test of" in done.content.decode().lower()
    ask.refresh_from_db()
    failed.refresh_from_db()
    assert (ask.state, ask.resolved_by.username, ask.response) == ("done", "ops", "self-test started")
    assert failed.status == MachineStatus.TESTING
    assert SelfTestRun.objects.open().filter(machine=failed).exists()
    page = portal.get(url("machine", failed.pk)).content.decode()
    assert '<tr class="request done">' in page
    assert "self-test started" in page
    assert staff.get(reverse("staff:intake")).context["requests"] == []  # nothing left to act on


def test_an_rma_moves_the_machine_and_a_decline_says_why(portal, staff, floor, failed):
    ask = machine_requests.file(failed, "rma", note="fans rattle")
    staff.post(reverse("staff:request-act", args=[ask.pk]), {"decision": "do"})
    failed.refresh_from_db()
    assert failed.status == MachineStatus.RMA
    assert failed.slot is None
    assert MachineEvent.objects.filter(machine=failed, to_status="rma", reason__contains="fans rattle").exists()

    (other,) = racked(floor, 1)
    ask = machine_requests.file(other, "retest")
    no_reason = staff.post(reverse("staff:request-act", args=[ask.pk]), {"decision": "decline"}, follow=True)
    assert "Say why" in no_reason.content.decode()
    ask.refresh_from_db()
    assert ask.state == "open"
    staff.post(reverse("staff:request-act", args=[ask.pk]), {"decision": "decline", "reason": "it passed yesterday"})
    ask.refresh_from_db()
    assert (ask.state, ask.response) == ("declined", "it passed yesterday")
    page = portal.get(url("machine", other.pk)).content.decode()
    assert '<tr class="request declined">' in page
    assert "it passed yesterday" in page
    assert staff.post(reverse("staff:request-act", args=[ask.pk]), {"decision": "do"}).status_code == 404  # closed


def test_acting_needs_staff_and_a_csrf_token(portal, failed):
    ask = machine_requests.file(failed, "retest")
    assert portal.post(reverse("staff:request-act", args=[ask.pk]), {"decision": "do"}).status_code == 302  # login
    ops = Client(enforce_csrf_checks=True)
    ops.force_login(StaffFactory(username="ops2"))
    assert ops.post(reverse("staff:request-act", args=[ask.pk]), {"decision": "do"}).status_code == 403
    ask.refresh_from_db()
    assert ask.state == "open"


def test_staff_act_from_the_admin_too(staff, failed):
    ask = machine_requests.file(failed, "retest")
    changelist = reverse("admin:hosting_machinerequest_changelist")
    assert failed.serial in staff.get(changelist, {"state__exact": "open"}).content.decode()
    asked = staff.post(changelist, {"action": "decline", "_selected_action": [ask.pk]})
    assert 'id="with-reason"' in asked.content.decode()  # asks why first
    staff.post(changelist, {"action": "decline", "_selected_action": [ask.pk], "apply": "1", "reason": "no"})
    ask.refresh_from_db()
    assert (ask.state, ask.response) == ("declined", "no")
    second = machine_requests.file(failed, "retest")
    staff.post(changelist, {"action": "carry_out", "_selected_action": [second.pk]})
    second.refresh_from_db()
    assert second.state == "done"
    assert SelfTestRun.objects.open().filter(machine=failed).exists()


def test_the_database_keeps_one_open_request_per_machine(failed):
    from django.db import IntegrityError, transaction

    MachineRequest.objects.create(machine=failed, kind="retest")
    with pytest.raises(IntegrityError), transaction.atomic():
        MachineRequest.objects.create(machine=failed, kind="rma")


def test_the_machine_page_and_the_intake_requests_cost_the_same_queries_for_few_and_many(portal, staff, floor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(client, page_url):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page_url).status_code == 200
        return len(captured)

    (machine,) = racked(floor, 1)
    ask = machine_requests.file(machine, "retest")
    machine_requests.close(ask, "declined", response="not yet")
    urls = [(portal, url("machine", machine.pk)), (staff, reverse("staff:intake"))]
    few = [queries(client, page_url) for client, page_url in urls]
    for _ in range(4):
        machine_requests.close(machine_requests.file(machine, "retest"), "declined", response="no")
    for other in racked(floor, 6, circuit=1):
        machine_requests.file(other, "retest", note="please")
    machine_requests.file(machine, "retest")
    assert [queries(client, page_url) for client, page_url in urls] == few
