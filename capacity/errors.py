"""Refusals: what the capacity rules (and the rules built on them) say when they say no.

`Refusal` is the one base class of every refusal in Haven: each carries a stable `code`
and a message in the user's units, and each face (the API's error handler, the portal,
the admin) catches it once. The capacity ledger's own refusals follow.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError


def describe(exc: Refusal | ValidationError) -> str:
    """A refusal or a validation error as one line for people (admin messages, the portal)."""
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


class Refusal(Exception):
    """A request the domain refuses in its current state; the message says why."""

    code = "refused"

    def details(self) -> dict:
        """Machine-readable particulars the API adds to its error body (e.g. a shortfall)."""
        return {}


def fmt_kw(value: Decimal) -> str:
    """kW for people: thousands separated, no trailing zeros (10,000 kW; 0.5 kW)."""
    return f"{value:,.3f}".rstrip("0").rstrip(".") + " kW"


class LedgerError(Refusal):
    """A booking or change was refused; the message says why, in the user's units."""

    code = "ledger_error"


class InsufficientCapacity(LedgerError):
    code = "insufficient_capacity"

    def __init__(
        self,
        *,
        site: str,
        requested_kw: Decimal,
        starts_on: dt.date,
        available_kw: Decimal,
        short_kw: Decimal,
        short_from: dt.date,
        fits_from: dt.date | None,
    ):
        self.site = site
        self.requested_kw = requested_kw
        self.starts_on = starts_on
        self.available_kw = available_kw
        self.short_kw = short_kw
        self.short_from = short_from
        self.fits_from = fits_from
        later = f"the whole term fits from {fits_from}" if fits_from else "it does not fit at any later date either"
        super().__init__(
            f"{site}: {fmt_kw(requested_kw)} requested from {starts_on} but at most {fmt_kw(available_kw)} is free "
            f"over the term; {fmt_kw(short_kw)} short from {short_from}; {later}."
        )

    def details(self) -> dict:
        return {
            "shortfall": {
                "site": self.site,
                "requested_kw": str(self.requested_kw),
                "available_kw": str(self.available_kw),
                "short_kw": str(self.short_kw),
                "short_from": self.short_from.isoformat(),
                "fits_from": self.fits_from.isoformat() if self.fits_from else None,
            }
        }


class OverBudget(LedgerError):
    code = "over_budget"

    def __init__(self, *, site: str, short_kw: Decimal, short_from: dt.date):
        self.site = site
        self.short_kw = short_kw
        self.short_from = short_from
        super().__init__(
            f"{site}: this change would leave reservations {fmt_kw(short_kw)} of IT over the energized budget "
            f"from {short_from}; release or move reservations first."
        )


class CircuitOverloaded(LedgerError):
    code = "circuit_overloaded"

    def __init__(self, *, circuit: str, load_w: int, requested_w: int, usable_w: int):
        self.circuit = circuit
        self.load_w = load_w
        self.requested_w = requested_w
        self.usable_w = usable_w
        self.short_w = load_w + requested_w - usable_w
        super().__init__(
            f"circuit {circuit}: {load_w} W allocated + {requested_w} W requested exceeds its {usable_w} W "
            f"usable (80 % continuous-load limit) by {self.short_w} W."
        )


class FeedOverloaded(LedgerError):
    code = "feed_overloaded"

    def __init__(self, *, feed: str, load_va: Decimal, requested_va: Decimal, rating_va: int):
        self.feed = feed
        self.load_va = load_va
        self.requested_va = requested_va
        self.rating_va = rating_va
        super().__init__(
            f"feed {feed}: {load_va:.0f} VA allocated + {requested_va:.0f} VA requested exceeds its "
            f"{rating_va / 1000:g} kVA rating."
        )


class SlotOccupied(LedgerError):
    code = "slot_occupied"


class ReferenceConflict(LedgerError):
    code = "reference_conflict"
