"""A path the API does not have, or a method an endpoint does not have, answers in the API's error shape."""

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/quotes/x/y/", "/api/v1/sites/texas/nope/", "/api/v1/nope"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_api_path_is_a_json_404(anon, path, method):
    response = getattr(anon, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": f"The API has no endpoint at {path}."}


def test_a_known_path_without_its_slash_is_still_redirected_for_reading(anon):
    response = anon.get("/api/v1/sites?country=US")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/sites/?country=US"


def test_a_known_path_without_its_slash_says_which_path_was_meant_for_a_write(anon):
    response = anon.post("/api/v1/quotes", {}, format="json")
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "The API has no endpoint at /api/v1/quotes; did you mean /api/v1/quotes/?",
    }


def test_the_api_root_and_real_endpoints_are_untouched(anon, tenant_api):
    assert tenant_api.get("/api/v1/").status_code == 200
    assert anon.get("/api/v1/sites/").status_code == 200
    assert anon.get("/api/v1/sites/atlantis/").json() == {"code": "not_found", "message": "Not found."}


def test_the_favicon_redirects_to_a_small_icon_among_the_static_files(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/haven/favicon.ico"  # hashed once collected: tests/test_settings.py
    icon = Path(finders.find("haven/favicon.ico")).read_bytes()
    assert icon[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert len(icon) < 2048


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("patch", "/api/v1/sites/texas/", "GET, HEAD, OPTIONS"),
        ("delete", "/api/v1/quotes/", "GET, POST, HEAD, OPTIONS"),
        ("put", "/api/v1/machines/1/commission/", "POST, OPTIONS"),
    ],
)
def test_a_method_an_endpoint_does_not_have_is_405_saying_which_it_has(staff_api, two_sites, method, path, allowed):
    response = getattr(staff_api, method)(path)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json()["code"] == "method_not_allowed"
