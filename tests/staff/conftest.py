import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from hosting.commissioning import checks, pipeline, runs
from hosting.models import SelfTestRun
from hosting.readings import Board, Reading
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="ops", is_staff=True))
    return client


@pytest.fixture
def tenant_client(client):
    client.force_login(MembershipFactory().user)
    return client


def reading(chip_temp_c: float, *, at=None) -> Reading:
    """One burn-in sample: three boards, the hottest chip at `chip_temp_c`."""
    boards = tuple(Board(i, 31.0, 76, chip_temp_c - 2 * i, chip_temp_c - 10) for i in range(3))
    return Reading(at or timezone.now(), True, 95.0, boards, (5400,) * 4)


def commission(site_id: int, machines, temps: list[float], passed: list[bool], *, now=None) -> None:
    """Run a self-test of each machine to its verdict through the runs table, with one
    sample per machine at the given max chip temperature."""
    now = now or timezone.now()
    runs.request(machines, now=now)
    runs.dispatch(site_id, now=now)
    open_runs = SelfTestRun.objects.open().filter(machine__in=machines)
    token, claimed = runs.claim(list(open_runs.values_list("pk", flat=True)), now=now)
    run_of = {run.machine_id: run.pk for run in claimed}
    assert len(run_of) == len(machines), "every machine's run must be dispatched and claimed"
    results = [
        pipeline.Result(
            run_of[machine.pk],
            [checks.Outcome("thermal", ok, () if ok else ("chips too hot",), {"max_chip_temp_c": temp})],
            [reading(temp - 1, at=now), reading(temp, at=now + dt.timedelta(seconds=1))],
        )
        for machine, temp, ok in zip(machines, temps, passed, strict=True)
    ]
    runs.finish(results, token, now=now + dt.timedelta(seconds=2))


def kw(value) -> Decimal:
    return Decimal(str(value))


def svg_root(html: str, css_class: str):
    """The inline <svg class=css_class> of a page, parsed as XML (so it must be well-formed)."""
    import xml.etree.ElementTree as ET

    start = html.index("<svg", html.index(f'class="{css_class}"') - 400)
    end = html.index("</svg>", start) + len("</svg>")
    root = ET.fromstring(html[start:end])  # noqa: S314 - our own server-rendered markup
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert css_class in root.get("class", "")
    return root


def count_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)
