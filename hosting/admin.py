"""Staff admin for the commercial side. Status changes are actions that call
hosting.services; the fields they own are read-only on the forms."""

import ipaddress

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from capacity.adminutils import PageFiguresAdmin, ReadOnlyAdmin, ReadOnlyInline, run_each
from capacity.errors import Refusal, describe
from capacity.models import Site
from hosting import quotes, services
from hosting.commissioning import runs
from hosting.lifecycle import ContractStatus, MachineStatus
from hosting.models import (
    ApiToken,
    CheckResult,
    CommissioningBatch,
    CommissioningPolicy,
    Contract,
    Machine,
    MachineEvent,
    MachineModel,
    MachineRequest,
    Membership,
    Quote,
    Sample,
    SelfTestRun,
    Shipment,
    SitePricing,
    Tenant,
    TermDiscount,
)
from hosting.staff import actions as staff_actions

admin.site.site_header = "Haven — hosting staff"
admin.site.site_title = "Haven"
admin.site.index_title = "Capacity, contracts and machines"
admin.site.site_url = "/staff/"  # "View site": the staff dashboards


def with_reason(modeladmin, request, queryset, *, title: str, apply, done: str):
    """An action that needs a reason from staff (declining tells someone why): the first
    POST shows a page asking for it, the second — with a reason — applies `apply(obj,
    reason)` to each selected object through `run_each`."""
    reason = request.POST.get("reason", "").strip()
    if "apply" in request.POST and reason:
        run_each(modeladmin, request, queryset, lambda obj: apply(obj, reason), done)
        return None
    if "apply" in request.POST:
        modeladmin.message_user(request, "Give a reason: it is sent to them.", messages.ERROR)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "objects": list(queryset),
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "checkbox_name": ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/hosting/with_reason.html", context)


class MembershipInline(admin.TabularInline):
    model = Membership
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Tenant)
class TenantAdmin(PageFiguresAdmin):
    list_display = ("name", "slug", "contact_email", "member_count", "contract_count", "machine_count")
    search_fields = ("name", "slug", "contact_email")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("memberships", distinct=True),
                contract_count=Count("contracts", distinct=True),
                machine_count=Count("machines", distinct=True),
            )
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, tenant):
        return tenant.member_count

    @admin.display(description="contracts", ordering="contract_count")
    def contract_count(self, tenant):
        return tenant.contract_count

    @admin.display(description="machines", ordering="machine_count")
    def machine_count(self, tenant):
        return tenant.machine_count


@admin.register(Membership)
class MembershipAdmin(PageFiguresAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    autocomplete_fields = ("user", "tenant")


@admin.register(MachineModel)
class MachineModelAdmin(PageFiguresAdmin):
    list_display = (
        "name",
        "vendor",
        "nominal_hashrate_ths",
        "nameplate_power_w",
        "efficiency",
        "hashboards",
        "chips_per_board",
        "fans",
        "max_chip_temp_c",
        "power_tolerance_pct",
    )
    list_filter = ("vendor",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="J/TH")
    def efficiency(self, model):
        return model.efficiency_j_per_th


@admin.register(Contract)
class ContractAdmin(PageFiguresAdmin):
    list_display = (
        "__str__",
        "tenant",
        "site",
        "it_kw",
        "machine_count",
        "rate_usd_per_kwh",
        "starts_on",
        "ends_on",
        "status",
        "machines_on_floor",
    )
    list_filter = ("status", "site", "tenant")
    list_select_related = ("tenant", "site")
    search_fields = ("tenant__name", "tenant__slug", "site__slug")
    autocomplete_fields = ("tenant", "site")
    date_hierarchy = "starts_on"
    actions = ["sign", "activate", "end"]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(on_floor=Count("machines", filter=Q(machines__slot__isnull=False)))
        )

    @admin.display(description="machines in slots", ordering="on_floor")
    def machines_on_floor(self, contract):
        return contract.on_floor

    def get_readonly_fields(self, request, obj=None):
        owned = ("status", "reservation", "signed_at", "signed_by")
        if obj is not None and obj.status != ContractStatus.DRAFT:
            # The booked terms are what the ledger holds; change them by a new contract.
            return (*owned, "tenant", "site", "it_kw", "starts_on", "ends_on")
        return owned

    @admin.action(description="Sign (book the capacity firm)", permissions=["change"])
    def sign(self, request, queryset):
        run_each(self, request, queryset, lambda c: services.sign_contract(c, by=request.user), "Signed")

    @admin.action(description="Activate", permissions=["change"])
    def activate(self, request, queryset):
        run_each(self, request, queryset, services.activate_contract, "Activated")

    @admin.action(description="End (release the capacity)", permissions=["change"])
    def end(self, request, queryset):
        run_each(self, request, queryset, services.end_contract, "Ended")


