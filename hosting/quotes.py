"""Quotes: a request priced against every site's availability, then held, contracted or
waitlisted. Availability comes from the ledger's compiled timelines and the planner's
floors (cached, advisory); holds and contracts book through the ledger (locked, final).
"""

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from capacity import ledger, planner, power
from capacity.errors import fmt_kw
from capacity.models import EnergizationPhase, Reservation, Site
from hosting import pricing, services
from hosting.models import Contract, MachineModel, Quote, TermDiscount

log = logging.getLogger(__name__)


class QuoteRefused(services.ServiceError):
    """A quote cannot do what was asked (expired, already accepted elsewhere, …)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Demand:
    """What a quote asks for: IT kW as so many machines of so many watts, from a date, for a term."""

    it_kw: Decimal
    machines: int
    machine_w: int
    start_on: dt.date
    term_months: int

    @classmethod
    def of(cls, quote: Quote) -> "Demand":
        return cls(quote.it_kw, quote.machines, quote.machine_w, quote.start_on, quote.term_months)

    @property
    def term(self) -> relativedelta:
        return relativedelta(months=self.term_months)

    @property
    def horizon(self) -> dt.date:
        return self.start_on + relativedelta(months=settings.PLANNING_HORIZON_MONTHS)


# What one request may ask for; the API and the portal check the same limits.
MAX_MACHINES = 2_000_000  # more than the whole 2021 migration asked any single host for
MAX_IT_KW = Decimal("5000000")  # 5 GW
MAX_START_YEARS = 10
MAX_TERM_MONTHS = 120


def check_start_on(start_on: dt.date, today: dt.date) -> None:
    """ValueError, saying why, unless a quote may start on `start_on`."""
    if start_on < today:
        raise ValueError(f"The start date {start_on} is in the past (today is {today}).")
    if start_on.year > today.year + MAX_START_YEARS:
        raise ValueError(f"The start date is more than {MAX_START_YEARS} years away.")


def requested_it_kw(model, quantity: int) -> Decimal:
    """The IT kW asked for by `quantity` machines of `model` at nameplate; ValueError past MAX_IT_KW."""
    it_kw = Decimal(model.nameplate_power_w * quantity) / 1000
    if it_kw > MAX_IT_KW:
        raise ValueError(f"{quantity:,} machines exceed {MAX_IT_KW:,} kW.")
    return it_kw


def requested_kw(model: MachineModel | None, quantity: int | None, it_kw: Decimal | None) -> Decimal:
    """The IT kW a request asks for: `quantity` machines of `model` at nameplate, or `it_kw`.

    The one rule behind POST /api/v1/quotes/ and the portal's form, called once each field
    is valid on its own; ValidationError keyed by the field at fault (not-both is non-field)."""
    if it_kw is not None:
        if model is not None or quantity is not None:
            raise ValidationError("Give a machine model and a quantity, or IT kW — not both.")
        return it_kw
    missing = {}
    if model is None:
        missing["machine_model"] = "Give a machine model (or IT kW instead)."
    if quantity is None:
        missing["quantity"] = "Give how many machines (or IT kW instead)."
    if model is None or quantity is None:
        raise ValidationError(missing)
    try:
        return requested_it_kw(model, quantity)
    except ValueError as refused:
        raise ValidationError({"quantity": str(refused)}) from None


def candidate_sites() -> list[Site]:
    """Sites that can be quoted: priced and not closed."""
    sites = Site.objects.exclude(status=Site.Status.CLOSED).filter(pricing__isnull=False).select_related("pricing")
    return list(sites.order_by("slug"))


def matching(sites: list[Site], *, region: str = "", country: str = "", site: Site | None = None) -> list[Site]:
    """The sites a request's filters allow: one site, a country (ISO code), a region (by name)."""
    region = region.casefold()
    return [
        s
        for s in sites
        if (site is None or s.pk == site.pk)
        and (not country or str(s.country) == country.upper())  # a Country reads as its ISO code
        and (not region or region in s.region.casefold() or region in s.name.casefold())
    ]


