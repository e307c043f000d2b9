"""Bad input anywhere in the API is a client error in the API's error shape, never a 500."""

import datetime as dt
import json
import uuid

import pytest

from hosting.api.parsers import MAX_JSON_DEPTH
from hosting.models import Quote
from tests.api.conftest import TODAY
from tests.factories import ContractFactory, MachineFactory

pytestmark = pytest.mark.django_db

START = (TODAY + dt.timedelta(days=30)).isoformat()


def nested(depth: int, leaf: str = "1") -> str:
    return '{"machines": ' + "[" * depth + leaf + "]" * depth + "}"


@pytest.fixture
def json_endpoints(two_sites, staff_api):
    """Every API operation that reads a JSON body, with something real behind its URL."""
    quote = staff_api.post(
        "/api/v1/quotes/", {"it_kw": "10", "start_on": START, "term_months": 12}, format="json"
    ).json()
    return [
        "/api/v1/quotes/",
        f"/api/v1/quotes/{quote['id']}/accept/",
        "/api/v1/contracts/",
        "/api/v1/commissioning/batches/",
    ]


def test_deeply_nested_json_is_a_parse_error_on_every_json_endpoint(json_endpoints, staff_api):
    body = "[" * 2000 + "]" * 2000  # 4 KB: deeper than Python's recursion limit
    for url in json_endpoints:
        response = staff_api.post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content)
        assert response.json() == {
            "code": "parse_error",
            "message": f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.",
        }


def test_nesting_is_refused_past_the_limit_and_read_up_to_it(json_endpoints, staff_api):
    too_deep = staff_api.post("/api/v1/commissioning/batches/", nested(MAX_JSON_DEPTH), content_type="application/json")
    assert too_deep.status_code == 400
    assert too_deep.json()["code"] == "parse_error"
    # one level less is read, and refused by the serializer for what it says, not how deep it is
    deepest = staff_api.post(
        "/api/v1/commissioning/batches/", nested(MAX_JSON_DEPTH - 1), content_type="application/json"
    )
    assert deepest.status_code == 400
    assert deepest.json()["code"] == "invalid"


def test_brackets_inside_strings_do_not_count_as_nesting(staff_api, floor):
    body = json.dumps({"contract": floor["contract"].pk, "label": "[{" * 100})
    response = staff_api.post("/api/v1/commissioning/batches/", body, content_type="application/json")
    assert response.status_code == 400  # read: the contract simply has nothing racked
    assert "contract" in response.json()["errors"]


def test_an_escaped_quote_does_not_end_a_string(staff_api, floor):
    body = json.dumps({"contract": floor["contract"].pk, "label": 'a" ' + "[" * 40})
    assert r"a\" [[[" in body  # an escaped quote, then brackets still inside the string
    response = staff_api.post("/api/v1/commissioning/batches/", body, content_type="application/json")
    assert response.json()["code"] == "invalid"


def test_an_email_address_too_long_for_the_database_is_a_field_error(anon, two_sites):
    body = {"it_kw": "10", "start_on": START, "term_months": 12, "contact_email": "a" * 250 + "@example.com"}
    response = anon.post("/api/v1/quotes/", body, format="json")
    assert response.status_code == 400
    assert "contact_email" in response.json()["errors"]
    assert not Quote.objects.exists()


@pytest.mark.parametrize("quote_id", ["xyz", str(uuid.uuid4()), "1"])
def test_accepting_a_malformed_or_unknown_quote_id_is_404_like_reading_it(tenant_api, two_sites, quote_id):
    read = tenant_api.get(f"/api/v1/quotes/{quote_id}/")
    accept = tenant_api.post(f"/api/v1/quotes/{quote_id}/accept/", {"site": "texas"}, format="json")
    assert (read.status_code, accept.status_code) == (404, 404)
    assert accept.json() == read.json() == {"code": "not_found", "message": "Not found."}


def test_machines_of_a_batch_must_be_ids(staff_api, floor):
    machine = MachineFactory(contract=ContractFactory())
    for machines in (["x"], [2**63], [machine.pk, None]):
        response = staff_api.post("/api/v1/commissioning/batches/", {"machines": machines}, format="json")
        assert response.status_code == 400, machines
        assert "machines" in response.json()["errors"]
