"""Staff dashboards: the pictures staff plan with. Staff only; linked from the admin.

Read-only and thin: each view reads its rows in a fixed number of queries (whatever the
number of rows), hands them to `hosting.staff.figures` and `hosting.staff.svg`, and
renders. Lists are paginated, 50 a page.
"""

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, Subquery, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from capacity import ledger
from capacity.models import Circuit, Rack, Reservation, Site, Slot
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, Quote, Sample, SelfTestRun
from hosting.staff import figures, svg

PER_PAGE = 50
HOLD_HOURS_DEFAULT = 24
HOLD_HOURS_MAX = 24 * 90
COLD_C = 40.0  # the cold end of the temperature scale; the hot end is the rack's models' chip limit


def staff_page(view: Callable) -> Callable:
    """Staff only (others go to the admin login), GET only."""
    return staff_member_required(require_GET(view))


def paginate(request, queryset) -> Page:
    return Paginator(queryset, PER_PAGE).get_page(request.GET.get("page"))


def site_choices() -> list[Site]:
    return list(Site.objects.order_by("name").only("pk", "slug", "name"))


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
        "holds": _holds(now, HOLD_HOURS_DEFAULT).count(),
        "intake": _intake().count(),
    }
    return render(request, "staff/home.html", {"sites": today, "counts": counts, "hold_hours": HOLD_HOURS_DEFAULT})


# --------------------------------------------------------------------------------------
# Capacity forecast
# --------------------------------------------------------------------------------------


def live_w_by_site() -> dict[int, int]:
    """Nameplate watts of live machines per site, from their slots' allocation (one query)."""
    rows = (
        Slot.objects.filter(machine__status=MachineStatus.LIVE)
        .order_by()
        .values("rack__site_id")
        .annotate(w=Sum("allocated_w"))
        .values_list("rack__site_id", "w")
    )
    return {site_id: w or 0 for site_id, w in rows}


def waitlisted_quotes() -> list[figures.WaitlistedQuote]:
    rows = Quote.objects.waitlist().values_list("it_kw", "start_on", "term_months", "region", "country", "site_id")
    return [figures.WaitlistedQuote(*row) for row in rows]


@staff_page
def forecast(request, slug: str | None = None):
    now = timezone.now()
    sites = list(Site.objects.order_by("name"))
    site = None
    if slug is not None:
        site = next((s for s in sites if s.slug == slug), None)
        if site is None:
            raise Http404(f"No site {slug!r}.")
    books = ledger.load_books(sites, now)
    live = live_w_by_site()
    quotes = waitlisted_quotes()
    if site is not None:
        fc = figures.forecast(
            books[site.pk],
            site.today(now),
            live_w=live.get(site.pk, 0),
            waitlisted=figures.waitlist_at_site(quotes, site, sites),
        )
        name = site.name
    else:
        start = timezone.localdate(now)
        fc = figures.combine(
            "all sites",
            [figures.forecast(books[s.pk], start, live_w=live.get(s.pk, 0)) for s in sites],
            start=start,
            waitlisted=figures.waitlist_everywhere(quotes, sites),
        )
        name = "All sites"
    return render(
        request,
        "staff/forecast.html",
        {
            "site": site,
            "sites": sites,
            "name": name,
            "forecast": fc,
            "chart": svg.forecast_chart(fc),
            "changes": fc.changes,
            "series": svg.SERIES,
        },
    )


# --------------------------------------------------------------------------------------
# Racks
# --------------------------------------------------------------------------------------


@staff_page
def racks(request):
    site_slug = request.GET.get("site", "")
    q = request.GET.get("q", "").strip()
    rows = Rack.objects.with_occupancy().select_related("site", "feed").order_by("site__name", "row", "name", "pk")
    if site_slug:
        rows = rows.filter(site__slug=site_slug)
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(row__icontains=q))
    return render(
        request,
        "staff/racks.html",
        {"page": paginate(request, rows), "sites": site_choices(), "site_slug": site_slug, "q": q},
    )


def latest_chip_temps(rack_id: int) -> dict[int, float | None]:
    """Max chip °C per machine in the rack, from the latest sample of its latest self-test
    run that has samples (one query, however many slots)."""
    measured = SelfTestRun.objects.filter(machine=OuterRef("run__machine")).filter(
        Exists(Sample.objects.filter(run=OuterRef("pk")))
    )
    latest_run = measured.order_by("-created_at", "-pk").values("pk")[:1]
    last_seq = Sample.objects.filter(run=OuterRef("run")).order_by("-seq").values("seq")[:1]
    rows = (
        Sample.objects.filter(run__machine__slot__rack_id=rack_id)
        .filter(run=Subquery(latest_run), seq=Subquery(last_seq))
        .values_list("run__machine_id", "boards")
    )
    return {machine_id: figures.max_chip_temp_c(boards) for machine_id, boards in rows}


