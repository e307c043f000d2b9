"""Top-level URLs: the staff admin, the API (v1) and a liveness probe."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """Liveness for load balancers: the process answers."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("hosting.api.urls")),
    path("healthz", healthz, name="healthz"),
]