class MachineEventInline(ReadOnlyInline):
    model = MachineEvent
    fields = ("at", "from_status", "to_status", "by", "reason")
    ordering = ("-at", "-pk")


def _move(to_status: str, description: str):
    @admin.action(description=description, permissions=["change"])
    def action(modeladmin, request, queryset):
        run_each(
            modeladmin,
            request,
            queryset,
            lambda m: services.transition(m, to_status, by=request.user, reason="admin action"),
            f"Moved to {to_status}",
        )

    action.__name__ = f"move_to_{to_status}"
    return action


@admin.register(Machine)
class MachineAdmin(PageFiguresAdmin):
    list_display = ("serial", "tenant", "model", "status", "site", "slot", "ip", "mac", "status_changed_at")
    list_filter = ("status", "contract__site", "model", "tenant")
    list_select_related = ("tenant", "model", "contract__site", "slot__rack__site")
    search_fields = ("=serial", "mac", "=ip", "tenant__name")
    autocomplete_fields = ("tenant", "contract", "model")
    readonly_fields = ("status", "slot", "status_changed_at")
    inlines = [MachineEventInline]
    actions = [
        _move(MachineStatus.IN_TRANSIT, "Mark in transit"),
        _move(MachineStatus.RECEIVED, "Mark received (unracks a racked machine)"),
        "rack",
        "commission",
        _move(MachineStatus.RMA, "Send for RMA"),
        _move(MachineStatus.RETURNED, "Mark returned to the tenant"),
    ]

    @admin.display(description="site", ordering="contract__site__slug")
    def site(self, machine):
        return machine.contract.site.slug

    @admin.action(description="Commission: run the self-test (one batch)", permissions=["change"])
    def commission(self, request, queryset):
        try:
            batch = runs.start_batch(list(queryset), label="admin selection", by=request.user)
        except (Refusal, ValidationError) as exc:
            self.message_user(request, describe(exc), messages.ERROR)
        else:
            self.message_user(request, f"Self-tests queued: batch {batch}.", messages.SUCCESS)

    @admin.action(description="Rack into free slots with their IPs (the planner chooses)", permissions=["change"])
    def rack(self, request, queryset):
        """First a page asking each machine's IP (blank: it waits for the site's DHCP lease
        list), then the racking itself."""
        machines = list(queryset.select_related("contract__site", "model").order_by("pk")[:RACK_AT_ONCE])
        if "apply" not in request.POST:
            suggested = _suggest_ips(machines)
            rows = [(m, request.POST.get(f"ip_{m.pk}", m.ip or suggested.get(m.pk, ""))) for m in machines]
            context = {
                **self.admin_site.each_context(request),
                "title": "Rack machines",
                "opts": self.model._meta,
                "rows": rows,
                "more": queryset.count() - len(machines),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/hosting/machine/rack.html", context)
        ips = {m.pk: request.POST.get(f"ip_{m.pk}", "").strip() for m in machines}
        try:
            racked = services.rack_machines(machines, by=request.user, ips=ips)
        except (Refusal, ValidationError) as exc:
            self.message_user(request, describe(exc), messages.ERROR)
        else:
            waiting = sum(1 for m in racked if not m.ip)
            note = f" {waiting} wait for an IP before their self-test (import the DHCP leases)." if waiting else ""
            self.message_user(request, f"Racked: {len(racked)}.{note}", messages.SUCCESS)
        return None

    def save_model(self, request, obj, form, change):
        if change and "ip" in form.changed_data:
            ip, obj.ip = obj.ip, form.initial.get("ip")  # the address goes through the service
            super().save_model(request, obj, form, change)
            try:
                obj.ip = services.set_ip(obj, ip, by=request.user).ip
            except Refusal as exc:
                self.message_user(request, f"IP not changed: {describe(exc)}", messages.ERROR)
            return
        super().save_model(request, obj, form, change)

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_leases_view)
        return [path("import-leases/", view, name="hosting_machine_import_leases"), *super().get_urls()]

    def import_leases_view(self, request):
        """Upload a site's DHCP lease list (dhcpd.leases or MAC,IP CSV): each machine gets its IP by MAC."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = LeasesForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            site, content = form.cleaned_data["site"], form.cleaned_data["file"].read()
            result = services.import_leases(site, content, by=request.user)
            self.message_user(request, result, messages.SUCCESS)
            return redirect("admin:hosting_machine_changelist")
        context = {**self.admin_site.each_context(request), "title": "Import DHCP leases", "form": form,
                   "opts": self.model._meta}  # fmt: skip
        return TemplateResponse(request, "admin/hosting/machine/import_leases.html", context)


RACK_AT_ONCE = 500  # machines one rack page asks IPs for


def _suggest_ips(machines: list[Machine]) -> dict[int, str]:
    """The next free addresses after the highest one in use at each machine's site: staff
    usually rack along the site's address plan."""
    suggested: dict[int, str] = {}
    by_site: dict[int, list[Machine]] = {}
    for m in machines:
        if not m.ip:
            by_site.setdefault(m.contract.site_id, []).append(m)
    for site_id, group in by_site.items():
        used = {
            ipaddress.IPv4Address(ip)
            for ip in Machine.objects.filter(contract__site_id=site_id, ip__isnull=False).values_list("ip", flat=True)
        }
        if not used:
            continue
        candidate = max(used)
        for m in group:
            candidate += 1
            while candidate in used or int(candidate) & 0xFF in (0, 255):
                candidate += 1
            suggested[m.pk] = str(candidate)
    return suggested


class LeasesForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.order_by("name"))
    file = forms.FileField(help_text="ISC dhcpd.leases, or a CSV of MAC,IP")


@admin.register(MachineEvent)
class MachineEventAdmin(ReadOnlyAdmin):
    """The lifecycle history is evidence: read-only."""

    list_display = ("machine", "from_status", "to_status", "at", "by", "reason")
    list_filter = ("to_status",)
    list_select_related = ("machine__model", "by")
    search_fields = ("=machine__serial",)
    date_hierarchy = "at"


# --- API tokens, pricing, quotes --------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(PageFiguresAdmin):
    """Staff issue tokens here (the key is shown once) and revoke them."""

    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("prefix", "name", "user__username", "user__email")
    autocomplete_fields = ("user",)
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        return (
            ("user", "name") if obj is None else ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("user", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        token, key = ApiToken.issue(obj.user, obj.name)
        obj.pk = token.pk
        self.message_user(
            request,
            f"Token for {obj.user}: {key}  — copy it now, it is not shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.live().update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked: {count}.", messages.SUCCESS)


@admin.register(SitePricing)
class SitePricingAdmin(PageFiguresAdmin):
    list_display = ("site", "list_rate_usd_per_kwh", "setup_usd_per_machine")
    list_select_related = ("site",)
    search_fields = ("site__name", "site__slug")
    autocomplete_fields = ("site",)


@admin.register(TermDiscount)
class TermDiscountAdmin(PageFiguresAdmin):
    list_display = ("min_term_months", "discount_pct")


OFFER_COLUMNS = (
    "rank",
    "site",
    "available_from",
    "rate_usd_per_kwh",
    "monthly_usd",
    "setup_usd",
    "circuits",
    "slots",
    "slots_free_now",
)


@admin.register(Quote)
class QuoteAdmin(PageFiguresAdmin):
    """Quotes arrive through the API and the portal; staff read them and contract the accepted."""

    list_display = (
        "__str__",
        "status",
        "it_kw",
        "machine_model",
        "quantity",
        "start_on",
        "term_months",
        "contact_email",
        "tenant",
        "valid_until",
        "created_at",
    )
    list_filter = ("status", "machine_model")
    list_select_related = ("machine_model", "tenant")
    search_fields = ("=id", "contact_email", "tenant__name")
    date_hierarchy = "created_at"
    actions = ["make_contract", "decline"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [*(f.name for f in Quote._meta.concrete_fields if f.name != "options"), "offers"]

    def get_exclude(self, request, obj=None):
        return ["options"]

    @admin.display(description="options")
    def offers(self, quote):
        header = format_html("<tr>{}</tr>", format_html_join("", "<th>{}</th>", ((c,) for c in OFFER_COLUMNS)))
        rows = format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((o[c],) for c in OFFER_COLUMNS)),) for o in quote.options),
        )
        return format_html("<table>{}{}</table>", header, rows) if quote.options else "—"

    @admin.action(description="Decline waitlisted quotes (the requester is e-mailed why)…", permissions=["change"])
    def decline(self, request, queryset):
        return with_reason(
            self, request, queryset, title="Decline waitlisted quotes", done="Declined",
            apply=lambda quote, reason: quotes.decline(quote, reason=reason, by=request.user),
        )  # fmt: skip

    @admin.action(
        description="Make a signed contract of each accepted quote (its hold goes firm)", permissions=["change"]
    )
    def make_contract(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda q: quotes.contract_from_quote(q, by=request.user),
            "Contracts signed",
        )


# --- commissioning ---------------------------------------------------------------------------