@dataclass(frozen=True)
class PublicSite:
    """A site as prospects see it today: the row, and its figures of the day. Reads any other
    attribute from the site itself (serializers take it for the row)."""

    site: Site
    energized_mw_today: Decimal
    available_kw_today: Decimal
    list_rate: Decimal | None
    next_phase: EnergizationPhase | None

    def __getattr__(self, name: str):
        return getattr(self.site, name)


def public_sites(sites: Sequence[Site], now: dt.datetime | None = None) -> list[PublicSite]:
    """What prospects see of each site today: energized MW, free IT kW, list rate, next phase.

    Expects `pricing` selected and `phases` prefetched; reads the cached timelines.
    """
    now = now or timezone.now()
    timelines = ledger.availability(sites, now)
    out = []
    for site in sites:
        today = site.today(now)
        segment = timelines[site.pk].segment_on(today)
        pricing_row = getattr(site, "pricing", None)
        upcoming = [p for p in site.phases.all() if p.energized_on > today]
        out.append(
            PublicSite(
                site=site,
                energized_mw_today=segment.budget_kw / power.KW_PER_MW,
                available_kw_today=max(Decimal(0), segment.headroom_kw(site.pue)),
                list_rate=pricing_row.list_rate_usd_per_kwh if pricing_row else None,
                next_phase=min(upcoming, key=lambda p: p.energized_on) if upcoming else None,
            )
        )
    return out


@dataclass(frozen=True)
class Option:
    """One site's answer to a demand: from when, at what price, on how much of the floor."""

    site: Site
    available_from: dt.date
    rate_usd_per_kwh: Decimal
    monthly_usd: Decimal
    setup_usd: Decimal
    circuits: int
    slots: int
    slots_free_now: int

    def as_json(self, rank: int) -> dict:
        return {
            "rank": rank,
            "site": self.site.slug,
            "available_from": self.available_from.isoformat(),
            "rate_usd_per_kwh": str(self.rate_usd_per_kwh),
            "monthly_usd": str(self.monthly_usd),
            "setup_usd": str(self.setup_usd),
            "circuits": self.circuits,
            "slots": self.slots,
            "slots_free_now": self.slots_free_now,
        }


def term_discounts() -> list[tuple[int, Decimal]]:
    return list(TermDiscount.objects.values_list("min_term_months", "discount_pct"))


def price_options(
    demand: Demand,
    sites: list[Site],
    timelines: dict[int, power.Timeline],
    floors: dict[int, planner.Floor],
    discounts: list[tuple[int, Decimal]] | None = None,
) -> list[Option]:
    """One option per site that can take the whole term within the horizon, best first:
    the earliest date, then the lowest monthly price."""
    if discounts is None:
        discounts = term_discounts()
    pct = pricing.discount_pct(discounts, demand.term_months)
    term, horizon = demand.term, demand.horizon
    options = []
    for site in sites:
        timeline = timelines[site.pk]
        available_from = timeline.earliest_fit(demand.it_kw, max(demand.start_on, timeline.start), term, until=horizon)
        if available_from is None:
            continue
        rate = pricing.rate_usd_per_kwh(site.pricing.list_rate_usd_per_kwh, pct)
        floor = floors[site.pk]
        options.append(
            Option(
                site=site,
                available_from=available_from,
                rate_usd_per_kwh=rate,
                monthly_usd=pricing.monthly_usd(demand.it_kw, rate),
                setup_usd=pricing.setup_usd(demand.machines, site.pricing.setup_usd_per_machine),
                circuits=floor.circuits_for(demand.machine_w, demand.machines),
                slots=demand.machines,
                slots_free_now=min(demand.machines, floor.placeable(demand.machine_w)),
            )
        )
    options.sort(key=lambda o: (o.available_from, o.monthly_usd, o.site.slug))
    return options


def _priced(quote: Quote, options: list[Option], now: dt.datetime) -> None:
    quote.options = [option.as_json(rank) for rank, option in enumerate(options, start=1)]
    quote.status = Quote.Status.PRICED
    quote.valid_until = now + dt.timedelta(hours=settings.QUOTE_VALID_HOURS)
    quote.waitlisted_at = None


