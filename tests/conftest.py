import os

import pytest


def pytest_configure(config):
    # CI must prove the PostgreSQL-only behaviour (row locks, races, COPY), never skip it.
    from django.conf import settings

    if os.environ.get("CI") == "true" and "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        raise pytest.UsageError("CI=true but DATABASE_URL is not PostgreSQL: the race tests would be skipped")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # A transactional test flushes every table when it ends, the migration-seeded catalog
    # too; with --reuse-db that empty state would outlive the run. Put the catalog back.
    with django_db_blocker.unblock():
        from django.db import connection

        from hosting import catalog
        from hosting.models import MachineModel

        catalog.load(MachineModel)
        # What transactional tests restore (serialized_rollback) must include it too.
        connection._test_serialized_contents = connection.creation.serialize_db_to_string()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    # Browser tests last: Playwright's sync API keeps an event loop running in the main
    # thread until the session ends, and tests that call asyncio.run() must come before.
    items.sort(key=lambda item: "tests/browser/" in str(item.path))
    _skip_postgres_only(items)


def _skip_postgres_only(items):
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks, COPY): set DATABASE_URL=postgres://…")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # PBKDF2's deliberate slowness is for production logins, not for test fixtures.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Production's hashed static names need `collectstatic`; tests read the apps' folders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_caches():
    # Each test rolls the database back; caches keyed by row versions must go with it.
    from django.contrib.contenttypes.models import ContentType
    from django.core.cache import cache

    from capacity import ledger, planner

    ledger.forget_cached()
    planner.forget_cached()
    cache.clear()
    # A transactional test's flush and reload can give content types new ids: the change log's
    # entries must not point at ids cached before it.
    ContentType.objects.clear_cache()
    yield
    ledger.forget_cached()
    planner.forget_cached()


@pytest.fixture
def floor(db):
    """A site with one rack and two 415 V 100 A three-phase circuits at PF 0.95 (54,628 W
    usable: 16 S19s each), and a contract there."""
    from decimal import Decimal

    from tests.factories import CircuitFactory, ContractFactory, RackFactory, SlotFactory

    rack = RackFactory()
    circuits = [
        CircuitFactory(feed=rack.feed, voltage_v=415, phases=3, breaker_amps=100, power_factor=Decimal("0.95"))
        for _ in range(2)
    ]
    slots = [
        SlotFactory(rack=rack, circuit=c, position=i * 16 + n + 1) for i, c in enumerate(circuits) for n in range(16)
    ]
    contract = ContractFactory(site=rack.site)
    return {"site": rack.site, "rack": rack, "circuits": circuits, "slots": slots, "contract": contract}
