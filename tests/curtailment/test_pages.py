"""What people see of curtailment: staff's sites, event form, price upload and event page;
the tenant's rights, hours used and invoice effect — and nobody sees another's."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.billing.models import ContractTerms, RollupCursor
from hosting.curtailment import reports, triggers
from hosting.curtailment.models import Event, EventMachine, EventSample, Program, ProgramKind
from hosting.lifecycle import MachineStatus
from hosting.telemetry.models import Window
from hosting.telemetry.services_store import policy_for
from hosting.telemetry.storage import write_windows
from tests.curtailment.pages_world import curtailed_days, event_world, priced_site, recent
from tests.factories import ContractFactory, MachineFactory, UserFactory
from tests.staff.conftest import svg_root
from tests.telemetry.views_data import another_floor

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture
def world(floor):
    return event_world(floor)


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(username="ops", is_staff=True))
    return client


# --------------------------------------------------------------------------------------
# Who may see what
# --------------------------------------------------------------------------------------


def staff_urls(world):
    return [reverse("staff:curtailment"), reverse("staff:curtailment-event", args=[world["event"].pk])]


def test_staff_pages_refuse_tenants_and_the_anonymous(client, world):
    for url in staff_urls(world):
        anonymous = client.get(url)
        assert anonymous.status_code == 302
        assert "/admin/login/" in anonymous["Location"]
    client.force_login(world["user"])
    for url in staff_urls(world):
        refused = client.get(url)
        assert refused.status_code == 302
        assert "/admin/login/" in refused["Location"]
    assert client.post(reverse("staff:curtailment-event-new"), {}).status_code == 302
    assert client.post(reverse("staff:curtailment-prices"), {}).status_code == 302
    assert Event.objects.count() == 1


def test_the_staff_pages_only_read_and_the_forms_only_post(staff, world):
    for url in staff_urls(world):
        assert staff.post(url).status_code == 405
    assert staff.get(reverse("staff:curtailment-event-new")).status_code == 405
    assert staff.get(reverse("staff:curtailment-prices")).status_code == 405


def test_the_tenant_pages_refuse_the_anonymous_and_another_tenants_contract_is_not_found(client, world):
    mine = reverse("portal:curtailment-contract", args=[world["contract"].pk])
    for url in (reverse("portal:curtailment"), mine):
        response = client.get(url)
        assert response.status_code == 302
        assert "/portal/login/" in response["Location"]
    client.force_login(world["user"])
    assert client.get(mine).status_code == 200
    assert client.get(reverse("portal:curtailment-contract", args=[world["other"].pk])).status_code == 404


# --------------------------------------------------------------------------------------
# Staff: sites, event page
# --------------------------------------------------------------------------------------


def test_each_site_shows_its_price_against_the_strike_its_load_and_open_events(staff, world):
    html = staff.get(reverse("staff:curtailment")).content.decode()
    row = html[html.index(f'data-site="{world["site"].slug}"') :]
    row = row[: row.index("</tr>")]
    assert "LZ_WEST" in row
    assert "250.00" in row
    assert "20.00" not in row
    assert "Strike 100.00: 100.00" in row
    assert "above strike" in row
    assert "0.013" in row  # 4 × 3,250 W at PUE 1.00 = 0.013 MW
    assert f"#{world['event'].pk}" in row
    assert "1 not responding" not in row
    assert "2 not responding" in row


def test_a_price_under_the_strike_is_shown_below_it(staff, world):
    Program.objects.filter(pk=world["program"].pk).update(strike_usd_per_mwh=Decimal("300"))
    html = staff.get(reverse("staff:curtailment")).content.decode()
    assert "below strike" in html
    assert "above strike" not in html


def test_the_event_page_charts_target_against_achieved_and_lists_non_responders(staff, world):
    html = staff.get(reverse("staff:curtailment-event", args=[world["event"].pk])).content.decode()
    chart = svg_root(html, "event-chart")
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert chart.find(".//svg:path[@class='achieved']", ns) is not None
    assert chart.find(".//svg:path[@class='target']", ns) is not None
    assert chart.find(".//svg:line[@class='deadline']", ns) is not None
    table = html[html.index('id="not-responding-table"') : html.index('id="machines"')]
    failed, theirs = world["mine"][0], world["theirs"]
    assert failed.serial in table
    assert theirs.serial in table
    assert world["mine"][1].serial not in table
    assert table.count("timeout after 5 s") == 2
    assert "no answer" in table
    machines = html[html.index('id="event-machines"') :]
    assert f'data-machine="{failed.pk}" class="flagged"' in machines
    assert f'data-machine="{world["mine"][1].pk}" class="flagged"' not in machines
    assert "0.013 MW" in html  # the latest sample: 6 × 0.0021 = 0.0126


def test_the_event_machines_filter_to_the_non_responders(staff, world):
    url = reverse("staff:curtailment-event", args=[world["event"].pk]) + "?only=not_responding"
    html = staff.get(url).content.decode()
    machines = html[html.index('id="event-machines"') :]
    assert machines.count("<tr data-machine=") == 2


def test_an_event_without_samples_still_renders(staff, world):
    EventSample.objects.all().delete()
    response = staff.get(reverse("staff:curtailment-event", args=[world["event"].pk]))
    assert response.status_code == 200
    assert "no samples yet" in response.content.decode()
    assert staff.get(reverse("staff:curtailment-event", args=[999_999])).status_code == 404


def test_query_counts_do_not_grow_with_sites_events_or_machines(staff, world, django_assert_max_num_queries):
    from tests.staff.conftest import count_queries

    overview = count_queries(staff, reverse("staff:curtailment"))
    event_url = reverse("staff:curtailment-event", args=[world["event"].pk])
    page = count_queries(staff, event_url)
    for _ in range(3):
        more = another_floor()
        priced_site(more["site"], point=f"HB_{more['site'].slug[:20].upper()}")
        Event.objects.create(site=more["site"], target_mw=1, starts_at=timezone.now(), deadline_at=timezone.now())
    extra = [MachineFactory(contract=world["contract"]) for _ in range(30)]
    EventMachine.objects.bulk_create(
        EventMachine(event=world["event"], machine=m, contract=world["contract"], rank=100 + i, expected_shed_w=1,
                     status="failed")
        for i, m in enumerate(extra)
    )  # fmt: skip
    with django_assert_max_num_queries(overview):
        staff.get(reverse("staff:curtailment"))
    with django_assert_max_num_queries(page):
        staff.get(event_url)


# --------------------------------------------------------------------------------------
# Staff: the event form and the price upload
# --------------------------------------------------------------------------------------


def form_data(world, **changes):
    now = timezone.now()
    data = {
        "site": world["site"].slug, "program": world["program"].pk, "target": "shed", "target_mw": "1.5",
        "starts_at": (now + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "deadline_at": (now + dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M"),
    }  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_valid_event_is_recorded_as_staff_entered_it(staff, world):
    response = staff.post(reverse("staff:curtailment-event-new"), form_data(world))
    event = Event.objects.exclude(pk=world["event"].pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:curtailment-event", args=[event.pk])
    assert (event.source, event.target, event.target_mw, event.program_id) == (
        "staff", "shed", Decimal("1.5"), world["program"].pk,
    )  # fmt: skip
    assert event.created_by.username == "ops"
    assert event.deadline_at - event.starts_at == dt.timedelta(minutes=10)
    assert event.starts_at.tzinfo is not None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"target_mw": "0"}, "target_mw", "Shedding 0 MW is no event."),
        ({"target_mw": "-1"}, "target_mw", "greater than or equal to 0"),
        ({"target_mw": "abc"}, "target_mw", "Enter a number."),
        ({"site": "atlantis"}, "site", "Select a valid choice"),
        ({"starts_at": "tomorrow"}, "starts_at", "Enter a valid date/time."),
        ({"deadline_at": "soon"}, "deadline_at", "Enter a valid date/time."),
        ({"ends_at": "2020-01-01T00:00"}, "ends_at", "The end must be after the start."),
        ({"deadline_at": "2020-01-01T00:00", "starts_at": "2019-12-31T00:00", "ends_at": None}, "deadline_at",
         "The deadline is in the past."),
        ({"deadline_at": "2099-01-01T00:00"}, "deadline_at", "The deadline must not be after the end."),
    ],
)  # fmt: skip
def test_a_wrong_event_is_refused_with_its_reason_and_nothing_recorded(staff, world, changes, field, message):
    response = staff.post(reverse("staff:curtailment-event-new"), form_data(world, **changes))
    assert response.status_code == 400
    html = response.content.decode()
    error = html[html.index(f'data-field="{field}"') :]
    assert message in error[: error.index("</span>")]
    assert Event.objects.count() == 1


def test_without_a_deadline_the_event_gets_its_programs_response_time(staff, world):
    program = world["program"]
    response = staff.post(reverse("staff:curtailment-event-new"), form_data(world, deadline_at=None, ends_at=None))
    assert response.status_code == 302
    event = Event.objects.exclude(pk=world["event"].pk).get()
    minutes = triggers.response_minutes(program.kind, program.response_minutes)
    assert event.deadline_at == event.starts_at + dt.timedelta(minutes=minutes)
    manual = form_data(world, program="", deadline_at=None, ends_at=None)
    assert staff.post(reverse("staff:curtailment-event-new"), manual).status_code == 302
    event = Event.objects.filter(program__isnull=True).exclude(pk=world["event"].pk).get()
    assert event.deadline_at == event.starts_at + dt.timedelta(minutes=30)  # voluntary's


def test_a_program_of_another_site_is_refused(staff, world):
    elsewhere = another_floor()
    program = Program.objects.create(site=elsewhere["site"], kind=ProgramKind.ERS_10, name="ERS-10 elsewhere")
    response = staff.post(reverse("staff:curtailment-event-new"), form_data(world, program=program.pk))
    assert response.status_code == 400
    assert "ERS-10 elsewhere is a program of" in response.content.decode()


HEADER = (
    "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,SettlementPointPrice,DSTFlag\n"
)


def test_an_ercot_file_is_imported_and_a_bad_one_shows_its_lines(staff, world):
    from hosting.curtailment.models import SettlementPrice

    before = SettlementPrice.objects.count()
    good = io.BytesIO((HEADER + "01/15/2026,1,1,HB_TEST,HU,31.50,N\n01/15/2026,1,2,HB_TEST,HU,32.00,N\n").encode())
    good.name = "good.csv"
    response = staff.post(reverse("staff:curtailment-prices"), {"file": good}, follow=True)
    assert "2 price(s) imported for HB_TEST" in response.content.decode()
    assert SettlementPrice.objects.count() == before + 2
    bad = io.BytesIO((HEADER + "01/15/2026,1,3,HB_TEST,HU,31.50,N\n01/15/2026,25,1,HB_TEST,HU,x,N\n").encode())
    bad.name = "bad.csv"
    response = staff.post(reverse("staff:curtailment-prices"), {"file": bad})
    assert response.status_code == 400
    html = response.content.decode()
    problems = html[html.index('id="price-errors"') :]
    assert "<td>3</td>" in problems
    assert "DeliveryHour 25" in problems
    assert SettlementPrice.objects.count() == before + 2


# --------------------------------------------------------------------------------------
# Contracts: hours used, the invoice's effect (golden), the tenant's pages
# --------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 4, 3, 12, 0, tzinfo=UTC)


def test_hours_used_and_the_effect_on_the_invoice_golden(floor):
    """Nameplate mode at 0.05/kWh, curtailable, at most 10 h a month per machine. S19s: 3,250 W.

    Machine 1: 4 h on April 1st, 8 h on the 2nd (hourly windows) = 12 h: 2 h over its cap.
    Machine 2: 36 five-minute windows on the 1st = 3 h, and today (the 3rd, not rolled yet)
    12 raw curtailed windows of 300 s = 1 h → 4 h. A March day and another contract's
    machine do not count.

    Hours used (the most-curtailed machine) 12.00 of 10, 0 left, one machine at the cap;
    machine-hours 16.00. SLA: machine 1's 12 windows, 10 h allowed → over = round(12 ×
    2/12) = 2 counted as down, 10 excluded; machine 2's 36 + 12 = 48 excluded → 58 / 2.
    Not billed: 16 h × 3.25 kW = 52 kWh × 0.05 = 2.60 USD."""
    contract = floor["contract"]
    site = floor["site"]
    Site = type(site)
    Site.objects.filter(pk=site.pk).update(timezone="UTC")
    Contract = type(contract)
    Contract.objects.filter(pk=contract.pk).update(rate_usd_per_kwh=Decimal("0.05"))
    ContractTerms.objects.create(contract=contract, billing_mode="nameplate", curtailment_priority=1,
                                 max_curtailed_hours_month=10)  # fmt: skip
    m1, m2 = MachineFactory(contract=contract), MachineFactory(contract=contract)
    curtailed_days(m1, dt.date(2026, 4, 1), [4, 8])
    curtailed_days(m2, dt.date(2026, 4, 1), [3], window_s=300)
    curtailed_days(m2, dt.date(2026, 3, 31), [5])
    stranger = MachineFactory(contract=ContractFactory(site=site))
    curtailed_days(stranger, dt.date(2026, 4, 1), [7])
    RollupCursor.objects.create(site=site, rolled_until=dt.date(2026, 4, 3))
    policy = policy_for(site)
    policy.poll_interval_s = 300
    policy.save(update_fields=["poll_interval_s"])
    today = dt.datetime(2026, 4, 3, 1, 0, tzinfo=UTC)
    rows = [
        Window(start=today + i * dt.timedelta(minutes=5), machine_id=m2.pk, site_id=site.pk, contract_id=contract.pk,
               machine_status=MachineStatus.CURTAILED if i < 12 else MachineStatus.LIVE, reachable=True)
        for i in range(20)
    ]  # fmt: skip
    later = NOW + dt.timedelta(hours=1)  # after now: not counted yet
    rows.append(Window(start=later, machine_id=m2.pk, site_id=site.pk, contract_id=contract.pk,
                       machine_status=MachineStatus.CURTAILED))  # fmt: skip
    write_windows(rows)
    contract.refresh_from_db()

    (row,) = reports.contracts_month([Contract.objects.select_related("site").get(pk=contract.pk)], now=NOW)
    assert row.month == dt.date(2026, 4, 1)
    assert [(m.machine_id, m.hours) for m in row.machines] == [(m1.pk, Decimal("12.00")), (m2.pk, Decimal("4.00"))]
    assert (row.hours_max_machine, row.machine_hours, row.hours_left, row.machines_at_cap) == (
        Decimal("12.00"), Decimal("16.00"), Decimal(0), 1,
    )  # fmt: skip
    effect = row.effect
    assert (effect.windows_excluded, effect.windows_over_rights) == (58, 2)
    assert (effect.kwh_not_billed, effect.amount_not_billed, effect.currency) == (Decimal("52"), Decimal("2.60"), "USD")


def test_in_metered_mode_curtailed_hours_are_billed_at_the_measured_sleep_draw():
    """12 h curtailed, 3,300 W before the stop and 150 W after: about 12 × 0.15 = 1.8 kWh
    billed at sleep draw and 12 × 3.15 = 37.8 kWh not drawn (× 0.05 = 1.89); a machine
    with no reading after its stop is counted, not guessed. Not curtailable: every
    curtailed window counts as down."""
    from hosting.billing import rules

    terms = rules.Terms(mode="metered", rate_per_kwh=Decimal("0.05"), sla_target_pct=Decimal(95),
                        max_curtailed_hours_month=None, curtailable=True)  # fmt: skip
    machines = [
        reports.MachineCurtailed(1, 12 * 3600, 12, 3250, 3300.0, 150.0),
        reports.MachineCurtailed(2, 3600, 1, 3250, None, None),
    ]
    effect = reports.invoice_effect(terms, machines, "USD")
    assert (effect.kwh_billed_at_sleep, effect.kwh_not_billed, effect.amount_not_billed) == (
        Decimal("1.8"), Decimal("37.8"), Decimal("1.89"),
    )  # fmt: skip
    assert (effect.machines_unmeasured, effect.windows_excluded, effect.windows_over_rights) == (1, 13, 0)
    refused = reports.invoice_effect(rules.Terms(**{**terms.__dict__, "curtailable": False}), machines, "USD")
    assert (refused.windows_excluded, refused.windows_over_rights) == (0, 13)
    flat = reports.invoice_effect(rules.Terms(**{**terms.__dict__, "mode": "flat"}), machines, "USD")
    assert flat.kwh_not_billed is None
    assert flat.amount_not_billed is None


def test_the_tenant_sees_its_rights_hours_and_effect_and_only_its_own_machines(client, world):
    first = reports.local_month(world["site"], timezone.now())[0]
    mine, theirs = world["mine"], world["theirs"]
    curtailed_days(mine[1], first, [3])
    curtailed_days(theirs, first, [9])
    client.force_login(world["user"])
    html = client.get(reverse("portal:curtailment")).content.decode()
    assert "curtailable" in html
    assert "priority 1" in html
    assert "10 h a month per machine" in html
    assert "3.00 h" in html
    assert "of 10" in html
    assert "7.00 h left" in html
    assert "9.00" not in html  # the other tenant's hours
    assert "Not billed: 9.750 kWh" in html  # 3 h × 3.25 kW
    page = client.get(reverse("portal:curtailment-contract", args=[world["contract"].pk])).content.decode()
    assert f'data-event="{world["event"].pk}"' in page
    events = page[page.index('id="contract-events"') :]
    events = events[: events.index("</table>")]
    assert f'<td class="num">{len(mine)}</td>' in events  # its own machines in the event, not 5
    assert theirs.serial not in page
    assert "THEIRS" not in page
    assert world["other"].tenant.name not in page
    assert f'data-machine="{mine[1].pk}"' in page
    assert f'data-machine="{theirs.pk}"' not in page


def test_the_other_tenant_sees_its_event_and_not_the_first_tenants_machines(client, world):
    client.force_login(world["other_user"])
    page = client.get(reverse("portal:curtailment-contract", args=[world["other"].pk])).content.decode()
    events = page[page.index('id="contract-events"') :]
    events = events[: events.index("</table>")]
    assert '<td class="num">1</td>' in events
    assert '<td class="num">0</td>' in events
    for m in world["mine"]:
        assert m.serial not in page
    assert world["contract"].tenant.name not in page


def test_a_contract_that_is_not_curtailable_says_so_and_expects_no_event(client, world):
    ContractTerms.objects.filter(contract=world["contract"]).update(curtailment_priority=None)
    client.force_login(world["user"])
    page = client.get(reverse("portal:curtailment-contract", args=[world["contract"].pk])).content.decode()
    assert "not curtailable" in page
    assert "None: this contract is not curtailable." in page


def test_the_contract_page_links_to_its_curtailment(client, world):
    client.force_login(world["user"])
    html = client.get(reverse("portal:contract", args=[world["contract"].pk])).content.decode()
    assert reverse("portal:curtailment-contract", args=[world["contract"].pk]) in html
    assert f'href="{reverse("portal:curtailment")}"' in html  # the nav


def test_the_tenant_page_costs_the_same_queries_for_one_contract_and_four(client, world, django_assert_max_num_queries):
    from tests.staff.conftest import count_queries

    first = reports.local_month(world["site"], timezone.now())[0]
    curtailed_days(world["mine"][0], first, [1])  # (with nothing curtailed, a query is skipped)
    client.force_login(world["user"])
    url = reverse("portal:curtailment")
    one = count_queries(client, url)
    detail = reverse("portal:curtailment-contract", args=[world["contract"].pk])
    one_detail = count_queries(client, detail)
    tenant = world["contract"].tenant
    for _ in range(3):
        c = ContractFactory(tenant=tenant, site=another_floor()["site"])
        ContractTerms.objects.create(contract=c, curtailment_priority=1, max_curtailed_hours_month=5)
        curtailed_days(MachineFactory(contract=c), first, [1])
        Event.objects.create(site=c.site, target_mw=1, starts_at=recent(), deadline_at=recent())
    for m in world["mine"][1:]:
        curtailed_days(m, first, [2])
    extra = Event.objects.create(site=world["site"], target_mw=1, starts_at=recent(), deadline_at=recent())
    EventMachine.objects.create(event=extra, machine=world["mine"][1], contract=world["contract"], rank=1,
                                expected_shed_w=3000)  # fmt: skip
    with django_assert_max_num_queries(one):
        assert client.get(url).status_code == 200
    with django_assert_max_num_queries(one_detail):
        assert client.get(detail).status_code == 200


def test_a_member_of_no_tenant_is_refused(client, world):
    client.force_login(UserFactory(username="nobody"))
    assert client.get(reverse("portal:curtailment")).status_code == 403


def test_windows_already_rolled_into_machine_days_are_counted_once(floor):
    """The site is rolled through April 3rd: its 2 curtailed hours are in the machine-day,
    and the same raw windows are not read again."""
    contract, site = floor["contract"], floor["site"]
    ContractTerms.objects.create(contract=contract, curtailment_priority=1)
    m = MachineFactory(contract=contract)
    curtailed_days(m, dt.date(2026, 4, 3), [2])
    RollupCursor.objects.create(site=site, rolled_until=dt.date(2026, 4, 4))
    start = dt.datetime(2026, 4, 3, 1, 0, tzinfo=UTC)
    write_windows([
        Window(start=start + i * dt.timedelta(hours=1), machine_id=m.pk, site_id=site.pk, contract_id=contract.pk,
               machine_status=MachineStatus.CURTAILED)
        for i in range(2)
    ])  # fmt: skip
    contract = type(contract).objects.select_related("site").get(pk=contract.pk)
    (row,) = reports.contracts_month([contract], now=NOW)
    assert row.machine_hours == Decimal("2.00")
    (row,) = reports.contracts_month([contract], now=dt.datetime(2026, 5, 1, 1, tzinfo=UTC))
    assert (row.month, row.machines) == (dt.date(2026, 5, 1), [])  # a new month starts at zero


def test_an_event_with_less_notice_than_the_contracts_is_marked(client, world):
    """The event was recorded 20 minutes after it started: 0 min of notice, under 30."""
    ContractTerms.objects.filter(contract=world["contract"]).update(curtailment_notice_min=30)
    client.force_login(world["user"])
    page = client.get(reverse("portal:curtailment-contract", args=[world["contract"].pk])).content.decode()
    row = page[page.index(f'data-event="{world["event"].pk}"') :]
    assert "0 min" in row[: row.index("</tr>")]
    assert "under your 30 min" in row[: row.index("</tr>")]
    Event.objects.filter(pk=world["event"].pk).update(created_at=world["event"].starts_at - dt.timedelta(hours=1))
    page = client.get(reverse("portal:curtailment-contract", args=[world["contract"].pk])).content.decode()
    assert "60 min" in page
    assert "under your 30 min" not in page
