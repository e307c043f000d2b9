import pytest

from hosting.models import Role
from hosting.webhooks import services
from tests.factories import MembershipFactory, StaffFactory, TenantFactory
from tests.webhooks.receiver import running_receiver


@pytest.fixture
def receiver():
    with running_receiver() as r:
        yield r


@pytest.fixture
def published(monkeypatch):
    """Delivery tasks the services would send (the broker is not needed: tests attempt them)."""
    sent: list[int] = []
    monkeypatch.setattr(services, "publish", lambda ids: sent.extend(ids) or len(ids))
    monkeypatch.setattr(services, "_publish_later", lambda pk, countdown: sent.append(pk))
    return sent


@pytest.fixture
def owner(db):
    return MembershipFactory(role=Role.OWNER).user


@pytest.fixture
def viewer(owner):
    return MembershipFactory(tenant=owner.tenants.get(), role=Role.VIEWER).user


@pytest.fixture
def stranger(db):
    """The owner of another tenant."""
    return MembershipFactory(tenant=TenantFactory(), role=Role.OWNER).user


@pytest.fixture
def staff(db):
    return StaffFactory()
