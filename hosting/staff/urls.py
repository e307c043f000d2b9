from django.urls import path

from hosting.staff import alerts, views

app_name = "staff"

urlpatterns = [
    path("", views.home, name="home"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecast/<slug:slug>/", views.forecast, name="site_forecast"),
    path("racks/", views.racks, name="racks"),
    path("racks/<int:pk>/", views.rack, name="rack"),
    path("waitlist/", views.waitlist, name="waitlist"),
    path("waitlist/<uuid:pk>/decline/", views.waitlist_decline, name="waitlist-decline"),
    path("holds/", views.holds, name="holds"),
    path("intake/", views.intake, name="intake"),
    path("requests/<int:pk>/", views.request_act, name="request-act"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", alerts.alert_acknowledge, name="alert-acknowledge"),
]
