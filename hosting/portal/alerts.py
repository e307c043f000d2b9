"""The tenant's alerts: those on their own machines (never another tenant's, never a
circuit's: circuits are the host's), open ones by default, each linked to its machine."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from hosting.paging import paginate
from hosting.portal.views import tenant_required
from hosting.telemetry.models import Alert

STATES = ("open", "all")


@require_GET
@tenant_required
def alerts(request):
    state = request.GET.get("state", "open")
    state = state if state in STATES else "open"
    rows = Alert.objects.visible_to_user(request.user).select_related("site", "machine__model")
    if state == "open":
        rows = rows.open()
    page = paginate(request, rows.order_by("-opened_at", "-pk"))
    return render(request, "portal/alerts.html", {"page": page, "state": state})
