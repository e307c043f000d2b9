from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from hosting.api import changes, views
from hosting.billing import api as billing_api
from hosting.curtailment import api as curtailment_api
from hosting.telemetry import api as telemetry_api
from hosting.telemetry.api_alerts import AlertViewSet
from hosting.webhooks import api as webhooks_api

router = DefaultRouter()
router.register("sites", views.SiteViewSet)
router.register("machine-models", views.MachineModelViewSet)
router.register("quotes", views.QuoteViewSet)
router.register("contracts", views.ContractViewSet)
router.register("machines", views.MachineViewSet)
router.register("commissioning/batches", views.BatchViewSet)
router.register("alerts", AlertViewSet)
router.register("invoices", billing_api.InvoiceViewSet)
router.register("changes", changes.ChangeViewSet, basename="change")
router.register("curtailment/events", curtailment_api.EventViewSet, basename="curtailment-event")
router.register("webhooks", webhooks_api.SubscriptionViewSet, basename="webhook")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("machines/<int:id>/telemetry/", telemetry_api.MachineTelemetryView.as_view(), name="machine-telemetry"),
    path("contracts/<int:id>/uptime/", telemetry_api.ContractUptimeView.as_view(), name="contract-uptime"),
    path("contracts/<int:id>/terms/", billing_api.ContractTermsView.as_view(), name="contract-terms"),
    path("curtailment/prices/", curtailment_api.SitePricesView.as_view(), name="curtailment-prices"),
    path("", include(router.urls)),
    # Last: anything else under /api/v1/ answers the API's error shape, not an HTML page.
    re_path(r"^[\s\S]*$", views.unknown_path, name="api-unknown-path"),  # any character, a newline too
]
