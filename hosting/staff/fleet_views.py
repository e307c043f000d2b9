"""Staff pages of the fleet after go-live: figures per site and per tenant, the power view
(measured against booked), the floor map of a site. Staff only; thin, as hosting.staff.views."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from capacity.models import Site
from hosting.models import Tenant
from hosting.staff import floor, svg
from hosting.staff.fleet import fleet_figures
from hosting.staff.views import site_choices, staff_page
from hosting.telemetry import reports

POWER_CIRCUITS_SHOWN = 200  # flagged circuits listed; the rest counted


@staff_page
def fleet(request):
    sites, tenants = site_choices(), list(Tenant.objects.order_by("name").only("pk", "slug", "name"))
    by_site, by_tenant = reports.now_by_site(), reports.now_by_tenant()
    live, alerts = reports.live_machines_by_site(), reports.open_alerts_by_site()
    site_rows = [(s, by_site.get(s.pk, reports.Now()), live.get(s.pk, 0), alerts.get(s.pk, 0)) for s in sites]
    tenant_rows = [(t, by_tenant.get(t.pk, reports.Now())) for t in tenants]
    return render(request, "staff/fleet.html", {"site_rows": site_rows, "tenant_rows": tenant_rows})


@staff_page
def fleet_of(request, kind: str, slug: str):
    """One site's or one tenant's fleet: the tenant dashboard's figures and charts."""
    model = {"site": Site, "tenant": Tenant}.get(kind)
    if model is None:
        raise Http404(kind)
    subject = get_object_or_404(model, slug=slug)
    scope = reports.Scope(site_id=subject.pk) if kind == "site" else reports.Scope.tenant(subject.pk)
    context = {"kind": kind, "subject": subject, **fleet_figures(scope)}
    return render(request, "staff/fleet_of.html", context)


@staff_page
def power(request):
    sites, slug = site_choices(), request.GET.get("site", "")
    chosen = [s for s in Site.objects.order_by("name") if not slug or s.slug == slug]
    view = reports.power_view(chosen)
    flagged = view.flagged_circuits
    context = {"view": view, "flagged": flagged[:POWER_CIRCUITS_SHOWN], "flagged_n": len(flagged)}
    return render(request, "staff/power.html", context | {"sites": sites, "site_slug": slug})


@staff_page
def floor_map(request, slug: str | None = None):
    sites = site_choices()
    site = next((s for s in sites if s.slug == slug), None) if slug else (sites[0] if sites else None)
    if slug and site is None:
        raise Http404(f"No site {slug!r}.")
    measure = m if (m := request.GET.get("measure")) in svg.FLOOR_MEASURES else "power"
    racks = floor.floor_racks(reports.racks_now(site), lambda pk: reverse("staff:rack", args=[pk])) if site else []
    halls = floor.layout(racks)
    chart = svg.floor_map(halls, name=site.name if site else "", measure=measure) if site else ""
    context = {"sites": sites, "site": site, "measure": measure, "measures": svg.FLOOR_MEASURES, "chart": chart}
    return render(request, "staff/floor.html", context | {"racks_n": len(racks), "halls_n": len(halls)})
