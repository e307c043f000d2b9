"""The API docs (/api/v1/docs/) render in a real browser with no internet: Swagger UI and
its assets come from Haven's own static files, and every request stays on the server."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def operations() -> int:
    """How many operations the published schema has (each app adds its own)."""
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sum(1 for ops in paths.values() for method in ops if method in ("get", "post", "put", "patch", "delete"))


def test_the_api_docs_render_their_operations_from_local_files_only(live_server, page, shot):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.set_default_timeout(20_000)

    page.goto(f"{live_server.url}/api/v1/docs/")

    quotes = page.locator('.opblock-summary-path[data-path="/api/v1/quotes/"]')
    expect(quotes.first).to_be_visible()  # the schema was fetched, parsed and drawn
    expect(page.locator(".opblock")).to_have_count(operations())  # every operation of the schema
    quotes.first.click()  # an operation opens with its parameters and responses
    expect(page.locator(".opblock.is-open .responses-table").first).to_be_visible()
    shot("api-docs")

    server = urlsplit(live_server.url).netloc
    assert any(url.endswith("/api/v1/schema/") for url in requested)
    assert any("swagger-ui-bundle" in url for url in requested)
    elsewhere = [u for u in requested if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != server]
    assert not elsewhere, elsewhere
