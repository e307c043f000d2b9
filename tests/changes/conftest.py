import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from tests.factories import MembershipFactory, StaffFactory


def entries_of(obj, **filters):
    """The change log of one object, oldest first."""
    content_type = ContentType.objects.get_for_model(type(obj))
    return list(LogEntry.objects.filter(content_type=content_type, object_id=obj.pk, **filters).order_by("pk"))


def last_of(obj) -> LogEntry:
    return entries_of(obj)[-1]


@pytest.fixture
def staff(db):
    return StaffFactory(username="ops")


@pytest.fixture
def tenant_user(floor):
    return MembershipFactory(tenant=floor["contract"].tenant).user
