from django.urls import path

from hosting.staff import alerts, billing_views, changes, curtailment, fleet_views, views

app_name = "staff"

urlpatterns = [
    path("", views.home, name="home"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecast/<slug:slug>/", views.forecast, name="site_forecast"),
    path("fleet/", fleet_views.fleet, name="fleet"),
    path("fleet/<str:kind>/<slug:slug>/", fleet_views.fleet_of, name="fleet-of"),
    path("power/", fleet_views.power, name="power"),
    path("floor/", fleet_views.floor_map, name="floor-first"),
    path("floor/<slug:slug>/", fleet_views.floor_map, name="floor"),
    path("racks/", views.racks, name="racks"),
    path("racks/<int:pk>/", views.rack, name="rack"),
    path("waitlist/", views.waitlist, name="waitlist"),
    path("waitlist/<uuid:pk>/decline/", views.waitlist_decline, name="waitlist-decline"),
    path("holds/", views.holds, name="holds"),
    path("intake/", views.intake, name="intake"),
    path("requests/<int:pk>/", views.request_act, name="request-act"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("changes/", changes.changes, name="changes"),
    path("alerts/<int:pk>/acknowledge/", alerts.alert_acknowledge, name="alert-acknowledge"),
    path("billing/", billing_views.dashboard, name="billing"),
    path("billing/runs/", billing_views.runs, name="billing-runs"),
    path("billing/runs/now/", billing_views.run_now, name="billing-run-now"),
    path("billing/runs/<int:pk>/", billing_views.run, name="billing-run"),
    path("billing/invoices/<int:pk>/", billing_views.invoice, name="billing-invoice"),
    path("billing/invoices/<int:pk>/<str:action>/", billing_views.invoice_act, name="billing-invoice-act"),
    path("billing/maintenance/", billing_views.maintenance, name="billing-maintenance-first"),
    path("billing/maintenance/announce/", billing_views.maintenance_announce, name="billing-maintenance-announce"),
    path("billing/maintenance/<int:pk>/cancel/", billing_views.maintenance_cancel, name="billing-maintenance-cancel"),
    path("billing/maintenance/<slug:slug>/", billing_views.maintenance, name="billing-maintenance"),
    path("curtailment/", curtailment.curtailment, name="curtailment"),
    path("curtailment/events/", curtailment.event_new, name="curtailment-event-new"),
    path("curtailment/prices/", curtailment.price_upload, name="curtailment-prices"),
    path("curtailment/events/<int:pk>/", curtailment.event, name="curtailment-event"),
]
