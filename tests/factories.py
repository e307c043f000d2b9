"""factory_boy factories: the smallest valid objects, with names that say what they are."""

import datetime as dt
import itertools
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from capacity.models import Circuit, EnergizationPhase, PowerFeed, Rack, Reservation, Site, Slot
from hosting.models import Contract, Machine, MachineModel, Membership, Tenant

PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class SiteFactory(DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"site-{n}")
    name = factory.LazyAttribute(lambda s: s.slug.replace("-", " ").title())
    country = "US"
    region = "Texas"
    timezone = "UTC"
    pue = Decimal("1.00")


class PhaseFactory(DjangoModelFactory):
    class Meta:
        model = EnergizationPhase

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Phase {n}")
    energized_on = dt.date(2021, 1, 1)
    mw = Decimal("10")


class FeedFactory(DjangoModelFactory):
    class Meta:
        model = PowerFeed

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"T{n}")
    rating_kva = 2500


class CircuitFactory(DjangoModelFactory):
    class Meta:
        model = Circuit

    feed = factory.SubFactory(FeedFactory)
    name = factory.Sequence(lambda n: f"C{n}")
    voltage_v = 240
    phases = 1
    breaker_amps = 30
    power_factor = Decimal("1.00")


class RackFactory(DjangoModelFactory):
    class Meta:
        model = Rack

    site = factory.SubFactory(SiteFactory)
    feed = factory.SubFactory(FeedFactory, site=factory.SelfAttribute("..site"))
    row = "A"
    name = factory.Sequence(lambda n: f"R{n:03d}")


class SlotFactory(DjangoModelFactory):
    class Meta:
        model = Slot

    rack = factory.SubFactory(RackFactory)
    position = factory.Sequence(lambda n: n + 1)
    circuit = factory.SubFactory(CircuitFactory, feed=factory.SelfAttribute("..rack.feed"))


class ReservationFactory(DjangoModelFactory):
    """Writes a row directly: for arranging a test's world, never for code under test."""

    class Meta:
        model = Reservation

    site = factory.SubFactory(SiteFactory)
    it_kw = Decimal("1000")
    starts_on = dt.date(2021, 1, 1)
    ends_on = None
    kind = Reservation.Kind.FIRM
    reference = factory.Sequence(lambda n: f"test:{n}")


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    contact_email = factory.LazyAttribute(lambda t: f"ops@{t.slug}.example.com")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)


def machine_model(slug: str = "antminer-s19") -> MachineModel:
    """A catalog entry seeded by migration hosting.0002."""
    return MachineModel.objects.get(slug=slug)


class ContractFactory(DjangoModelFactory):
    class Meta:
        model = Contract

    tenant = factory.SubFactory(TenantFactory)
    site = factory.SubFactory(SiteFactory)
    it_kw = Decimal("100")
    machine_count = 30
    rate_usd_per_kwh = Decimal("0.06500")
    starts_on = dt.date(2021, 7, 1)
    ends_on = dt.date(2022, 7, 1)


class MachineFactory(DjangoModelFactory):
    class Meta:
        model = Machine

    contract = factory.SubFactory(ContractFactory)
    tenant = factory.SelfAttribute("contract.tenant")
    model = factory.LazyFunction(machine_model)
    serial = factory.Sequence(lambda n: f"SN{n:08d}")
    mac = factory.Sequence(lambda n: f"02:00:00:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}")


_RACKED_IPS = itertools.count(1)


def racked(floor, n: int, circuit: int = 0, **fields):
    """n machines racked (not yet commissioned) on one of a `floor` fixture's circuits, each
    given an IP on the site's network when racked (as staff do), unless `ip` is in `fields`."""
    from hosting import services
    from hosting.lifecycle import MachineStatus

    slots = [s for s in floor["slots"] if s.circuit_id == floor["circuits"][circuit].pk and s.occupant is None]
    machines = []
    for slot in slots[:n]:
        ip = fields.pop("ip", None) if "ip" in fields else _next_ip()
        machine = MachineFactory(contract=floor["contract"], status=MachineStatus.RECEIVED, **fields)
        machines.append(services.rack_machine(machine, slot, commission=False, ip=ip))
        slot.refresh_from_db()
    return machines


def _next_ip() -> str:
    n = next(_RACKED_IPS)
    return f"10.{200 + n // 65025 % 50}.{n // 255 % 255 + 1}.{n % 255 + 1}"  # never .0 or .255
