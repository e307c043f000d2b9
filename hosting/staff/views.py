"""Staff dashboards: the pictures staff plan with, and the queues they work through.
Staff only; linked from the admin.

Thin: each view reads its rows through queryset methods in a fixed number of queries
(whatever the number of rows), hands them to `hosting.staff.figures` and
`hosting.staff.svg`, and renders. Lists are paginated (`hosting.paging`). The few writes
(declining a waitlisted quote, acting on a tenant's request) are CSRF-protected POSTs that
call the domain's functions and come back to their queue.
"""

import datetime as dt
from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from capacity import ledger
from capacity.errors import Refusal, describe
from capacity.models import Circuit, Rack, Reservation, Site, Slot
from hosting import quotes
from hosting.models import Machine, MachineRequest, Quote, Sample
from hosting.paging import paginate
from hosting.staff import actions, figures, svg
from hosting.telemetry import reports

HOLD_HOURS_DEFAULT = 24
HOLD_HOURS_MAX = 24 * 90
REQUESTS_SHOWN = 50  # the oldest open requests; the rest are in the admin
COLD_C = 40.0  # the cold end of the temperature scale; the hot end is the rack's models' chip limit
RACK_COLOURS = {
    "status": "machine status",
    "temperature": "max chip °C (latest poll, else latest self-test)",
    "power": "measured W ÷ nameplate (latest poll)",
    "hashrate": "hashrate % of nominal (latest poll)",
}


def staff_page(view: Callable) -> Callable:
    """Staff only (others go to the admin login), GET only."""
    return staff_member_required(require_GET(view))


def staff_action(view: Callable) -> Callable:
    """Staff only, POST only (Django's CSRF check applies to every POST)."""
    return staff_member_required(require_POST(view))


def site_choices() -> list[Site]:
    return list(Site.objects.order_by("name").only("pk", "slug", "name"))


def _site_slug(request) -> str:
    return request.GET.get("site", "")


# --------------------------------------------------------------------------------------
# Home
# --------------------------------------------------------------------------------------


@staff_page
def home(request):
    now = timezone.now()
    sites = list(Site.objects.order_by("name"))
    books = ledger.load_books(sites, now)
    today = [figures.site_today(s.name, s.slug, books[s.pk], s.today(now)) for s in sites]
    counts = {
        "waitlist": Quote.objects.waitlist().count(),
        "holds": Reservation.objects.holds_expiring(now, dt.timedelta(hours=HOLD_HOURS_DEFAULT)).count(),
        "intake": Machine.objects.intake().count(),
        "requests": MachineRequest.objects.open().count(),
    }
    return render(request, "staff/home.html", {"sites": today, "counts": counts, "hold_hours": HOLD_HOURS_DEFAULT})


# --------------------------------------------------------------------------------------
# Capacity forecast
# --------------------------------------------------------------------------------------


def site_forecast(site: Site, sites: list[Site], now: dt.datetime) -> figures.Forecast:
    """One site's forecast: its books, its live draw, the waitlist its filters allow."""
    waiting = [figures.WaitlistedQuote(*row) for row in Quote.objects.waitlist_demand()]
    live_w = Machine.objects.live_w_by_site().get(site.pk, 0)
    book = ledger.load_books([site], now)[site.pk]
    return figures.forecast(
        book, site.today(now), live_w=live_w, waitlisted=figures.waitlist_at_site(waiting, site, sites)
    )


def all_sites_forecast(sites: list[Site], now: dt.datetime) -> figures.Forecast:
    """Every site summed, each waitlisted quote counted once."""
    waiting = [figures.WaitlistedQuote(*row) for row in Quote.objects.waitlist_demand()]
    live = Machine.objects.live_w_by_site()
    books = ledger.load_books(sites, now)
    start = timezone.localdate(now)
    per_site = [figures.forecast(books[s.pk], start, live_w=live.get(s.pk, 0)) for s in sites]
    return figures.combine("all sites", per_site, start=start, waitlisted=figures.waitlist_everywhere(waiting, sites))


@staff_page
def forecast(request, slug: str | None = None):
    now = timezone.now()
    sites = list(Site.objects.order_by("name"))
    site = next((s for s in sites if s.slug == slug), None) if slug is not None else None
    if slug is not None and site is None:
        raise Http404(f"No site {slug!r}.")
    fc = site_forecast(site, sites, now) if site is not None else all_sites_forecast(sites, now)
    context: dict[str, object] = {
        "site": site,
        "sites": sites,
        "name": site.name if site else "All sites",
        "forecast": fc,
    }
    context |= {"chart": svg.forecast_chart(fc), "changes": fc.changes, "series": svg.SERIES}
    return render(request, "staff/forecast.html", context)


# --------------------------------------------------------------------------------------
# Racks
# --------------------------------------------------------------------------------------


@staff_page
def racks(request):
    site_slug, q = _site_slug(request), request.GET.get("q", "").strip()
    rows = Rack.objects.with_occupancy().select_related("site", "feed").order_by("site__name", "row", "name", "pk")
    if site_slug:
        rows = rows.filter(site__slug=site_slug)
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(row__icontains=q))
    context = {"page": paginate(request, rows), "sites": site_choices(), "site_slug": site_slug, "q": q}
    return render(request, "staff/racks.html", context)


def latest_chip_temps(rack_id: int) -> dict[int, float | None]:
    """Max chip °C per machine in the rack, from its latest measured sample (one query)."""
    rows = (
        Sample.objects.filter(run__machine__slot__rack_id=rack_id)
        .latest_per_machine()
        .values_list("run__machine_id", "boards")
    )
    return {machine_id: figures.max_chip_temp_c(boards) for machine_id, boards in rows}


