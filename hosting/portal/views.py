"""The tenant portal: thin views over the services the API uses, scoped by `visible_to` — an
object of another tenant is simply not found (404)."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from capacity.errors import Refusal, describe
from capacity.models import Site
from hosting import machine_requests, packing, quotes
from hosting.accounts import Action, may, may_somewhere, role_in, tenants_where
from hosting.billing import quoting
from hosting.billing import services as billing_services
from hosting.exports import csv_response
from hosting.lifecycle import AWAITING_ARRIVAL, GONE, MachineStatus
from hosting.models import (
    ApiToken,
    CommissioningBatch,
    Contract,
    Machine,
    MachineEvent,
    MachineRequest,
    Quote,
)
from hosting.paging import paginate
from hosting.portal import changes, fleet
from hosting.portal.filters import machine_filter
from hosting.portal.forms import MachineRequestForm, PackingListForm, QuoteForm, TokenForm


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


def forbidden(request, tenant, action: Action):
    """403, saying why: the user's role for that tenant does not allow the action."""
    role = role_in(request.user, tenant) if tenant is not None else None
    context = {"tenant": tenant, "role": role, "action": action}
    return render(request, "portal/forbidden.html", context, status=403)


def _batches(user):
    return (
        CommissioningBatch.objects.visible_to(user)
        .with_progress()
        .select_related("shipment", "contract__site")
        .order_by("-created_at")
    )


def _site_names() -> dict[str, str]:
    """slug → name: quotes keep their options as a snapshot by slug."""
    return dict(Site.objects.values_list("slug", "name"))


# --- dashboard ----------------------------------------------------------------------------


@require_GET
@tenant_required
def dashboard(request):
    """The whole page, or — to htmx, every 2 s while a batch is being commissioned — its
    live part alone: status cards, progress bars, contracts and events refresh together."""
    user = request.user
    machines = Machine.objects.visible_to(user)
    by_status = machines.count_by_status()
    batches = list(_batches(user)[:5])
    context = {
        "contracts": Contract.objects.visible_to(user).with_machine_figures().select_related("site")[:20],
        "statuses": [(value, label, by_status.get(value, 0)) for value, label in MachineStatus.choices],
        "events": MachineEvent.objects.recent_for(machines, 10),
        "batches": batches,
        "live": any(not b.done for b in batches),
    }
    if request.htmx:
        return render(request, "portal/_dashboard.html", context)
    return render(request, "portal/dashboard.html", context | fleet.dashboard(user))


# --- machines -------------------------------------------------------------------------------


def _machine_list(request):
    """The user's machines through the list's filters, with their latest window, in the asked order."""
    scoped = Machine.objects.visible_to(request.user).select_related("model", "contract__site", "slot__rack")
    filters = machine_filter(request, scoped)
    sort = request.GET.get("sort", "serial")
    return filters, sort, fleet.sorted_machines(filters.qs, sort)


@require_GET
@tenant_required
def machines(request):
    filters, sort, rows = _machine_list(request)
    context = {"filters": filters, "page": paginate(request, rows), "sort": sort}
    return render(request, "portal/machines.html", context)


@require_GET
@tenant_required
def machines_csv(request):
    """The machines list as CSV, same filters and order, every page (formula-safe cells)."""
    _, _, rows = _machine_list(request)
    return csv_response("machines.csv", fleet.CSV_HEADER, fleet.csv_rows(rows))


def _my_machine(request, pk):
    return get_object_or_404(
        Machine.objects.visible_to(request.user).select_related("model", "contract__site", "slot__rack"), pk=pk
    )


