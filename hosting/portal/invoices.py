"""The portal's invoices: a tenant's issued invoices and credit notes, each with its lines,
uptime summary, per-machine detail and documents (PDF, CSVs). Scoped by
`Invoice.objects.visible_to`: a draft or another tenant's invoice is simply not found (404)."""

import datetime as dt

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from hosting.billing import documents
from hosting.billing.models import Invoice
from hosting.paging import paginate
from hosting.portal.views import tenant_required


def _invoices(user):
    return Invoice.objects.visible_to(user).select_related("contract", "site", "tenant")


def _mine(request, pk):
    return get_object_or_404(_invoices(request.user), pk=pk)


@require_GET
@tenant_required
def invoices(request):
    page = paginate(request, _invoices(request.user).order_by("-period_start", "-pk"))
    return render(request, "portal/invoices.html", {"page": page})


@require_GET
@tenant_required
def invoice(request, pk):
    invoice = _mine(request, pk)
    rows = invoice.machines.select_related("machine", "machine_model").order_by("machine__serial", "pk")
    context = {"invoice": invoice, "lines": invoice.lines.order_by("position"), "page": paginate(request, rows)}
    context |= {"summary": invoice.summary or {}, "excluded": (invoice.summary or {}).get("excluded") or {}}
    context["period_last"] = invoice.period_end - dt.timedelta(days=1)
    context["credit_notes"] = _invoices(request.user).filter(corrects=invoice)
    return render(request, "portal/invoice.html", context)


@require_GET
@tenant_required
def invoice_pdf(request, pk):
    return documents.pdf_response(_mine(request, pk))


@require_GET
@tenant_required
def invoice_lines_csv(request, pk):
    return documents.lines_csv(_mine(request, pk))


@require_GET
@tenant_required
def invoice_machines_csv(request, pk):
    return documents.machines_csv(_mine(request, pk))