def new_request(data: dict, *, requester, contact_email: str, client_ip: str | None) -> Quote:
    """An unsaved quote for a checked request (the API's or the portal's cleaned data)."""
    return Quote(
        requester=requester,
        contact_email=contact_email,
        client_ip=client_ip,
        machine_model=data.get("machine_model"),
        quantity=data.get("quantity"),
        it_kw=data["it_kw"],
        start_on=data["start_on"],
        term_months=data["term_months"],
        region=data.get("region") or "",
        country=str(data.get("country") or ""),
        site=data.get("site"),
    )


def request_quote(quote: Quote, *, now: dt.datetime | None = None) -> Quote:
    """Price an unsaved quote (request fields set) against every candidate site and save it;
    refused (DemandTooLarge) when no site it may go to will ever be big enough."""
    now = now or timezone.now()
    sites = matching(candidate_sites(), region=quote.region, country=quote.country, site=quote.site)
    check_within_build_out(quote.it_kw, sites)
    options = price_options(Demand.of(quote), sites, ledger.availability(sites, now), planner.floors(sites))
    quote.created_at = now
    if options:
        _priced(quote, options, now)
    else:
        quote.status = Quote.Status.WAITLISTED
        quote.waitlisted_at = now
    quote.save(force_insert=True)
    return quote


class DemandTooLarge(QuoteRefused):
    """More IT kW than any site the request may go to will ever have, all its phases built."""

    def __init__(self, requested_kw: Decimal, most_kw: Decimal, site: Site | None):
        self.requested_kw = requested_kw
        self.most_kw = most_kw
        self.site_slug = site.slug if site else None
        if site is None:
            message = f"No site matches this request, so {fmt_kw(requested_kw)} can never be hosted; widen its filters."
        else:
            message = (
                f"{fmt_kw(requested_kw)} is more than any site will ever have: the most any site this request "
                f"may go to could ever take is {fmt_kw(most_kw)} of IT ({site.name}, every build-out phase energized)."
            )
        super().__init__("exceeds_build_out", message)

    def details(self) -> dict:
        return {"requested_it_kw": str(self.requested_kw), "max_it_kw": str(self.most_kw), "site": self.site_slug}


def final_build_out_it_kw(sites: list[Site]) -> dict[int, Decimal]:
    """site id → the IT kW it could carry once every phase it will ever have is energized
    (all phases, ÷ PUE) — one query."""
    totals = dict(
        EnergizationPhase.objects.filter(site__in=sites).order_by().values("site").annotate(mw=Sum("mw"))
        .values_list("site", "mw")
    )  # fmt: skip
    return {s.pk: (totals.get(s.pk) or Decimal(0)) * power.KW_PER_MW / s.pue for s in sites}


def check_within_build_out(it_kw: Decimal, sites: list[Site]) -> None:
    """DemandTooLarge unless one of `sites` could take `it_kw` some day: such a request would
    wait on the waitlist forever (and dwarf everyone else's demand in the forecast)."""
    build_out = final_build_out_it_kw(sites)
    biggest = max(sites, key=lambda s: build_out[s.pk], default=None)
    most = build_out[biggest.pk] if biggest else Decimal(0)
    if it_kw > most:
        raise DemandTooLarge(it_kw, most.quantize(Decimal("1"), rounding=ROUND_FLOOR), biggest)


def waitlist_position(quote: Quote) -> int | None:
    if quote.status != Quote.Status.WAITLISTED:
        return None
    ahead = Quote.objects.waitlist().filter(
        Q(waitlisted_at__lt=quote.waitlisted_at)
        | Q(waitlisted_at=quote.waitlisted_at, created_at__lt=quote.created_at)
        | Q(waitlisted_at=quote.waitlisted_at, created_at=quote.created_at, pk__lt=quote.pk)
    )
    return ahead.count() + 1


# --------------------------------------------------------------------------------------
# Accepting: a hold on the capacity
# --------------------------------------------------------------------------------------


def tenant_for(user, tenant_slug: str | None):
    """The tenant a user acts for: the one named, or their only one."""
    tenants = list(user.tenants.all()) if user.is_authenticated else []
    if not tenants:
        raise QuoteRefused("not_a_tenant", "Accepting a quote needs the token of a tenant's user.")
    if tenant_slug:
        match = [t for t in tenants if t.slug == tenant_slug]
        if not match:
            raise ValidationError({"tenant": f"You do not act for a tenant {tenant_slug!r}."})
        return match[0]
    if len(tenants) > 1:
        raise ValidationError({"tenant": "You act for several tenants; say which (its slug)."})
    return tenants[0]


