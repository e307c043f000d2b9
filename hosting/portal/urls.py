from django.urls import path

from hosting.portal import accounts, alerts, curtailment, invoices, views

app_name = "portal"

urlpatterns = [
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", views.logout, name="logout"),
    path("", views.dashboard, name="dashboard"),
    path("machines/", views.machines, name="machines"),
    path("machines.csv", views.machines_csv, name="machines-csv"),
    path("machines/<int:pk>/", views.machine, name="machine"),
    path("machines/<int:pk>/requests/", views.machine_request, name="machine-request"),
    path("contracts/<int:pk>/", views.contract, name="contract"),
    path("batches/<uuid:pk>/progress/", views.batch_progress, name="batch-progress"),
    path("quotes/", views.quotes_list, name="quotes"),
    path("quotes/<uuid:pk>/", views.quote, name="quote"),
    path("quotes/<uuid:pk>/accept/", views.quote_accept, name="quote-accept"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("members/", accounts.members_page, name="members"),
    path("members/<int:pk>/role/", accounts.member_role, name="member-role"),
    path("members/<int:pk>/remove/", accounts.member_remove, name="member-remove"),
    path("invitations/", accounts.invite, name="invite"),
    path("invitations/<int:pk>/revoke/", accounts.invitation_revoke, name="invitation-revoke"),
    path("invitations/<str:token>/", accounts.invitation, name="invitation"),
    path("account/two-factor/", accounts.two_factor_page, name="two-factor"),
    path("account/two-factor/confirm/", accounts.two_factor_confirm, name="two-factor-confirm"),
    path("account/two-factor/recovery-codes/", accounts.two_factor_recovery, name="two-factor-recovery"),
    path("account/two-factor/disable/", accounts.two_factor_disable, name="two-factor-disable"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("curtailment/", curtailment.curtailment, name="curtailment"),
    path("curtailment/<int:pk>/", curtailment.contract_curtailment, name="curtailment-contract"),
    path("invoices/", invoices.invoices, name="invoices"),
    path("invoices/<int:pk>/", invoices.invoice, name="invoice"),
    path("invoices/<int:pk>/invoice.pdf", invoices.invoice_pdf, name="invoice-pdf"),
    path("invoices/<int:pk>/lines.csv", invoices.invoice_lines_csv, name="invoice-lines-csv"),
    path("invoices/<int:pk>/machines.csv", invoices.invoice_machines_csv, name="invoice-machines-csv"),
]
