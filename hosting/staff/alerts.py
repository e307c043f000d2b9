"""The staff alert queue: open alerts by site and kind, each one click from the machine's
evidence, acknowledged with a CSRF-protected POST (hosting.telemetry.alerting)."""

from django.contrib import messages
from django.db.models import Count, Max
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from hosting.models import SelfTestRun
from hosting.paging import paginate
from hosting.staff import figures
from hosting.staff.views import _site_slug, site_choices, staff_action, staff_page
from hosting.telemetry import alerting
from hosting.telemetry.models import Alert, AlertKind


def evidence_urls(machine_ids: list[int]) -> dict[int, str]:
    """machine id → its latest self-test's evidence page (checks and samples), one query."""
    latest = (
        SelfTestRun.objects.filter(machine_id__in=machine_ids)
        .order_by()
        .values("machine_id")
        .annotate(last=Max("pk"))
        .values_list("machine_id", "last")
    )
    return {machine_id: reverse("admin:hosting_selftestrun_change", args=[pk]) for machine_id, pk in latest}


@staff_page
def alerts(request):
    now, site_slug, kind = timezone.now(), _site_slug(request), request.GET.get("kind", "")
    rows = Alert.objects.open().select_related("site", "machine__model", "circuit", "tenant", "acknowledged_by")
    if site_slug:
        rows = rows.filter(site__slug=site_slug)
    if kind in AlertKind.values:
        rows = rows.filter(kind=kind)
    page = paginate(request, rows.order_by("site__name", "kind", "opened_at", "pk"))
    page_alerts = list(page.object_list)
    evidence = evidence_urls([a.machine_id for a in page_alerts if a.machine_id is not None])
    items = [
        {"alert": a, "age": figures.fmt_age(figures.age(a.opened_at, now)), "evidence": evidence.get(a.machine_id)}
        for a in page_alerts
    ]
    summary = list(
        Alert.objects.open().order_by("site__name", "kind").values("site__slug", "site__name", "kind")
        .annotate(n=Count("pk"))
    )  # fmt: skip
    labels = dict(AlertKind.choices)
    for row in summary:
        row["label"] = labels.get(row["kind"], row["kind"])
    context = {"page": page, "items": items, "summary": summary, "kinds": AlertKind.choices, "kind": kind}
    context |= {"sites": site_choices(), "site_slug": site_slug, "here": request.get_full_path()}
    return render(request, "staff/alerts.html", context)


@staff_action
def alert_acknowledge(request, pk: int):
    alert = get_object_or_404(Alert.objects.select_related("machine", "circuit"), pk=pk)
    alerting.acknowledge(alert, request.user)
    messages.success(request, f"Acknowledged: {alert.get_kind_display()} · {alert.machine or alert.circuit}.")
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("staff:alerts")
