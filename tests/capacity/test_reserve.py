"""Booking site power through the ledger: the budget holds, refusals say why, bad input changes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from capacity import errors, ledger
from capacity.models import EnergizationPhase, Reservation, Site
from tests.factories import PhaseFactory, ReservationFactory, SiteFactory

pytestmark = pytest.mark.django_db

D = Decimal
NOW = dt.datetime(2021, 6, 15, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@pytest.fixture
def siberia():
    """125 MW now and +500 MW on 2022-01-01, PUE 1.25: 100 MW of IT today, 500 MW from 2022."""
    site = SiteFactory(slug="siberia", pue=D("1.25"))
    PhaseFactory(site=site, name="Phase 1", energized_on=day("2021-01-01"), mw=D("125"))
    PhaseFactory(site=site, name="Phase 2", energized_on=day("2022-01-01"), mw=D("500"))
    return site


def firm(site, kw, starts="2021-07-01", ends=None, ref="contract:1"):
    return ledger.reserve(
        site,
        it_kw=D(kw),
        starts_on=day(starts),
        ends_on=day(ends) if ends else None,
        kind="firm",
        reference=ref,
        now=NOW,
    )


def test_a_booking_within_budget_is_recorded(siberia):
    reservation = firm(siberia, "60000", ends="2022-07-01")
    assert reservation.pk is not None
    book = ledger.load_book(siberia, NOW)
    assert book.committed_kw(day("2021-07-01")) == D("60000")
    assert book.headroom_kw(day("2021-07-01")) == D("40000")  # 125 MW / 1.25 − 60 MW


def test_a_booking_past_the_budget_is_refused_with_the_shortfall_and_when_it_would_fit(siberia):
    firm(siberia, "60000", ref="contract:1")
    with pytest.raises(errors.InsufficientCapacity) as refused:
        firm(siberia, "50000", starts="2021-07-01", ends="2022-07-01", ref="contract:2")
    error = refused.value
    assert error.short_kw == D("10000")
    assert error.short_from == day("2021-07-01")
    assert error.available_kw == D("40000")
    assert error.fits_from == day("2022-01-01")  # when phase 2 energizes
    assert "10,000 kW short from 2021-07-01" in str(error)
    assert "fits from 2022-01-01" in str(error)
    assert Reservation.objects.count() == 1


def test_exactly_the_remaining_headroom_fits_and_a_watt_more_does_not(siberia):
    firm(siberia, "99999.999", ref="a")
    with pytest.raises(errors.InsufficientCapacity):
        firm(siberia, "0.002", ref="b")
    firm(siberia, "0.001", ref="c")
    assert ledger.load_book(siberia, NOW).headroom_kw(day("2021-07-01")) == 0


def test_a_booking_that_only_fits_after_the_next_phase_fits_from_then(siberia):
    firm(siberia, "400000", starts="2022-01-01", ref="big")
    assert ledger.load_book(siberia, NOW).headroom_kw(day("2022-01-01")) == D("100000")


def test_overlapping_reservations_only_add_up_where_they_overlap(siberia):
    firm(siberia, "60000", starts="2021-07-01", ends="2021-10-01", ref="summer")
    firm(siberia, "60000", starts="2021-10-01", ends="2022-01-01", ref="autumn")  # back-to-back fits
    with pytest.raises(errors.InsufficientCapacity) as refused:
        firm(siberia, "50000", starts="2021-09-01", ends="2021-11-01", ref="straddles")
    assert refused.value.short_from == day("2021-09-01")
    assert refused.value.fits_from == day("2022-01-01")


def test_open_ended_reservations_count_forever(siberia):
    firm(siberia, "100000", starts="2021-07-01", ref="forever")
    with pytest.raises(errors.InsufficientCapacity) as refused:
        firm(siberia, "1", starts="2021-08-01", ends="2021-09-01", ref="late")
    assert refused.value.fits_from == day("2022-01-01")


def test_asking_again_under_the_same_reference_returns_the_same_booking(siberia):
    first = firm(siberia, "1000", ref="quote:abc")
    again = firm(siberia, "1000", ref="quote:abc")
    assert again.pk == first.pk
    assert Reservation.objects.count() == 1
    with pytest.raises(errors.ReferenceConflict):
        firm(siberia, "2000", ref="quote:abc")


def test_a_reference_books_once_whichever_site_it_asks(siberia):
    texas = SiteFactory(slug="texas")
    PhaseFactory(site=texas, energized_on=day("2021-01-01"), mw=D("10"))
    firm(siberia, "1000", ref="quote:tabs")
    with pytest.raises(errors.ReferenceConflict):
        firm(texas, "1000", ref="quote:tabs")  # the same quote held at a second site
    assert Reservation.objects.filter(reference="quote:tabs").count() == 1


def test_the_database_keeps_one_unreleased_reservation_per_reference(siberia):
    ReservationFactory(site=siberia, reference="contract:7")
    with pytest.raises(IntegrityError), transaction.atomic():
        ReservationFactory(site=siberia, reference="contract:7")
    ReservationFactory(site=siberia, reference="contract:8", released_at=NOW)
    ReservationFactory(site=siberia, reference="contract:8")  # released ones are history


# --- holds ----------------------------------------------------------------------------


def hold(site, kw, expires_at, ref="quote:1", now=NOW):
    return ledger.reserve(
        site,
        it_kw=D(kw),
        starts_on=day("2021-07-01"),
        ends_on=day("2022-07-01"),
        kind="hold",
        expires_at=expires_at,
        reference=ref,
        now=now,
    )


def test_a_hold_counts_until_it_expires_then_frees_its_power(siberia):
    expires = NOW + dt.timedelta(hours=72)
    hold(siberia, "100000", expires)
    with pytest.raises(errors.InsufficientCapacity):
        firm(siberia, "1", ref="blocked")
    # One second after expiry the same request succeeds, with no clean-up job in between.
    later = expires + dt.timedelta(seconds=1)
    ledger.reserve(
        siberia, it_kw=D("1"), starts_on=day("2021-07-01"), ends_on=None, kind="firm", reference="x", now=later
    )
    assert ledger.load_book(siberia, later).committed_kw(day("2021-07-01")) == D("1")
    assert ledger.load_book(siberia, NOW).committed_kw(day("2021-07-01")) == D("100001")  # seen before expiry


def test_an_expired_hold_gives_its_reference_back_to_a_new_booking(siberia):
    old = hold(siberia, "1000", NOW + dt.timedelta(hours=1), ref="quote:again")
    later = NOW + dt.timedelta(hours=2)
    new = hold(siberia, "1000", later + dt.timedelta(hours=72), ref="quote:again", now=later)
    assert new.pk != old.pk
    old.refresh_from_db()
    assert old.released_at == later


def test_firming_up_a_live_hold_keeps_its_place(siberia):
    held = hold(siberia, "100000", NOW + dt.timedelta(hours=1))
    firmed = ledger.firm_up(held, reference="contract:9", now=NOW + dt.timedelta(minutes=30))
    assert (firmed.kind, firmed.expires_at, firmed.reference) == ("firm", None, "contract:9")
    far_future = NOW + dt.timedelta(days=365)
    assert ledger.load_book(siberia, far_future).committed_kw(day("2021-07-01")) == D("100000")


def test_firming_up_an_expired_hold_rebooks_it_and_is_refused_if_the_power_went_meanwhile(siberia):
    held = hold(siberia, "60000", NOW + dt.timedelta(hours=1))
    after = NOW + dt.timedelta(hours=2)
    ledger.reserve(
        siberia, it_kw=D("50000"), starts_on=day("2021-07-01"), ends_on=None, kind="firm", reference="y", now=after
    )
    with pytest.raises(errors.InsufficientCapacity):
        ledger.firm_up(held, now=after)
    held.refresh_from_db()
    assert held.kind == "hold"


def test_a_released_reservation_stops_counting(siberia):
    booked = firm(siberia, "100000")
    ledger.release(booked, now=NOW)
    ledger.release(booked, now=NOW + dt.timedelta(days=1))  # harmless twice
    booked.refresh_from_db()
    assert booked.released_at == NOW
    firm(siberia, "100000", ref="next")


# --- bad input changes nothing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"it_kw": D("0")}, "it_kw"),
        ({"it_kw": D("-5")}, "it_kw"),
        ({"it_kw": D("NaN")}, "it_kw"),
        ({"ends_on": day("2021-06-30")}, "ends_on"),  # before it starts
        ({"ends_on": day("2021-07-01")}, "ends_on"),  # zero days
        ({"kind": "hold"}, "expires_at"),  # a hold without expiry
        ({"kind": "hold", "expires_at": NOW - dt.timedelta(seconds=1)}, "expires_at"),
        ({"expires_at": NOW + dt.timedelta(days=1)}, "expires_at"),  # firm with expiry
        ({"kind": "maybe"}, "kind"),
    ],
)
def test_malformed_bookings_are_refused_with_the_field_at_fault(siberia, changes, field):
    request = {
        "it_kw": D("10"),
        "starts_on": day("2021-07-01"),
        "ends_on": None,
        "kind": "firm",
        "reference": "r",
        "now": NOW,
        **changes,
    }
    with pytest.raises(ValidationError) as refused:
        ledger.reserve(siberia, **request)
    assert field in refused.value.message_dict
    assert Reservation.objects.count() == 0


def test_database_constraints_back_the_rules_up(siberia):
    with pytest.raises(IntegrityError), transaction.atomic():
        ReservationFactory(site=siberia, it_kw=D("0"))
    with pytest.raises(IntegrityError), transaction.atomic():
        ReservationFactory(site=siberia, starts_on=day("2021-07-01"), ends_on=day("2021-07-01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        ReservationFactory(site=siberia, kind="hold", expires_at=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        EnergizationPhase.objects.create(site=siberia, name="zero", energized_on=TODAY, mw=D("0"))
    with pytest.raises(IntegrityError), transaction.atomic():
        EnergizationPhase.objects.create(site=siberia, name="Phase 1", energized_on=TODAY, mw=D("1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Site.objects.filter(pk=siberia.pk).update(pue=D("0.99"))


# --- changes to what the budget is made of ---------------------------------------------------


def test_a_pue_rise_that_would_strand_reservations_is_refused(siberia):
    firm(siberia, "90000")  # 90 MW IT × 1.25 = 112.5 MW of 125
    siberia.pue = D("1.40")  # 90 × 1.4 = 126 MW > 125
    with pytest.raises(errors.OverBudget) as refused:
        ledger.save_site(siberia, now=NOW)
    assert refused.value.short_kw == D("714.286")  # 90 000 − 125 000 / 1.4 = 714.2857…, to the watt
    assert Site.objects.get(pk=siberia.pk).pue == D("1.25")
    siberia.pue = D("1.35")  # 121.5 MW fits
    ledger.save_site(siberia, now=NOW)
    assert Site.objects.get(pk=siberia.pk).pue == D("1.35")


def test_a_phase_cannot_be_cancelled_or_delayed_under_booked_reservations(siberia):
    firm(siberia, "300000", starts="2022-01-01", ref="needs-phase-2")
    phase2 = siberia.phases.get(name="Phase 2")
    with pytest.raises(errors.OverBudget):
        ledger.cancel_phase(phase2, now=NOW)
    phase2.energized_on = day("2022-03-01")
    with pytest.raises(errors.OverBudget) as refused:
        ledger.save_phase(phase2, now=NOW)
    assert refused.value.short_from == day("2022-01-01")
    assert siberia.phases.get(name="Phase 2").energized_on == day("2022-01-01")


def test_a_new_phase_raises_the_budget_from_its_date(siberia):
    ledger.save_phase(EnergizationPhase(site=siberia, name="Phase 3", energized_on=day("2023-01-01"), mw=D("1875")))
    book = ledger.load_book(siberia, NOW)
    assert book.budget_kw(day("2023-01-01")) == D("2500000")  # 2.5 GW
