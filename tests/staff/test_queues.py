"""The queues staff work through: the waitlist in queue order, holds about to expire, and
machines received but not yet racked — each paginated, at a fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from capacity.models import Reservation
from hosting.lifecycle import MachineStatus
from hosting.models import Quote
from tests.factories import (
    ContractFactory,
    MachineFactory,
    ReservationFactory,
    SiteFactory,
    TenantFactory,
    UserFactory,
    machine_model,
    racked,
)
from tests.staff.conftest import count_queries

pytestmark = pytest.mark.django_db


# --- waitlist ---------------------------------------------------------------------------------


def waitlisted(ago: dt.timedelta, **fields) -> Quote:
    fields.setdefault("it_kw", Decimal("650"))
    return Quote.objects.create(
        contact_email=fields.pop("contact_email", "ops@miner.example"),
        start_on=fields.pop("start_on", dt.date(2027, 1, 1)),
        term_months=fields.pop("term_months", 24),
        status=Quote.Status.WAITLISTED,
        waitlisted_at=timezone.now() - ago,
        **fields,
    )


def test_the_waitlist_is_shown_in_queue_order_with_what_each_asks(staff_client):
    site = SiteFactory(name="Siberia · Bratsk")
    second = waitlisted(dt.timedelta(hours=5), machine_model=machine_model(), quantity=200, it_kw=Decimal("650"),
                        site=site, contact_email="second@example.com")  # fmt: skip
    first = waitlisted(
        dt.timedelta(days=3, hours=2), country="KZ", region="Ekibastuz", contact_email="first@example.com"
    )
    Quote.objects.create(contact_email="priced@example.com", it_kw=1, start_on=dt.date(2027, 1, 1), term_months=1,
                         status=Quote.Status.PRICED)  # fmt: skip
    response = staff_client.get(reverse("staff:waitlist"))
    rows = response.context["rows"]
    assert [(r["position"], r["quote"].pk) for r in rows] == [(1, first.pk), (2, second.pk)]
    page = response.content.decode()
    assert page.index("first@example.com") < page.index("second@example.com")
    assert "priced@example.com" not in page
    assert "3 d 2 h" in page
    assert "5 h 0 min" in page
    assert "200 × Antminer S19" in page
    assert "site Siberia · Bratsk" in page
    assert "country KZ" in page
    assert "Ekibastuz" in page
    assert "2027-01-01" in page
    assert "24 mo" in page


def test_waitlist_positions_carry_on_across_pages(staff_client):
    for n in range(52):
        waitlisted(dt.timedelta(hours=100 - n))
    rows = staff_client.get(reverse("staff:waitlist"), {"page": 2}).context["rows"]
    assert [r["position"] for r in rows] == [51, 52]


def grow_waitlist(n: int) -> None:
    site = SiteFactory()
    requester = UserFactory()
    for i in range(n):
        waitlisted(dt.timedelta(hours=i), site=site, requester=requester, machine_model=machine_model(), quantity=10)
        waitlisted(dt.timedelta(hours=i), country="US")


def test_the_waitlist_costs_the_same_queries_for_few_quotes_and_many(staff_client):
    grow_waitlist(1)
    few = count_queries(staff_client, reverse("staff:waitlist"))
    grow_waitlist(20)
    assert count_queries(staff_client, reverse("staff:waitlist")) == few


# --- holds -------------------------------------------------------------------------------------


def hold(expires_in: dt.timedelta, *, site=None, tenant=None, released=False, **fields) -> Reservation:
    now = timezone.now()
    fields.setdefault("it_kw", Decimal("1300"))
    reservation = ReservationFactory(
        site=site or SiteFactory(),
        kind=Reservation.Kind.HOLD,
        starts_on=dt.date(2027, 2, 1),
        ends_on=dt.date(2029, 2, 1),
        expires_at=now + expires_in,
        released_at=now if released else None,
        **fields,
    )
    if tenant is not None:
        Quote.objects.create(contact_email="buyer@example.com", it_kw=reservation.it_kw, start_on=reservation.starts_on,
                             term_months=24, status=Quote.Status.ACCEPTED, tenant=tenant,
                             accepted_site=reservation.site, hold=reservation)  # fmt: skip
    return reservation


def test_holds_expiring_within_a_day_are_listed_soonest_first_with_their_quote_and_tenant(staff_client):
    site = SiteFactory(name="Texas · Rockdale")
    tenant = TenantFactory(name="Northern Hash Ltd")
    later = hold(dt.timedelta(hours=20), site=site, tenant=tenant)
    sooner = hold(dt.timedelta(hours=3), site=site, reference="hold:sooner")
    hold(dt.timedelta(hours=30), site=site, reference="hold:tomorrow")  # later than a day
    hold(-dt.timedelta(hours=1), site=site, reference="hold:expired")  # no longer counts
    hold(dt.timedelta(hours=2), site=site, released=True, reference="hold:released")
    ReservationFactory(site=site, reference="contract:firm")  # firm: never expires

    response = staff_client.get(reverse("staff:holds"))
    assert [item["hold"].pk for item in response.context["items"]] == [sooner.pk, later.pk]
    page = response.content.decode()
    assert "Northern Hash Ltd" in page
    assert reverse("admin:hosting_quote_change", args=[later.quote.pk]) in page
    assert sooner.reference in page  # no quote: its reference instead
    assert "Texas · Rockdale" in page
    assert "1,300" in page
    assert "2027-02-01 → 2029-02-01" in page
    for hidden in ("hold:tomorrow", "hold:expired", "hold:released", "contract:firm"):
        assert hidden not in page

    wider = staff_client.get(reverse("staff:holds"), {"hours": "48"}).context["items"]
    assert len(wider) == 3
    assert len(staff_client.get(reverse("staff:holds"), {"hours": "nonsense"}).context["items"]) == 2


def grow_holds(n: int) -> None:
    site = SiteFactory()
    for i in range(n):
        hold(dt.timedelta(hours=1 + i % 20), site=site, tenant=TenantFactory())
        hold(dt.timedelta(hours=2), site=site)


def test_holds_cost_the_same_queries_for_few_and_many(staff_client):
    grow_holds(1)
    few = count_queries(staff_client, reverse("staff:holds"))
    grow_holds(20)
    assert count_queries(staff_client, reverse("staff:holds")) == few


# --- intake ------------------------------------------------------------------------------------


def received(ago: dt.timedelta, contract=None, **fields):
    return MachineFactory(
        contract=contract or ContractFactory(),
        status=MachineStatus.RECEIVED,
        status_changed_at=timezone.now() - ago,
        **fields,
    )


def test_the_intake_queue_lists_received_machines_not_racked_oldest_first(staff_client, floor):
    newer = received(dt.timedelta(hours=2), floor["contract"], serial="NEWER-1")
    older = received(dt.timedelta(days=2, hours=1), serial="OLDER-1")
    racked(floor, 1, serial="RACKED-1")
    MachineFactory(contract=floor["contract"], serial="ANNOUNCED-1")
    response = staff_client.get(reverse("staff:intake"))
    assert [item["machine"].pk for item in response.context["items"]] == [older.pk, newer.pk]
    page = response.content.decode()
    assert "RACKED-1" not in page
    assert "ANNOUNCED-1" not in page
    assert "2 d 1 h" in page
    assert "2 h 0 min" in page
    assert newer.tenant.name in page
    assert floor["site"].name in page
    assert "Antminer S19" in page
    assert reverse("admin:hosting_machine_change", args=[newer.pk]) in page
    assert reverse("admin:hosting_contract_change", args=[newer.contract_id]) in page
    at_floor = staff_client.get(reverse("staff:intake"), {"site": floor["site"].slug}).context["items"]
    assert [item["machine"].pk for item in at_floor] == [newer.pk]


def grow_intake(n: int) -> None:
    contract = ContractFactory()
    for i in range(n):
        received(dt.timedelta(hours=i), contract)
        received(dt.timedelta(hours=i))


def test_intake_costs_the_same_queries_for_few_and_many(staff_client):
    grow_intake(1)
    few = count_queries(staff_client, reverse("staff:intake"))
    grow_intake(30)
    assert count_queries(staff_client, reverse("staff:intake")) == few


def test_every_queue_grows_by_pages_of_fifty(staff_client):
    grow_intake(26)  # 52 machines
    first = staff_client.get(reverse("staff:intake"))
    assert len(first.context["items"]) == 50
    assert "page 1 of 2" in first.content.decode()
    assert len(staff_client.get(reverse("staff:intake"), {"page": 2}).context["items"]) == 2
