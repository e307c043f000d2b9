"""Webhook pages, shared by the portal (a tenant's owners: their tenants' subscriptions) and
the staff pages (every subscription, and site-wide ones): list and subscribe (the secret
shown once), one subscription with its delivery log, re-enable, replay, rotate, delete.
Someone who may not manage webhooks gets 403; another tenant's subscription is not found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosting.accounts import Action, tenants_where
from hosting.models import Tenant
from hosting.paging import paginate
from hosting.portal.views import tenant_required
from hosting.webhooks import services
from hosting.webhooks.models import Delivery, EventType, Subscription


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https")
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), required=False)

    def __init__(self, *args, tenants: QuerySet[Tenant], site_wide: bool, **kwargs):
        super().__init__(*args, **kwargs)
        tenant = self.fields["tenant"]
        assert isinstance(tenant, forms.ModelChoiceField)
        tenant.queryset = tenants
        self.only = None if site_wide or len(tenants) != 1 else tenants[0]
        if site_wide:
            tenant.empty_label = "the whole site (staff)"
        else:
            tenant.required = self.only is None
            tenant.empty_label = None
        self.show_tenant = site_wide or self.only is None

    def clean_tenant(self) -> Tenant | None:
        return self.only or self.cleaned_data.get("tenant")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            services.check_url(url)
        except services.WebhookRefusal as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


@dataclass(frozen=True)
class Face:
    namespace: str  # "portal" or "staff"
    base: str
    site_wide: bool  # may subscribe to the whole site's events

    def tenants(self, user) -> QuerySet[Tenant]:
        if self.site_wide:
            return Tenant.objects.order_by("name")
        return Tenant.objects.filter(pk__in=tenants_where(user, Action.MANAGE_WEBHOOKS)).order_by("name")

    def scope(self, user) -> QuerySet[Subscription]:
        rows = Subscription.objects.select_related("tenant")
        return rows if self.site_wide else rows.filter(tenant_id__in=tenants_where(user, Action.MANAGE_WEBHOOKS))

    def context(self, **extra) -> dict:
        return {"base": self.base, "ns": self.namespace, **extra}


PORTAL = Face("portal", "portal/base.html", site_wide=False)


def owners_only(view: Callable) -> Callable:
    @wraps(view)
    @tenant_required
    def wrapped(request, *args, **kwargs):
        if not tenants_where(request.user, Action.MANAGE_WEBHOOKS):
            raise PermissionDenied("Only a tenant's owners manage its webhooks.")
        return view(request, *args, **kwargs, face=PORTAL)

    return wrapped


def _secret_page(request, face: Face, subscription: Subscription, created: bool):
    return render(request, "webhooks/secret.html", face.context(subscription=subscription, created=created))


def list_page(request, face: Face):
    form = WebhookForm(request.POST or None, tenants=face.tenants(request.user), site_wide=face.site_wide)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        subscription = services.subscribe(
            tenant=data["tenant"], url=data["url"], events=data["events"],
            description=data["description"], by=request.user,
        )  # fmt: skip
        return _secret_page(request, face, subscription, created=True)
    page = paginate(request, face.scope(request.user).order_by("-created_at", "-pk"))
    status = 400 if request.method == "POST" else 200
    return render(request, "webhooks/list.html", face.context(form=form, page=page), status=status)


def detail_page(request, pk: int, face: Face):
    subscription = get_object_or_404(face.scope(request.user), pk=pk)
    rows = Delivery.objects.filter(subscription=subscription).select_related("event").order_by("-created_at", "-pk")
    labels = dict(EventType.choices)
    context = face.context(
        subscription=subscription, page=paginate(request, rows), events=[labels.get(e, e) for e in subscription.events]
    )
    return render(request, "webhooks/detail.html", context)


def act(request, pk: int, what: str, face: Face, delivery_id: int | None = None):
    subscription = get_object_or_404(face.scope(request.user), pk=pk)
    if what == "enable":
        try:
            services.enable(subscription)
            messages.success(request, "Re-enabled: deliveries that waited are being sent again.")
        except services.WebhookRefusal as exc:
            messages.error(request, str(exc))
    elif what == "rotate":
        return _secret_page(request, face, services.rotate_secret(subscription), created=False)
    elif what == "delete":
        subscription.delete()
        messages.success(request, f"Subscription for {subscription.url} deleted.")
        return redirect(f"{face.namespace}:webhooks")
    elif what == "replay":
        delivery = get_object_or_404(Delivery, pk=delivery_id, subscription=subscription)
        try:
            services.replay(delivery)
            messages.success(request, f"Event {delivery.event_id} is being sent again.")
        except services.WebhookRefusal as exc:
            messages.error(request, str(exc))
    return redirect(f"{face.namespace}:webhook", pk=subscription.pk)


# --- the portal's ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@owners_only
def webhooks(request, face: Face):
    return list_page(request, face)


@require_GET
@owners_only
def webhook(request, pk: int, face: Face):
    return detail_page(request, pk, face)


def _action(what: str) -> Callable:
    @require_POST
    @owners_only
    def view(request, pk: int, face: Face, delivery_id: int | None = None):
        return act(request, pk, what, face, delivery_id)

    return view


webhook_enable = _action("enable")
webhook_rotate = _action("rotate")
webhook_delete = _action("delete")
webhook_replay = _action("replay")
