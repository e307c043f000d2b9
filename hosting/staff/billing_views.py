"""Staff pages of billing: the dashboard (revenue, SLA credits, unbilled, overdue, drafts),
the invoice runs and their logs with "Run now", an invoice's page with its actions (issue,
paid, void, credit note), and announced maintenance. Thin: reads in hosting.billing.reports,
writes through hosting.billing.services; a refusal is a message, never a 500."""

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from capacity.models import Site
from hosting.billing import reports, services
from hosting.billing.models import Invoice, InvoiceRun, Maintenance
from hosting.paging import paginate
from hosting.staff.views import site_choices, staff_action, staff_page

PAST_GRACE = dt.timedelta(minutes=10)  # a maintenance may start at most this long ago when announced


@staff_page
def dashboard(request):
    rows = reports.revenue()
    context = {
        "revenue": rows,
        "totals": reports.revenue_totals(rows),
        "unbilled": reports.unbilled(),
        "overdue": reports.overdue(),
        "drafts": reports.drafts()[:100],
        "drafts_n": reports.drafts().count(),
    }
    return render(request, "staff/billing.html", context)


@staff_page
def runs(request):
    page = paginate(request, InvoiceRun.objects.select_related("triggered_by").order_by("-started_at", "-pk"))
    return render(request, "staff/billing_runs.html", {"page": page})


@staff_page
def run(request, pk: int):
    the_run = get_object_or_404(InvoiceRun.objects.select_related("triggered_by"), pk=pk)
    return render(request, "staff/billing_run.html", {"run": the_run})


@staff_action
def run_now(request):
    done = services.run_invoices(by=request.user)
    if done.pk is None:
        messages.info(request, "Nothing was due: no contract has a billing day today without its invoice.")
        return redirect("staff:billing-runs")
    messages.success(
        request, f"Run done: {done.contracts} contracts, {done.created} created, {done.unchanged} unchanged, "
        f"{done.failed} failed.",
    )  # fmt: skip
    return redirect("staff:billing-run", done.pk)


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=1000)


class CreditForm(forms.Form):
    amount = forms.DecimalField(max_digits=16, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.CharField(max_length=1000)


def _invoice(pk: int) -> Invoice:
    try:
        return reports.invoice_page(pk)
    except Invoice.DoesNotExist as exc:
        raise Http404(f"No invoice {pk}.") from exc


def _invoice_context(invoice: Invoice, **forms_) -> dict:
    lines = list(invoice.lines.all())
    return {
        "invoice": invoice,
        "lines": lines,
        "machines": list(invoice.machines.all()),
        "notes": list(invoice.credit_notes.all()),
        "hosting": services.hosting_amount(lines),
        "void_form": forms_.get("void_form") or VoidForm(),
        "credit_form": forms_.get("credit_form") or CreditForm(),
    }


@staff_page
def invoice(request, pk: int):
    return render(request, "staff/billing_invoice.html", _invoice_context(_invoice(pk)))


@staff_action
def invoice_act(request, pk: int, action: str):
    the_invoice = get_object_or_404(Invoice, pk=pk)
    try:
        if action == "issue":
            done = services.issue(the_invoice)
            messages.success(request, f"Issued as {done.number}, due on {done.due_on}.")
        elif action == "paid":
            services.mark_paid(the_invoice)
            messages.success(request, f"{the_invoice} marked paid.")
        elif action == "void":
            form = VoidForm(request.POST)
            if not form.is_valid():
                page = _invoice_context(_invoice(pk), void_form=form)
                return render(request, "staff/billing_invoice.html", page, status=400)
            services.void(the_invoice, reason=form.cleaned_data["reason"])
            messages.success(request, f"{the_invoice} voided.")
        elif action == "credit":
            credit = CreditForm(request.POST)
            if not credit.is_valid():
                page = _invoice_context(_invoice(pk), credit_form=credit)
                return render(request, "staff/billing_invoice.html", page, status=400)
            note = services.credit_note(the_invoice, **credit.cleaned_data)
            messages.success(request, f"Credit note {note.number} issued: {note.total_amount} {note.currency}.")
        else:
            raise Http404(action)
    except services.BillingRefusal as refusal:
        messages.error(request, str(refusal))
    return redirect("staff:billing-invoice", pk)


# --- Announced maintenance ------------------------------------------------------------------


class MaintenanceForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.order_by("name"), to_field_name="slug")
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    reason = forms.CharField(max_length=300)
    late_ok = forms.BooleanField(
        required=False, label="Announce even though the notice is too short for some contracts"
    )

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "Maintenance must end after it starts.")
        if starts and starts < timezone.now() - PAST_GRACE:
            self.add_error("starts_at", "Maintenance cannot be announced after it has started.")
        return data


def _notice_h(starts_at: dt.datetime, now: dt.datetime) -> Decimal:
    return Decimal((starts_at - now).total_seconds() / 3600).quantize(Decimal("0.01"))


def _maintenance_page(request, site: Site, form: MaintenanceForm, status: int = 200, preview=None):
    contract_notices = reports.notices(site)
    page = paginate(request, reports.maintenances(site))
    rows = reports.by_contract_notices(list(page.object_list), contract_notices)
    context = {"sites": site_choices(), "site": site, "form": form, "page": page, "rows": rows}
    context |= {"notices": contract_notices, "preview": preview, "now": timezone.now()}
    return render(request, "staff/billing_maintenance.html", context, status=status)


@staff_page
def maintenance(request, slug: str | None = None):
    sites = site_choices()
    site = next((s for s in sites if s.slug == slug), None) if slug else (sites[0] if sites else None)
    if site is None:
        raise Http404(f"No site {slug!r}.")
    return _maintenance_page(request, site, MaintenanceForm(initial={"site": site.slug}))


@staff_action
def maintenance_announce(request):
    form = MaintenanceForm(request.POST)
    if not form.is_valid():
        site = Site.objects.filter(slug=request.POST.get("site", "")).first() or Site.objects.order_by("name").first()
        if site is None:
            raise Http404("No site.")
        return _maintenance_page(request, site, form, status=400)
    data, now = form.cleaned_data, timezone.now()
    notice_h = _notice_h(data["starts_at"], now)
    met, missed = reports.meets(notice_h, reports.notices(data["site"]))
    if missed and not data["late_ok"]:
        preview = {"notice_h": notice_h, "met": met, "missed": missed}
        return _maintenance_page(request, data["site"], form, status=400, preview=preview)
    m = Maintenance.objects.create(
        site=data["site"], starts_at=data["starts_at"], ends_at=data["ends_at"], reason=data["reason"],
        announced_at=now, announced_by=request.user,
    )  # fmt: skip
    note = f" Too late for {len(missed)} contract(s): not excluded from their SLA." if missed else ""
    messages.success(request, f"Maintenance announced with {m.notice_h} h notice.{note}")
    return redirect("staff:billing-maintenance", data["site"].slug)


@staff_action
def maintenance_cancel(request, pk: int):
    m = get_object_or_404(Maintenance.objects.select_related("site"), pk=pk)
    if m.cancelled_at is None:
        Maintenance.objects.filter(pk=pk).update(cancelled_at=timezone.now())
        messages.success(request, f"Cancelled: {m}.")
    else:
        messages.info(request, f"{m} was already cancelled.")
    return redirect("staff:billing-maintenance", m.site.slug)
