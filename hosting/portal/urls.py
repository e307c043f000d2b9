from django.contrib.auth import views as auth_views
from django.urls import path

from hosting.portal import alerts, curtailment, invoices, shipping, views, webhooks

app_name = "portal"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", views.logout, name="logout"),
    path("", views.dashboard, name="dashboard"),
    path("machines/", views.machines, name="machines"),
    path("machines.csv", views.machines_csv, name="machines-csv"),
    path("machines/<int:pk>/", views.machine, name="machine"),
    path("machines/<int:pk>/requests/", views.machine_request, name="machine-request"),
    path("machines/<int:pk>/edit/", shipping.machine_edit, name="machine-edit"),
    path("machines/<int:pk>/cancel/", shipping.machine_cancel, name="machine-cancel"),
    path("contracts/<int:pk>/", views.contract, name="contract"),
    path("shipments/", shipping.shipments, name="shipments"),
    path("shipments/<int:pk>/", shipping.shipment, name="shipment"),
    path("shipments/<int:pk>/tracking/", shipping.shipment_tracking, name="shipment-tracking"),
    path("packing-list-template.csv", shipping.packing_template, name="packing-template"),
    path("machine-models.csv", shipping.model_list, name="model-list"),
    path("batches/<uuid:pk>/progress/", views.batch_progress, name="batch-progress"),
    path("quotes/", views.quotes_list, name="quotes"),
    path("quotes/<uuid:pk>/", views.quote, name="quote"),
    path("quotes/<uuid:pk>/accept/", views.quote_accept, name="quote-accept"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("curtailment/", curtailment.curtailment, name="curtailment"),
    path("curtailment/<int:pk>/", curtailment.contract_curtailment, name="curtailment-contract"),
    path("invoices/", invoices.invoices, name="invoices"),
    path("invoices/<int:pk>/", invoices.invoice, name="invoice"),
    path("invoices/<int:pk>/invoice.pdf", invoices.invoice_pdf, name="invoice-pdf"),
    path("invoices/<int:pk>/lines.csv", invoices.invoice_lines_csv, name="invoice-lines-csv"),
    path("invoices/<int:pk>/machines.csv", invoices.invoice_machines_csv, name="invoice-machines-csv"),
    path("webhooks/", webhooks.webhooks, name="webhooks"),
    path("webhooks/<int:pk>/", webhooks.webhook, name="webhook"),
    path("webhooks/<int:pk>/enable/", webhooks.webhook_enable, name="webhook-enable"),
    path("webhooks/<int:pk>/rotate/", webhooks.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<int:pk>/delete/", webhooks.webhook_delete, name="webhook-delete"),
    path("webhooks/<int:pk>/deliveries/<int:delivery_id>/replay/", webhooks.webhook_replay, name="webhook-replay"),
]
