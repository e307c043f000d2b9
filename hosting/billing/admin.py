from django.contrib import admin

from hosting.billing.models import (
    ContractTerms,
    FlatFee,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    Levy,
    Maintenance,
    SiteBilling,
)


class FlatFeeInline(admin.TabularInline):
    model = FlatFee
    extra = 0


@admin.register(ContractTerms)
class ContractTermsAdmin(admin.ModelAdmin):
    list_display = ["contract", "billing_mode", "billing_day", "payment_terms_days", "sla_target_pct", "sla_period"]
    list_filter = ["billing_mode", "sla_period", "contract__site"]
    search_fields = ["contract__tenant__name"]
    raw_id_fields = ["contract"]
    inlines = [FlatFeeInline]


@admin.register(SiteBilling)
class SiteBillingAdmin(admin.ModelAdmin):
    list_display = ["site", "currency"]


@admin.register(Levy)
class LevyAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "currency", "per_kwh", "effective_from", "effective_until"]
    list_filter = ["site"]


@admin.register(Maintenance)
class MaintenanceAdmin(admin.ModelAdmin):
    list_display = ["site", "starts_at", "ends_at", "announced_at", "notice_h", "reason", "cancelled_at"]
    list_filter = ["site"]
    readonly_fields = ["notice_h"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = fields = ("position", "kind", "description", "quantity", "unit", "unit_price", "amount")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Read-only: invoices change through the billing services (issue, pay, void, credit)."""

    list_display = ["__str__", "kind", "tenant", "site", "period_start", "status", "total_amount", "currency", "due_on"]
    list_filter = ["status", "kind", "site", "period_start"]
    search_fields = ["number", "tenant__name"]
    inlines = [InvoiceLineInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InvoiceRun)
class InvoiceRunAdmin(admin.ModelAdmin):
    list_display = ["on_date", "started_at", "finished_at", "contracts", "created", "unchanged", "failed"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False
