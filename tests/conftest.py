import os

import pytest


def pytest_configure(config):
    # CI must prove the PostgreSQL-only behaviour (row locks, races), never skip it.
    from django.conf import settings

    if os.environ.get("CI") == "true" and "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        raise pytest.UsageError("CI=true but DATABASE_URL is not PostgreSQL: the race tests would be skipped")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # A transactional test flushes every table when it ends, the migration-seeded catalog
    # too; with --reuse-db that empty state would outlive the run. Put the catalog back.
    with django_db_blocker.unblock():
        from hosting import catalog
        from hosting.models import MachineModel

        catalog.load(MachineModel)


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL row locks (set DATABASE_URL=postgres://…); SQLite serialises")
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
    from django.core.cache import cache

    from capacity import ledger, planner

    ledger.forget_cached()
    planner.forget_cached()
    cache.clear()
    yield
    ledger.forget_cached()
    planner.forget_cached()