def accept(quote: Quote, *, site_slug: str, tenant, now: dt.datetime | None = None) -> Quote:
    """Turn one option into a hold that expires; asking again for the same is harmless.

    One hold per quote: the quote row is the lock, and whoever waited for it reads the
    hold afresh after it is granted — a row joined into the locking query would come from
    the snapshot taken before the winner committed (READ COMMITTED), so a second tenant,
    or the same quote at another site, would not see the hold just made."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Quote.objects.select_for_update().get(pk=quote.pk)
        if locked.status == Quote.Status.CONTRACTED:
            raise QuoteRefused("quote_contracted", "This quote is already a contract.")
        if locked.status == Quote.Status.WAITLISTED:
            raise QuoteRefused("quote_waitlisted", "This quote has no option yet; it is on the waitlist.")
        hold = Reservation.objects.active(now).filter(pk=locked.hold_id).select_related("site").first()
        if locked.status == Quote.Status.ACCEPTED and hold is not None:
            if hold.site.slug != site_slug or locked.tenant_id != tenant.pk:
                raise QuoteRefused(
                    "quote_accepted",
                    f"This quote is already accepted at {hold.site.slug}; its hold runs until "
                    f"{hold.expires_at:%Y-%m-%d %H:%M} UTC.",
                )
            return locked
        if locked.is_expired(now):
            raise QuoteRefused(
                "quote_expired", f"This quote expired at {locked.valid_until:%Y-%m-%d %H:%M} UTC; ask for a new one."
            )
        option = locked.option_at(site_slug)
        if option is None:
            raise ValidationError({"site": f"{site_slug!r} is not one of this quote's options."})
        site = Site.objects.get(slug=site_slug)
        starts_on = dt.date.fromisoformat(option["available_from"])
        hold = ledger.reserve(
            site,
            it_kw=locked.it_kw,
            starts_on=starts_on,
            ends_on=starts_on + relativedelta(months=locked.term_months),
            kind=Reservation.Kind.HOLD,
            expires_at=now + dt.timedelta(hours=settings.HOLD_HOURS),
            reference=locked.reference,
            now=now,
        )
        locked.status = Quote.Status.ACCEPTED
        locked.tenant = tenant
        locked.accepted_site = site
        locked.hold = hold
        locked.save(update_fields=["status", "tenant", "accepted_site", "hold"])
    return locked


def contract_from_quote(quote: Quote, *, by=None, now: dt.datetime | None = None) -> Contract:
    """Staff: the accepted quote becomes a signed contract and its hold firm, atomically."""
    now = now or timezone.now()
    with transaction.atomic():
        # The quote alone is locked; its hold, site and tenant are read after the lock is
        # granted (see `accept`: joined rows would be from before a racing accept committed).
        locked = Quote.objects.select_for_update().get(pk=quote.pk)
        if locked.status != Quote.Status.ACCEPTED:
            raise QuoteRefused(
                "quote_not_accepted", f"Only an accepted quote becomes a contract (this one is {locked.status})."
            )
        hold, site, tenant = locked.hold, locked.accepted_site, locked.tenant
        option = locked.option_at(site.slug) if site is not None else None
        if hold is None or site is None or tenant is None or option is None:  # an accepted quote has all four
            raise QuoteRefused("quote_not_accepted", "This quote's hold is incomplete; accept it again.")
        contract = Contract.objects.create(
            tenant=tenant,
            site=site,
            it_kw=locked.it_kw,
            machine_count=locked.machines,
            rate_usd_per_kwh=Decimal(option["rate_usd_per_kwh"]),
            starts_on=hold.starts_on,
            ends_on=hold.ends_on,
            reservation=hold,
            created_at=now,
        )
        contract = services.sign_contract(contract, by=by, now=now)
        locked.status = Quote.Status.CONTRACTED
        locked.contract = contract
        locked.save(update_fields=["status", "contract"])
    return contract


# --------------------------------------------------------------------------------------
# The waitlist
# --------------------------------------------------------------------------------------


def promote_waitlist(now: dt.datetime | None = None) -> list[Quote]:
    """Re-price waitlisted quotes in queue order; each one priced is counted against the
    capacity for the ones behind it, so a later request never jumps the queue."""
    now = now or timezone.now()
    with transaction.atomic():
        queue = list(Quote.objects.waitlist().select_for_update(of=("self",)).select_related("machine_model"))
        if not queue:
            return []
        sites = candidate_sites()
        books = ledger.load_books(sites, now)  # fresh: this decides who is told first
        timelines = {s.pk: books[s.pk].timeline(s.today(now)) for s in sites}
        floors = planner.floors(sites)
        discounts = term_discounts()
        promoted = []
        for quote in queue:
            eligible = matching(sites, region=quote.region, country=quote.country, site=quote.site)
            demand = Demand.of(quote)
            options = price_options(demand, eligible, timelines, floors, discounts)
            if not options:
                continue
            best = options[0]
            book = books[best.site.pk]
            books[best.site.pk] = book = power.SiteBook(
                book.name,
                book.pue,
                book.phases,
                [*book.bookings, power.Booking(best.available_from, best.available_from + demand.term, demand.it_kw)],
            )
            timelines[best.site.pk] = book.timeline(best.site.today(now))
            _priced(quote, options, now)
            quote.save(update_fields=["options", "status", "valid_until", "waitlisted_at"])
            promoted.append(quote)
        for quote in promoted:
            transaction.on_commit(functools.partial(notify_priced, quote))
    return promoted


def notify_priced(quote: Quote) -> None:
    """Tell the requester their waitlisted quote now has options. A mail server that is
    down loses the e-mail, not the promotion (the quote shows its options either way)."""
    lines = [
        f"  #{o['rank']} {o['site']}: from {o['available_from']}, {o['rate_usd_per_kwh']} USD/kWh, "
        f"{Decimal(o['monthly_usd']):,} USD/month, setup {Decimal(o['setup_usd']):,} USD"
        for o in quote.options
    ]
    send_mail(
        subject=f"Haven: capacity found for your request of {quote.it_kw:,} kW",
        message=(
            f"Good news: your waitlisted quote {quote.id} now has options.\n\n"
            + "\n".join(lines)
            + f"\n\nPrices are valid until {quote.valid_until:%Y-%m-%d %H:%M} UTC. "
            f"Accept one with POST /api/v1/quotes/{quote.id}/accept/.\n"
        ),
        from_email=None,
        recipient_list=[quote.contact_email],
        fail_silently=True,
    )


def decline(quote: Quote, *, reason: str, by=None, now: dt.datetime | None = None) -> Quote:
    """Staff: take a waitlisted quote off the waitlist, saying why; the requester is told by
    e-mail. Its place goes to the next in the queue."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise QuoteRefused("reason_required", "Say why the quote is declined: the requester is told.")
    with transaction.atomic():
        locked = Quote.objects.select_for_update().get(pk=quote.pk)
        if locked.status != Quote.Status.WAITLISTED:
            raise QuoteRefused(
                "quote_not_waitlisted", f"Only a waitlisted quote can be declined (this one is {locked.status})."
            )
        locked.status = Quote.Status.DECLINED
        locked.declined_at = now
        locked.declined_by = by
        locked.decline_reason = reason
        locked.save(update_fields=["status", "declined_at", "declined_by", "decline_reason"])
        transaction.on_commit(lambda: notify_declined(locked))
    return locked


def notify_declined(quote: Quote) -> None:
    """Tell the requester their waitlisted request was declined, and why. As with the priced
    notice, a mail server that is down loses the e-mail, not the decision."""
    send_mail(
        subject=f"Haven: your waitlisted request of {quote.it_kw:,} kW was declined",
        message=(
            f"Your request {quote.id} ({quote.it_kw:,} kW of IT from {quote.start_on} for {quote.term_months} months) "
            f"has been taken off the waitlist by Haven staff.\n\nWhy: {quote.decline_reason}\n\n"
            "You are welcome to ask for a new quote at any time.\n"
        ),
        from_email=None,
        recipient_list=[quote.contact_email],
        fail_silently=True,
    )
