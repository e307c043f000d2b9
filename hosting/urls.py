"""Top-level URLs. The admin is the staff's home; the API and portal arrive with their issues."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """Liveness for load balancers: the process answers."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
