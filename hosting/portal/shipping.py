"""Shipping help in the portal: the packing-list template and the model list to download,
the shipments and each one's machines with the carrier's tracking link, and editing or
cancelling machines that have not arrived (hosting.shipping holds the rules).

Everything is read through `visible_to` (another tenant's shipment or machine is a 404);
changing a machine needs `Action.SHIP` (a viewer gets 403)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosting import shipping
from hosting.accounts import Action, may
from hosting.exports import csv_response
from hosting.lifecycle import AWAITING_ARRIVAL, GONE
from hosting.models import Machine, Shipment
from hosting.paging import paginate
from hosting.portal.forms import CancelMachineForm, MachineEditForm, TrackingForm
from hosting.portal.views import tenant_required


@require_GET
@tenant_required
def packing_template(request):
    """A packing list to fill in: the header `hosting.packing` reads and one example row."""
    return csv_response("packing-list-template.csv", shipping.TEMPLATE_HEADER, shipping.template_rows())


@require_GET
@tenant_required
def model_list(request):
    """The machine catalog as a packing list accepts it, with the nameplate figures."""
    return csv_response("machine-models.csv", shipping.MODEL_LIST_HEADER, shipping.model_list_rows())


def _shipments(user):
    gone = Q(machines__status__in=sorted(GONE))
    return (
        Shipment.objects.visible_to(user)
        .select_related("contract__site")
        .annotate(machines_n=Count("machines", filter=~gone), cancelled_n=Count("machines", filter=gone))
    )


@require_GET
@tenant_required
def shipments(request):
    page = paginate(request, _shipments(request.user).order_by("-created_at", "-pk"))
    return render(request, "portal/shipments.html", {"page": page})


@require_GET
@tenant_required
def shipment(request, pk):
    shipment = get_object_or_404(_shipments(request.user), pk=pk)
    machines = shipment.machines.select_related("model").order_by("serial", "pk")
    context = {
        "shipment": shipment,
        "page": paginate(request, machines),
        "may_ship": may(request.user, shipment.tenant_id, Action.SHIP),
        "awaiting": sorted(AWAITING_ARRIVAL),
        "on_its_way": shipment.machines.filter(status__in=sorted(AWAITING_ARRIVAL)).exists(),
        "tracking_form": TrackingForm(
            initial={"carrier": shipment.carrier, "tracking_number": shipment.tracking_number}
        ),
    }
    return render(request, "portal/shipment.html", context)


@require_POST
@tenant_required
def shipment_tracking(request, pk):
    """Give the shipment its carrier and tracking number: its announced machines are in transit."""
    shipment = get_object_or_404(Shipment.objects.visible_to(request.user), pk=pk)
    if not may(request.user, shipment.tenant_id, Action.SHIP):
        raise PermissionDenied("Your role may not change shipments.")
    form = TrackingForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not changed: " + " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("portal:shipment", pk=shipment.pk)
    try:
        moved = shipping.set_tracking(shipment, **form.cleaned_data, by=request.user)
    except (shipping.NotEditable, shipping.EditInvalid) as refused:
        messages.error(request, f"Not changed: {refused}")
    else:
        messages.success(request, f"Tracking saved: {moved} announced machine(s) now in transit.")
    return redirect("portal:shipment", pk=shipment.pk)


def _machine_to_change(request, pk) -> Machine:
    """The user's own machine (else 404) that the user may ship for (else 403)."""
    machine = get_object_or_404(Machine.objects.visible_to(request.user).select_related("model", "shipment"), pk=pk)
    if not may(request.user, machine.tenant_id, Action.SHIP):
        raise PermissionDenied("Your role may not change machines.")
    return machine


def _back(machine: Machine):
    return (
        redirect("portal:shipment", pk=machine.shipment_id)
        if machine.shipment_id
        else redirect("portal:machine", pk=machine.pk)
    )


@require_http_methods(["GET", "POST"])
@tenant_required
def machine_edit(request, pk):
    machine = _machine_to_change(request, pk)
    if machine.status not in AWAITING_ARRIVAL:
        messages.error(request, f"Not changed: {shipping.not_editable_message(machine, 'edited')}")
        return redirect("portal:machine", pk=machine.pk)
    initial = {"serial": machine.serial, "mac": machine.mac, "model": machine.model, "notes": machine.notes}
    form = MachineEditForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        edit = shipping.Edit(data["serial"], data["mac"], data["model"].slug, data["notes"])
        try:
            machine = shipping.edit_machine(machine, edit)
        except shipping.NotEditable as refused:
            messages.error(request, f"Not changed: {refused}")
            return redirect("portal:machine", pk=machine.pk)
        except shipping.EditInvalid as refused:
            for field, errors in refused.errors.items():
                for error in errors:
                    form.add_error(None if field not in form.fields else field, error)
        else:
            messages.success(request, f"{machine} updated.")
            return _back(machine)
    return render(request, "portal/machine_edit.html", {"machine": machine, "form": form})


@require_http_methods(["GET", "POST"])
@tenant_required
def machine_cancel(request, pk):
    machine = _machine_to_change(request, pk)
    if machine.status not in AWAITING_ARRIVAL:
        messages.error(request, f"Not cancelled: {shipping.not_editable_message(machine, 'cancelled')}")
        return redirect("portal:machine", pk=machine.pk)
    form = CancelMachineForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            machine = shipping.cancel_machine(machine, by=request.user, reason=form.cleaned_data["reason"])
        except shipping.NotEditable as refused:
            messages.error(request, f"Not cancelled: {refused}")
            return redirect("portal:machine", pk=machine.pk)
        messages.success(request, f"{machine} cancelled: its serial, MAC and kW are free again.")
        return _back(machine)
    return render(request, "portal/machine_cancel.html", {"machine": machine, "form": form})