@admin.register(CommissioningPolicy)
class CommissioningPolicyAdmin(PageFiguresAdmin):
    list_display = (
        "site",
        "burn_in_s",
        "sample_interval_s",
        "probe_timeout_s",
        "min_fan_rpm",
        "unmetered",
        "max_concurrent_tests",
        "max_tests_per_circuit",
        "commission_when_racked",
    )
    list_select_related = ("site",)
    autocomplete_fields = ("site",)


class CheckResultInline(ReadOnlyInline):
    model = CheckResult
    fields = ("name", "passed", "reasons", "measurements")


class SampleInline(ReadOnlyInline):
    model = Sample
    fields = (
        "seq",
        "taken_at",
        "reachable",
        "hashrate_ths",
        "power_w",
        "outlet_w",
        "inlet_temp_c",
        "boards",
        "fans_rpm",
        "errors",
    )


@admin.register(SelfTestRun)
class SelfTestRunAdmin(ReadOnlyAdmin):
    """Evidence: read-only. Re-run a failed machine with the Machine action "Commission"."""

    list_display = ("__str__", "machine", "status", "attempt", "batch", "created_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("machine__model", "batch")
    search_fields = ("=machine__serial",)
    date_hierarchy = "created_at"
    inlines = [CheckResultInline, SampleInline]


@admin.register(CommissioningBatch)
class CommissioningBatchAdmin(PageFiguresAdmin):
    list_display = ("__str__", "source", "tenant", "contract", "created_at", "queued", "testing", "passed", "failed")
    list_filter = ("source",)
    list_select_related = ("tenant", "contract__tenant", "contract__site")
    search_fields = ("label", "tenant__name")

    def get_queryset(self, request):
        return super().get_queryset(request).with_progress()

    @admin.display(ordering="n_queued")
    def queued(self, batch):
        return batch.n_queued

    @admin.display(ordering="n_testing")
    def testing(self, batch):
        return batch.n_testing

    @admin.display(ordering="n_passed")
    def passed(self, batch):
        return batch.n_passed

    @admin.display(ordering="n_failed")
    def failed(self, batch):
        return batch.n_failed

    def has_add_permission(self, request):
        return False


@admin.register(Shipment)
class ShipmentAdmin(PageFiguresAdmin):
    """Tenants' packing lists: what is on its way, with whom; staff may correct the carrier or
    the tracking number (the machines' statuses move through the machine actions)."""

    list_display = ("__str__", "tenant", "contract", "carrier", "tracking", "machines_n", "created_at")
    list_filter = ("carrier",)
    list_select_related = ("tenant", "contract__tenant", "contract__site")
    search_fields = ("reference", "=tracking_number", "tenant__name")
    date_hierarchy = "created_at"
    fields = ("tenant", "contract", "reference", "carrier", "tracking_number", "uploaded_by", "created_at")
    readonly_fields = ("tenant", "contract", "uploaded_by", "created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(machines_n=Count("machines"))

    def has_add_permission(self, request):
        return False  # tenants upload packing lists in the portal

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="machines", ordering="machines_n")
    def machines_n(self, shipment):
        return shipment.machines_n

    @admin.display(description="tracking", ordering="tracking_number")
    def tracking(self, shipment):
        url = shipment.tracking_url
        if url:
            return format_html(
                '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', url, shipment.tracking_number
            )
        return shipment.tracking_number or "—"


@admin.register(MachineRequest)
class MachineRequestAdmin(PageFiguresAdmin):
    """What tenants ask for their machines; staff carry them out or decline them (actions)."""

    list_display = ("machine", "kind", "state", "tenant", "requested_by", "created_at", "resolved_at", "response")
    list_filter = ("state", "kind")
    list_select_related = ("machine__model", "machine__tenant", "requested_by")
    search_fields = ("=machine__serial", "machine__tenant__name", "note")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in MachineRequest._meta.concrete_fields]
    actions = ["carry_out", "decline"]

    def has_add_permission(self, request):
        return False  # tenants ask from the portal

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="tenant", ordering="machine__tenant__name")
    def tenant(self, ask):
        return ask.machine.tenant

    @admin.action(
        description="Do it: re-test starts the self-test, RMA sends the machine for repair", permissions=["change"]
    )
    def carry_out(self, request, queryset):
        run_each(self, request, queryset, lambda ask: staff_actions.carry_out(ask, by=request.user), "Done")

    @admin.action(description="Decline (the tenant reads why)…", permissions=["change"])
    def decline(self, request, queryset):
        return with_reason(
            self, request, queryset, title="Decline tenants' requests", done="Declined",
            apply=lambda ask, reason: staff_actions.decline_request(ask, by=request.user, reason=reason),
        )  # fmt: skip
