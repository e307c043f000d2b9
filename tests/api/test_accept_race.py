"""Concurrent accepts racing for the last capacity, through the API, on PostgreSQL."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection

from capacity import ledger
from capacity.models import Reservation
from tests.api.conftest import TODAY, client_for, priced_site
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CLIENTS = 12


def test_concurrent_accepts_never_overbook_and_the_losers_get_409():
    # 10 MW site: quotes of 3 MW each — only three holds fit, whoever is first.
    site = priced_site("last-capacity", mw="10")
    start = (TODAY + dt.timedelta(days=30)).isoformat()
    apis, quote_ids = [], []
    for _ in range(CLIENTS):
        api = client_for(MembershipFactory().user)
        body = {"it_kw": "3000", "start_on": start, "term_months": 12}
        quote_ids.append(api.post("/api/v1/quotes/", body, format="json").json()["id"])
        apis.append(api)

    barrier = threading.Barrier(CLIENTS)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def accept(i):
        try:
            barrier.wait()
            response = apis[i].post(f"/api/v1/quotes/{quote_ids[i]}/accept/", {"site": site.slug}, format="json")
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    codes = sorted(code for code, _ in results)
    assert codes == [200] * 3 + [409] * (CLIENTS - 3)
    for code, body in results:
        if code == 409:
            assert body["code"] == "insufficient_capacity"
            assert body["shortfall"]["short_kw"] == "2000.000"  # 3 MW wanted, 1 MW left
    assert Reservation.objects.filter(kind="hold").count() == 3
    assert ledger.load_book(site).over_budget(TODAY) is None
    assert ledger.load_book(site).committed_kw(TODAY + dt.timedelta(days=30)) == Decimal("9000")