def _machine_admin_url(pk: int) -> str:
    return reverse("admin:hosting_machine_change", args=[pk])


@staff_page
def rack(request, pk: int):
    rack = get_object_or_404(Rack.objects.select_related("site", "feed"), pk=pk)
    colour = "temperature" if request.GET.get("colour") == "temperature" else "status"
    slots = list(Slot.objects.filter(rack=rack).select_related("machine__model").order_by("position"))
    temps = latest_chip_temps(rack.pk)
    cells = figures.slot_cells(slots, temps, _machine_admin_url)
    limits = [float(s.machine.model.max_chip_temp_c) for s in slots if getattr(s, "machine", None) is not None]
    hot_c = max(limits, default=95.0)
    circuits = list(
        Circuit.objects.filter(pk__in=Slot.objects.filter(rack=rack).values("circuit_id"))
        .with_load()
        .order_by("name", "pk")
    )
    loads = [figures.CircuitLoad(c.name, c.load_w, c.usable_w) for c in circuits]
    return render(
        request,
        "staff/rack.html",
        {
            "rack": rack,
            "colour": colour,
            "cells": cells,
            "used": sum(1 for c in cells if not c.empty),
            "measured": sum(1 for c in cells if c.temp_c is not None),
            "elevation": svg.rack_elevation(cells, name=str(rack), colour=colour, cold_c=COLD_C, hot_c=hot_c),
            "bars": svg.load_bars(loads),
            "loads": loads,
        },
    )


# --------------------------------------------------------------------------------------
# Queues: waitlist, holds about to expire, intake
# --------------------------------------------------------------------------------------


@staff_page
def waitlist(request):
    now = timezone.now()
    page = paginate(request, Quote.objects.waitlist().select_related("machine_model", "site", "requester"))
    rows = [
        {
            "position": page.start_index() + i,
            "quote": quote,
            "age": figures.fmt_age(figures.age(quote.waitlisted_at, now)),
        }
        for i, quote in enumerate(page.object_list)
    ]
    total_kw = Quote.objects.waitlist().aggregate(kw=Sum("it_kw"))["kw"] or Decimal(0)
    return render(request, "staff/waitlist.html", {"page": page, "rows": rows, "total_kw": total_kw})


def _holds(now: dt.datetime, hours: int):
    return (
        Reservation.objects.active(now)
        .filter(kind=Reservation.Kind.HOLD, expires_at__lte=now + dt.timedelta(hours=hours))
        .select_related("site", "quote__tenant")
        .order_by("expires_at", "pk")
    )


def hold_hours(request) -> int:
    try:
        hours = int(request.GET.get("hours", HOLD_HOURS_DEFAULT))
    except ValueError:
        return HOLD_HOURS_DEFAULT
    return min(max(hours, 1), HOLD_HOURS_MAX)


@staff_page
def holds(request):
    now = timezone.now()
    hours = hold_hours(request)
    site_slug = request.GET.get("site", "")
    rows = _holds(now, hours)
    if site_slug:
        rows = rows.filter(site__slug=site_slug)
    page = paginate(request, rows)
    items = [
        {"hold": hold, "quote": getattr(hold, "quote", None), "left": figures.fmt_age(hold.expires_at - now)}
        for hold in page.object_list
    ]
    return render(
        request,
        "staff/holds.html",
        {"page": page, "items": items, "hours": hours, "sites": site_choices(), "site_slug": site_slug},
    )


def _intake():
    return (
        Machine.objects.filter(status=MachineStatus.RECEIVED, slot__isnull=True)
        .select_related("tenant", "contract__site", "model")
        .order_by("status_changed_at", "pk")
    )


@staff_page
def intake(request):
    now = timezone.now()
    site_slug = request.GET.get("site", "")
    rows = _intake()
    if site_slug:
        rows = rows.filter(contract__site__slug=site_slug)
    page = paginate(request, rows)
    items = [
        {"machine": m, "waiting": figures.fmt_age(figures.age(m.status_changed_at, now))} for m in page.object_list
    ]
    return render(
        request,
        "staff/intake.html",
        {"page": page, "items": items, "sites": site_choices(), "site_slug": site_slug},
    )
