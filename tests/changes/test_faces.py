"""Reading the change log: staff site-wide (the page and the API, filtered, paged, one
request's changes together), tenants only their own contracts' and machines' history, with
staff never named."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from capacity import ledger
from changelog import context
from hosting import services
from hosting.lifecycle import MachineStatus
from hosting.models import ApiToken
from tests.changes.conftest import entries_of
from tests.factories import ContractFactory, MachineFactory, MembershipFactory, PhaseFactory, StaffFactory, racked

pytestmark = pytest.mark.django_db


@pytest.fixture
def story(floor, staff, tenant_user):
    """Staff (in one request) re-rate the site's PUE and move a machine; the tenant, in
    another, edits a note; another tenant's machine changes too."""
    (machine,) = racked(floor, 1)
    with context.acting(cid="req-staff-1", user=staff):
        site = floor["site"]
        site.pue = Decimal("1.05")
        ledger.save_site(site)
        services.transition(machine, MachineStatus.RECEIVED, by=staff, reason="fans")
    with context.acting(cid="req-tenant-1", user=tenant_user):
        machine.notes = "rack by the door"
        machine.save(update_fields=["notes"])
    other_user = MembershipFactory().user
    other = MachineFactory(contract=ContractFactory(tenant=other_user.memberships.get().tenant, site=floor["site"]))
    with context.acting(cid="req-other-1", user=other_user):
        other.notes = "the other tenant's secret"
        other.save(update_fields=["notes"])
    return {"machine": machine, "other": other, "other_user": other_user, "site": site}


def api_as(user=None) -> APIClient:
    api = APIClient()
    if user is not None:
        _, key = ApiToken.issue(user, "tests")
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


# --- the API --------------------------------------------------------------------------------------


def test_the_api_is_for_staff_only(story, tenant_user):
    assert api_as().get("/api/v1/changes/").status_code == 401
    refused = api_as(tenant_user).get("/api/v1/changes/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"


def test_staff_read_every_change_with_before_after_who_and_request_id(story, staff):
    api = api_as(staff)
    body = api.get("/api/v1/changes/", {"request_id": "req-staff-1"}).json()
    rows = body["results"]
    assert {(r["model"], r["action"]) for r in rows} >= {("capacity.site", "update"), ("hosting.machine", "update")}
    site_row = next(r for r in rows if r["model"] == "capacity.site")
    assert site_row["changes"]["pue"]["after"] == "1.05"
    assert (site_row["actor"], site_row["request_id"], site_row["object_id"]) == (
        "ops",
        "req-staff-1",
        str(story["site"].pk),
    )
    move = next(r for r in rows if r["model"] == "hosting.machine")
    assert move["changes"]["status"] == {"before": "racked", "after": "received"}
    assert move["changes"]["slot"] == {"before": story["machine"].slot_id, "after": None}
    assert move["via"] == "services.move_machines"
    assert {r["request_id"] for r in rows} == {"req-staff-1"}


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ({"model": "hosting.machine", "actor": "ops"}, {"req-staff-1"}),
        ({"actor": "nobody-at-all"}, set()),
        ({"action": "update", "model": "capacity.site"}, {"req-staff-1"}),
    ],
)
def test_the_api_filters(story, staff, query, expect):
    rows = api_as(staff).get("/api/v1/changes/", query).json()["results"]
    assert {r["request_id"] for r in rows} == expect


def test_the_api_filters_by_object_and_dates_and_refuses_bad_values(story, staff):
    api = api_as(staff)
    machine = story["machine"]
    rows = api.get("/api/v1/changes/", {"model": "hosting.machine", "object_id": machine.pk}).json()["results"]
    assert len(rows) == len(entries_of(machine))
    later = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    assert api.get("/api/v1/changes/", {"since": later}).json()["count"] == 0
    assert api.get("/api/v1/changes/", {"until": later}).json()["count"] == LogEntry.objects.count()
    assert api.get("/api/v1/changes/", {"model": "hosting.nothing"}).status_code == 400
    assert api.get("/api/v1/changes/", {"since": "yesterday"}).status_code == 400
    assert api.get("/api/v1/changes/", {"page_size": 1}).json()["next"] is not None


# --- the staff page --------------------------------------------------------------------------------


def test_the_staff_page_is_staff_only(client, story, tenant_user):
    url = reverse("staff:changes")
    assert client.get(url).status_code == 302
    client.force_login(tenant_user)
    response = client.get(url)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_staff_page_groups_a_requests_changes_and_filters(client, story, staff):
    client.force_login(staff)
    page = client.get(reverse("staff:changes")).content.decode()
    assert page.count('data-cid="req-staff-1"') == 1  # the site's and the machine's changes, one group
    group = page.split('data-cid="req-staff-1"')[1].split("</tbody>")[0]
    assert "site" in group
    assert "Racked → Received" not in group
    assert "racked → received" in group
    assert "1.05" in group
    assert "the other tenant&#x27;s secret" in page  # staff see every tenant's
    only = client.get(reverse("staff:changes"), {"request_id": "req-tenant-1"}).content.decode()
    assert "rack by the door" in only
    assert "1.05" not in only
    by_model = client.get(reverse("staff:changes"), {"model": "capacity.site"}).content.decode()
    assert "1.05" in by_model
    assert "rack by the door" not in by_model
    day = timezone.localdate().isoformat()
    assert "1.05" in client.get(reverse("staff:changes"), {"since": day, "until": day}).content.decode()
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert "1.05" not in client.get(reverse("staff:changes"), {"since": tomorrow}).content.decode()


def test_the_staff_page_costs_the_same_queries_for_few_changes_and_many(client, story, staff):
    client.force_login(staff)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("staff:changes")).status_code == 200
        return len(captured)

    few = queries()
    site = story["site"]
    with context.acting(user=StaffFactory()):
        for pue in ("1.06", "1.07", "1.08", "1.09"):
            site.pue = Decimal(pue)
            ledger.save_site(site)
    assert queries() == few


# --- the portal --------------------------------------------------------------------------------------


def test_a_tenant_reads_its_machines_history_with_staff_unnamed(client, story, tenant_user):
    client.force_login(tenant_user)
    page = client.get(reverse("portal:machine", args=[story["machine"].pk])).content.decode()
    changes = page.split('id="changes"')[1]
    assert "racked → received" in changes
    assert "rack by the door" in changes
    assert "Haven staff" in changes
    assert "ops" not in changes  # the staff member's username
    assert tenant_user.username in changes
    assert "the other tenant" not in page


def test_a_tenant_reads_its_contracts_history(client, floor, tenant_user, staff):
    PhaseFactory(site=floor["site"], mw=Decimal("10"))
    with context.acting(user=staff):
        services.sign_contract(floor["contract"], by=staff)
    client.force_login(tenant_user)
    page = client.get(reverse("portal:contract", args=[floor["contract"].pk])).content.decode()
    changes = page.split('id="changes"')[1]
    assert "signed" in changes
    assert "Haven staff" in changes
    assert "signed by" not in changes.lower()
    assert "reservation" not in changes.lower()


def test_another_tenants_machine_and_contract_histories_are_not_found(client, story):
    client.force_login(story["other_user"])
    assert client.get(reverse("portal:machine", args=[story["machine"].pk])).status_code == 404
    assert client.get(reverse("portal:contract", args=[story["machine"].contract_id])).status_code == 404
    own = client.get(reverse("portal:machine", args=[story["other"].pk])).content.decode()
    assert "the other tenant&#x27;s secret" in own
    assert "rack by the door" not in own
    assert "racked → received" not in own
