"""/metrics: Prometheus text for a staff token or an allowed address, refused otherwise;
the figures per site are those of the latest finished poll."""

import datetime as dt

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from hosting.models import ApiToken
from hosting.telemetry.models import Alert, AlertKind, PollRun
from tests.factories import MembershipFactory, StaffFactory
from tests.telemetry.views_data import another_floor, live, write_day

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(floor):
    machines = live(floor, 3)
    end = timezone.now().replace(second=0, microsecond=0)
    write_day(machines, end=end, count=6, state=lambda m, i: "unreachable" if m == machines[2] else "hashing")
    Alert.objects.create(kind=AlertKind.OFFLINE, site=floor["site"], machine=machines[2], tenant=machines[2].tenant,
                         opened_at=end, last_seen_at=end, message="offline")  # fmt: skip
    return {**floor, "machines": machines, "end": end}


def samples(body: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("site", "")): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def token(user) -> str:
    return ApiToken.issue(user, "prometheus")[1]


def test_a_staff_token_reads_each_sites_figures(client, fleet, settings, django_assert_max_num_queries):
    settings.METRICS_ALLOWED_IPS = []
    key = token(StaffFactory())
    with django_assert_max_num_queries(9):
        response = client.get("/metrics", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    got = samples(response.content.decode())
    slug = fleet["site"].slug
    assert got["haven_site_live_machines", slug] == 3
    assert got["haven_site_reachable_machines", slug] == 2
    assert got["haven_site_hashrate_ths", slug] == pytest.approx(190.0)
    assert got["haven_site_measured_power_kw", slug] == pytest.approx(6.5)
    assert got["haven_site_open_alerts", slug] == 1
    assert got["haven_site_poll_windows_written", slug] == 3
    # The latest poll finished at `end` (its window started 5 minutes before).
    assert got["haven_site_poll_lag_seconds", slug] == pytest.approx(
        (timezone.now() - fleet["end"]).total_seconds(), abs=60
    )


def test_the_queries_do_not_grow_with_sites_and_machines(client, fleet, settings, django_assert_max_num_queries):
    other = another_floor(5)
    write_day(live(other, 5), end=fleet["end"], count=2)
    PollRun.objects.filter(site=other["site"]).update(finished_at=fleet["end"] - dt.timedelta(minutes=1))
    with django_assert_max_num_queries(9):
        got = samples(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    assert got["haven_site_live_machines", other["site"].slug] == 5


def test_an_address_on_the_allow_list_needs_no_token(client, fleet, settings):
    settings.METRICS_ALLOWED_IPS = ["10.9.8.7"]
    assert client.get("/metrics", REMOTE_ADDR="10.9.8.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.9.8.8").status_code == 403


@pytest.mark.parametrize("who", ["tenant", "revoked", "wrong", "none"])
def test_anyone_else_is_refused(client, fleet, settings, who):
    settings.METRICS_ALLOWED_IPS = []
    headers = {}
    if who == "tenant":
        headers = {"Authorization": f"Token {token(MembershipFactory().user)}"}
    elif who == "revoked":
        key = token(StaffFactory())
        ApiToken.objects.update(revoked_at=timezone.now())
        headers = {"Authorization": f"Token {key}"}
    elif who == "wrong":
        headers = {"Authorization": "Token not-a-key"}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 403
    assert b"haven_site" not in response.content


def test_the_default_allow_list_is_the_local_host(client, fleet):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