def _machine_admin_url(pk: int) -> str:
    return reverse("admin:hosting_machine_change", args=[pk])


@staff_page
def rack(request, pk: int):
    rack = get_object_or_404(Rack.objects.select_related("site", "feed"), pk=pk)
    colour = colour if (colour := request.GET.get("colour")) in RACK_COLOURS else "status"
    slots = list(Slot.objects.filter(rack=rack).select_related("machine__model").order_by("position"))
    latest = reports.latest_rack_windows(rack.pk, rack.site_id)
    cells = figures.slot_cells(slots, latest_chip_temps(rack.pk), _machine_admin_url, latest)
    hot_c = max((float(s.machine.model.max_chip_temp_c) for s in slots if hasattr(s, "machine")), default=95.0)
    circuits = Circuit.objects.filter(pk__in=Slot.objects.filter(rack=rack).values("circuit_id")).with_load()
    loads = [figures.CircuitLoad(c.name, c.load_w, c.usable_w) for c in circuits.order_by("name", "pk")]
    context = {"rack": rack, "colour": colour, "cells": cells, "loads": loads, "bars": svg.load_bars(loads)}
    context |= {"used": sum(not c.empty for c in cells), "measured": sum(c.temp_c is not None for c in cells)}
    context |= {"polled": sum(c.polled for c in cells), "colours": RACK_COLOURS}
    context["elevation"] = svg.rack_elevation(cells, name=str(rack), colour=colour, cold_c=COLD_C, hot_c=hot_c)
    return render(request, "staff/rack.html", context)


# --------------------------------------------------------------------------------------
# Queues: waitlist, holds about to expire, intake (machines and tenants' requests)
# --------------------------------------------------------------------------------------


@staff_page
def waitlist(request):
    now = timezone.now()
    page = paginate(request, Quote.objects.waitlist().select_related("machine_model", "site", "requester"))
    rows = [
        {"position": page.start_index() + i, "quote": q, "age": figures.fmt_age(figures.age(q.waitlisted_at, now))}
        for i, q in enumerate(page.object_list)
    ]
    return render(
        request, "staff/waitlist.html", {"page": page, "rows": rows, "total_kw": Quote.objects.waitlisted_kw()}
    )


@staff_action
def waitlist_decline(request, pk):
    quote = get_object_or_404(Quote, pk=pk)
    try:
        quotes.decline(quote, reason=request.POST.get("reason", ""), by=request.user)
    except (Refusal, ValidationError) as refused:
        messages.error(request, f"Not declined: {describe(refused)}")
    else:
        messages.success(request, f"Quote {str(quote.pk)[:8]} declined; {quote.contact_email} is told why.")
    return redirect("staff:waitlist")


def hold_hours(request) -> int:
    try:
        hours = int(request.GET.get("hours", HOLD_HOURS_DEFAULT))
    except ValueError:
        return HOLD_HOURS_DEFAULT
    return min(max(hours, 1), HOLD_HOURS_MAX)


@staff_page
def holds(request):
    now, hours, site_slug = timezone.now(), hold_hours(request), _site_slug(request)
    rows = Reservation.objects.holds_expiring(now, dt.timedelta(hours=hours)).select_related("site", "quote__tenant")
    page = paginate(request, rows.filter(site__slug=site_slug) if site_slug else rows)
    items = [
        {"hold": h, "quote": getattr(h, "quote", None), "left": figures.fmt_age(h.expires_at - now)}
        for h in page.object_list
    ]
    context = {"page": page, "items": items, "hours": hours, "sites": site_choices(), "site_slug": site_slug}
    return render(request, "staff/holds.html", context)


@staff_page
def intake(request):
    now, site_slug = timezone.now(), _site_slug(request)
    rows = Machine.objects.intake()
    asks = MachineRequest.objects.queue()
    if site_slug:
        rows, asks = rows.filter(contract__site__slug=site_slug), asks.filter(machine__contract__site__slug=site_slug)
    page = paginate(request, rows)
    items = [{"machine": m, "waiting": figures.fmt_age(figures.age(m.status_changed_at, now))} for m in page]
    requests = [{"ask": r, "waiting": figures.fmt_age(figures.age(r.created_at, now))} for r in asks[:REQUESTS_SHOWN]]
    context = {"page": page, "items": items, "requests": requests, "requests_n": asks.count()}
    context |= {"sites": site_choices(), "site_slug": site_slug}
    return render(request, "staff/intake.html", context)


@staff_action
def request_act(request, pk: int):
    """Carry out a tenant's open request (re-test or RMA), or decline it with a reason."""
    ask = get_object_or_404(MachineRequest.objects.open(), pk=pk)
    decline = request.POST.get("decision") == "decline"
    try:
        if decline:
            actions.decline_request(ask, by=request.user, reason=request.POST.get("reason", ""))
        else:
            actions.carry_out(ask, by=request.user)
    except (Refusal, ValidationError) as refused:
        messages.error(request, f"Request about {ask.machine.serial} not closed: {describe(refused)}")
    else:
        done = "declined" if decline else f"done ({actions.DONE_RESPONSES[MachineRequest.Kind(ask.kind)]})"
        messages.success(request, f"{ask.get_kind_display().capitalize()} of {ask.machine.serial}: {done}.")
    return redirect(reverse("staff:intake") + "#requests")