@require_GET
@tenant_required
def machine(request, pk):
    machine = _my_machine(request, pk)
    asks = machine.requests.select_related("requested_by", "resolved_by")
    context = {
        "machine": machine,
        "events": machine.events.select_related("by").order_by("-at", "-pk"),
        "runs": machine.self_tests.prefetch_related("checks", "samples"),  # each in its model's order
        "per_board_ths": machine.model.nominal_hashrate_ths / machine.model.hashboards,
        "asks": asks,
        "open_ask": next((a for a in asks if a.state == MachineRequest.State.OPEN), None),
        "request_form": MachineRequestForm(kinds=MachineRequest.kinds_for(machine.status)),
        "may_request": may(request.user, machine.contract.tenant_id, Action.REQUEST),
        "span": span if (span := request.GET.get("span")) in fleet.MACHINE_SPANS else "24h",
        "spans": list(fleet.MACHINE_SPANS),
    }
    context["may_change"] = machine.status in AWAITING_ARRIVAL and may(request.user, machine.tenant_id, Action.SHIP)
    context["charts"] = fleet.machine_charts(machine, context["span"])
    context |= {"changes": changes.history(machine), "changes_n": changes.LATEST}
    return render(request, "portal/machine.html", context)


@require_POST
@tenant_required
def machine_request(request, pk):
    """Ask staff for a re-test or an RMA of one's own machine (one open request at a time)."""
    machine = _my_machine(request, pk)
    if not may(request.user, machine.contract.tenant_id, Action.REQUEST):
        return forbidden(request, machine.contract.tenant, Action.REQUEST)
    form = MachineRequestForm(request.POST, kinds=MachineRequest.kinds_for(machine.status))
    if not form.is_valid():
        messages.error(request, "Not asked: " + " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("portal:machine", pk=machine.pk)
    try:
        ask = machine_requests.file(machine, form.cleaned_data["kind"], note=form.cleaned_data["note"], by=request.user)
    except Refusal as refused:
        messages.error(request, f"Not asked: {describe(refused)}")
    else:
        messages.success(request, f"Asked for a {ask.get_kind_display()}: Haven staff will answer here.")
    return redirect("portal:machine", pk=machine.pk)


# --- contracts and packing lists ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@tenant_required
def contract(request, pk):
    mine = Contract.objects.visible_to(request.user).with_machine_figures().select_related("site", "tenant")
    contract = get_object_or_404(mine, pk=pk)
    may_ship = may(request.user, contract.tenant_id, Action.SHIP)
    if request.method == "POST" and not may_ship:
        return forbidden(request, contract.tenant, Action.SHIP)
    form = PackingListForm(request.POST, request.FILES) if request.method == "POST" else PackingListForm()
    problems = []
    if request.method == "POST" and form.is_valid():
        try:
            shipment = packing.import_list(contract, form.cleaned_data["file"].read(), by=request.user,
                                           reference=form.cleaned_data["reference"],
                                           tracking_number=form.cleaned_data["tracking_number"],
                                           carrier=form.cleaned_data["carrier"])  # fmt: skip
        except packing.PackingListInvalid as refused:
            problems = refused.problems
        else:
            count = shipment.machines.count()
            messages.success(request, f"Packing list {shipment} registered: {count} machine(s) on their way.")
            return redirect("portal:contract", pk=contract.pk)
    context = {"contract": contract, "form": form, "problems": problems, "may_ship": may_ship}
    context["terms"] = billing_services.terms_for(contract)
    shipments = contract.shipments.annotate(machines_n=Count("machines", filter=~Q(machines__status__in=sorted(GONE))))
    context |= {"shipments": shipments.order_by("-created_at")[:20]}
    context |= {"batches": _batches(request.user).filter(contract=contract)[:10]}
    context["columns"] = ", ".join((*packing.COLUMNS, *packing.OPTIONAL))
    context |= {"changes": changes.history(contract), "changes_n": changes.LATEST}
    return render(request, "portal/contract.html", context)


# --- commissioning progress -------------------------------------------------------------------------


@require_GET
@tenant_required
def batch_progress(request, pk):
    """The progress bar alone, polled by htmx until the batch is done."""
    batch = get_object_or_404(_batches(request.user), pk=pk)
    return render(request, "portal/_progress.html", {"batch": batch})


# --- quotes ---------------------------------------------------------------------------------------


def _quotes(user):
    return Quote.objects.visible_to(user).select_related("machine_model", "tenant", "hold", "accepted_site")


@require_http_methods(["GET", "POST"])
@tenant_required
def quotes_list(request):
    form = QuoteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        unsaved = quotes.new_request(
            form.cleaned_data, requester=request.user, contact_email=request.user.email or "",
            client_ip=request.META.get("REMOTE_ADDR"),
        )  # fmt: skip
        try:
            quote = quotes.request_quote(unsaved)
        except Refusal as refused:
            form.add_error(None, describe(refused))
        else:
            return redirect("portal:quote", pk=quote.pk)
    page = paginate(request, _quotes(request.user).order_by("-created_at"))
    return render(request, "portal/quotes.html", {"form": form, "page": page})


@require_GET
@tenant_required
def quote(request, pk):
    quote = get_object_or_404(_quotes(request.user), pk=pk)
    names = _site_names()
    options = [
        {**o, "site_name": names.get(o["site"], o["site"])} for o in quoting.with_levies(quote.options, quote.it_kw)
    ]
    context = {"quote": quote, "options": options, "position": quotes.waitlist_position(quote)}
    # Holding capacity is a request of the tenant's (Action.REQUEST: owners and operators).
    context["tenants"] = request.user.tenants.filter(pk__in=tenants_where(request.user, Action.REQUEST))
    return render(request, "portal/quote.html", context)


@require_POST
@tenant_required
def quote_accept(request, pk):
    quote = get_object_or_404(_quotes(request.user), pk=pk)
    site = request.POST.get("site", "")
    try:
        tenant = quotes.tenant_for(request.user, request.POST.get("tenant") or None)
        if not may(request.user, tenant, Action.REQUEST):
            return forbidden(request, tenant, Action.REQUEST)
        quotes.accept(quote, site_slug=site, tenant=tenant)
    except (Refusal, ValidationError) as refused:
        messages.error(request, f"Not held: {describe(refused)}")
    else:
        name = _site_names().get(site, site)
        messages.success(request, f"Capacity held at {name}: staff will turn it into a contract.")
    return redirect("portal:quote", pk=quote.pk)


# --- logging out ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def logout(request):
    """POST (with the CSRF token) logs out; a GET — a bookmark, a typed address — asks first,
    with the form that does it, instead of a bare 405."""
    if request.method == "POST":
        return auth_views.LogoutView.as_view()(request)
    return render(request, "portal/logout.html")


# --- API tokens --------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@tenant_required
def tokens(request):
    """One's own API tokens. Issuing one is an owner's (Action.MANAGE_TOKENS): a token acts
    with its user's role in each tenant, so an operator's or a viewer's would add nothing
    they could not do — and an owner's acts as a viewer where its user is one."""
    may_issue = may_somewhere(request.user, Action.MANAGE_TOKENS)
    if request.method == "POST" and not may_issue:
        return forbidden(request, None, Action.MANAGE_TOKENS)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _, key = ApiToken.issue(request.user, form.cleaned_data["name"])
        messages.warning(request, f"Your new token: {key} — copy it now, it is not shown again.")
        return redirect("portal:tokens")
    mine = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    return render(request, "portal/tokens.html", {"form": form, "tokens": mine, "may_issue": may_issue})


@require_POST
@tenant_required
def token_revoke(request, pk):
    """Revoking is an owner's too (the token is looked up among one's own: another's is 404)."""
    token = get_object_or_404(ApiToken.objects.live().filter(user=request.user), pk=pk)
    if not may_somewhere(request.user, Action.MANAGE_TOKENS):
        return forbidden(request, None, Action.MANAGE_TOKENS)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect(reverse("portal:tokens"))
