"""The tenant portal: thin views over the services the API uses, scoped by `visible_to` — an
object of another tenant is simply not found (404)."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from capacity.errors import Refusal, describe
from hosting import packing, quotes
from hosting.lifecycle import MachineStatus
from hosting.models import (
    ApiToken,
    CommissioningBatch,
    Contract,
    Machine,
    MachineEvent,
    Quote,
)
from hosting.portal.forms import MachineFilter, PackingListForm, QuoteForm, TokenForm

PAGE_SIZE = 50


def tenant_required(view):
    """Logged in, and acting for at least one tenant (staff have their own dashboards)."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.tenants.exists():
            if request.user.is_staff:
                return redirect("staff:home")
            return render(request, "portal/no_tenant.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _batches(user):
    return (
        CommissioningBatch.objects.visible_to(user)
        .with_progress()
        .select_related("shipment", "contract__site")
        .order_by("-created_at")
    )


# --- dashboard ----------------------------------------------------------------------------


@require_GET
@tenant_required
def dashboard(request):
    user = request.user
    contracts = (
        Contract.objects.visible_to(user)
        .select_related("site", "tenant")
        .annotate(
            machines_n=Count("machines", distinct=True),
            live_w=Sum("machines__model__nameplate_power_w", filter=Q(machines__status=MachineStatus.LIVE)),
        )
        .order_by("-created_at")[:20]
    )
    by_status = dict(
        Machine.objects.visible_to(user).order_by().values("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    events = (
        MachineEvent.objects.filter(machine__in=Machine.objects.visible_to(user))
        .select_related("machine__model")
        .order_by("-at", "-pk")[:10]
    )
    return render(
        request,
        "portal/dashboard.html",
        {
            "contracts": contracts,
            "statuses": [(value, label, by_status.get(value, 0)) for value, label in MachineStatus.choices],
            "events": events,
            "batches": _batches(user)[:5],
        },
    )


# --- machines -------------------------------------------------------------------------------


@require_GET
@tenant_required
def machines(request):
    form = MachineFilter(request.GET or None)
    queryset = Machine.objects.visible_to(request.user).select_related("model", "contract__site").order_by("serial")
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            queryset = queryset.filter(Q(serial__icontains=data["q"]) | Q(mac__icontains=data["q"].lower()))
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["model"]:
            queryset = queryset.filter(model=data["model"])
        if data["site"]:
            queryset = queryset.filter(contract__site=data["site"])
    return render(request, "portal/machines.html", {"form": form, "page": _page(request, queryset)})


@require_GET
@tenant_required
def machine(request, pk):
    machine = get_object_or_404(
        Machine.objects.visible_to(request.user).select_related("model", "contract__site", "slot__rack"), pk=pk
    )
    runs = machine.self_tests.prefetch_related("checks", "samples")  # each in its model's order
    return render(
        request,
        "portal/machine.html",
        {
            "machine": machine,
            "events": machine.events.select_related("by").order_by("-at", "-pk"),
            "runs": runs,
            "per_board_ths": machine.model.nominal_hashrate_ths / machine.model.hashboards,
        },
    )


# --- contracts and packing lists ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@tenant_required
def contract(request, pk):
    contract = get_object_or_404(Contract.objects.visible_to(request.user).select_related("site", "tenant"), pk=pk)
    form = PackingListForm()
    problems = []
    if request.method == "POST":
        form = PackingListForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                shipment = packing.import_list(
                    contract,
                    form.cleaned_data["file"].read(),
                    reference=form.cleaned_data["reference"],
                    tracking_number=form.cleaned_data["tracking_number"],
                    by=request.user,
                )
            except packing.PackingListInvalid as refused:
                problems = refused.problems
            else:
                count = shipment.machines.count()
                messages.success(request, f"Packing list {shipment} registered: {count} machine(s) on their way.")
                return redirect("portal:contract", pk=contract.pk)
    shipments = contract.shipments.annotate(machines_n=Count("machines")).order_by("-created_at")[:20]
    return render(
        request,
        "portal/contract.html",
        {
            "contract": contract,
            "form": form,
            "problems": problems,
            "shipments": shipments,
            "batches": _batches(request.user).filter(contract=contract)[:10],
            "columns": ", ".join((*packing.COLUMNS, *packing.OPTIONAL)),
        },
    )


# --- commissioning progress -------------------------------------------------------------------------


@require_GET
@tenant_required
def batch_progress(request, pk):
    """The progress bar alone, polled by htmx until the batch is done."""
    batch = get_object_or_404(_batches(request.user), pk=pk)
    return render(request, "portal/_progress.html", {"batch": batch})


# --- quotes ---------------------------------------------------------------------------------------


def _quotes(user):
    return Quote.objects.visible_to(user).select_related("machine_model", "tenant", "hold")


@require_http_methods(["GET", "POST"])
@tenant_required
def quotes_list(request):
    form = QuoteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        quote = quotes.request_quote(
            quotes.new_request(
                form.cleaned_data,
                requester=request.user,
                contact_email=request.user.email or "",
                client_ip=request.META.get("REMOTE_ADDR"),
            )
        )
        return redirect("portal:quote", pk=quote.pk)
    page = _page(request, _quotes(request.user).order_by("-created_at"))
    return render(request, "portal/quotes.html", {"form": form, "page": page})


@require_GET
@tenant_required
def quote(request, pk):
    quote = get_object_or_404(_quotes(request.user), pk=pk)
    return render(
        request,
        "portal/quote.html",
        {
            "quote": quote,
            "position": quotes.waitlist_position(quote),
            "tenants": request.user.tenants.order_by("name"),
        },
    )


@require_POST
@tenant_required
def quote_accept(request, pk):
    quote = get_object_or_404(_quotes(request.user), pk=pk)
    try:
        tenant = quotes.tenant_for(request.user, request.POST.get("tenant") or None)
        quotes.accept(quote, site_slug=request.POST.get("site", ""), tenant=tenant)
    except (Refusal, ValidationError) as refused:
        messages.error(request, f"Not held: {describe(refused)}")
    else:
        messages.success(request, f"Capacity held at {request.POST.get('site')}: staff will turn it into a contract.")
    return redirect("portal:quote", pk=quote.pk)


# --- API tokens --------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@tenant_required
def tokens(request):
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _, key = ApiToken.issue(request.user, form.cleaned_data["name"])
        messages.warning(request, f"Your new token: {key} — copy it now, it is not shown again.")
        return redirect("portal:tokens")
    mine = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    return render(request, "portal/tokens.html", {"form": form, "tokens": mine})


@require_POST
@tenant_required
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken.objects.live().filter(user=request.user), pk=pk)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect(reverse("portal:tokens"))
