"""Top-level URLs: the tenant portal, the staff admin and dashboards, the API (v1), a liveness probe."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_GET
from django.views.generic import RedirectView

from hosting.telemetry.metrics import metrics


@require_GET
def healthz(request):
    """Liveness for load balancers: the process answers."""
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico; the icon is a static file (hashed and cached for good once collected)."""
    return redirect(static("haven/favicon.ico"))


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:dashboard"), name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("hosting.api.urls")),
    path("portal/", include("hosting.portal.urls")),
    path("staff/", include("hosting.staff.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
]
