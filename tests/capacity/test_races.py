"""Real races on PostgreSQL: many threads, each with its own connection, booking at once
(tests/races.py releases them together); without the ledger's row locks several would
read the same headroom and all book it.
"""

import datetime as dt
from decimal import Decimal

import pytest

from capacity import errors, ledger
from capacity.models import Circuit, Slot
from tests.factories import CircuitFactory, PhaseFactory, RackFactory, SiteFactory, SlotFactory
from tests.races import race

# serialized_rollback: the flush after a transactional test would also wipe the catalog that
# migration hosting.0002 seeds; this puts it back for the tests that follow.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

THREADS = 24


def test_concurrent_reservations_never_push_a_site_over_budget():
    # 10 MW at PUE 1.25 carries 8,000 kW of IT: room for exactly 8 bookings of 1,000 kW.
    site = SiteFactory(pue=Decimal("1.25"))
    PhaseFactory(site=site, energized_on=dt.date(2021, 1, 1), mw=Decimal("10"))

    def book(i):
        return ledger.reserve(
            site.pk,
            it_kw=Decimal("1000"),
            starts_on=dt.date(2021, 7, 1),
            ends_on=dt.date(2022, 7, 1),
            kind="firm",
            reference=f"contract:{i}",
        )

    wins, losses = race(THREADS, book)
    assert len(wins) == 8
    assert all(isinstance(e, errors.InsufficientCapacity) for e in losses)
    book_now = ledger.load_book(site)
    assert book_now.committed_kw(dt.date(2021, 7, 1)) == Decimal("8000")
    assert book_now.over_budget(dt.date(2021, 1, 1)) is None


def test_concurrent_holds_and_firm_bookings_of_different_sizes_stay_within_budget():
    site = SiteFactory(pue=Decimal("1.00"))
    PhaseFactory(site=site, energized_on=dt.date(2021, 1, 1), mw=Decimal("5"))
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)

    def book(i):
        return ledger.reserve(
            site.pk,
            it_kw=Decimal(300 + 100 * (i % 5)),
            starts_on=dt.date(2021, 7, 1),
            ends_on=None,
            kind="hold" if i % 2 else "firm",
            expires_at=expires if i % 2 else None,
            reference=f"r:{i}",
        )

    wins, _ = race(THREADS, book)
    assert wins
    assert ledger.load_book(site).over_budget(dt.date(2021, 1, 1)) is None


def test_concurrent_slot_assignments_never_overload_a_circuit():
    # A 240 V 30 A single-phase circuit: 5,760 W usable, room for exactly 4 machines of 1,440 W.
    rack = RackFactory()
    circuit = CircuitFactory(feed=rack.feed)
    slots = [SlotFactory(rack=rack, circuit=circuit, position=i + 1) for i in range(THREADS)]

    def assign(i):
        return ledger.assign_slot(slots[i].pk, watts=1_440, occupant=f"machine:{i}")

    wins, losses = race(THREADS, assign)
    assert len(wins) == 4
    assert all(isinstance(e, errors.CircuitOverloaded) for e in losses)
    assert Circuit.objects.with_load().get(pk=circuit.pk).load_w == 5_760


def test_concurrent_claims_of_one_slot_leave_one_occupant():
    slot = SlotFactory()

    def claim(i):
        return ledger.assign_slot(slot.pk, watts=100, occupant=f"machine:{i}")

    wins, losses = race(THREADS, claim)
    assert len(wins) == 1
    assert all(isinstance(e, errors.SlotOccupied) for e in losses)
    assert Slot.objects.get(pk=slot.pk).occupant == wins[0].occupant
