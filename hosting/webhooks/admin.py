"""Webhooks in the admin: subscriptions (made on the staff pages or the API, where the URL is
checked; re-enabled through the service) and their deliveries, read only — the log is
written by the deliveries themselves."""

from django.contrib import admin, messages

from hosting.webhooks import services
from hosting.webhooks.models import Attempt, Delivery, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "tenant", "enabled", "consecutive_failures", "created_at"]
    list_filter = ["enabled", "tenant"]
    search_fields = ["url", "description", "tenant__name"]
    list_select_related = ["tenant"]
    exclude = ["secret"]
    readonly_fields = [
        "url",
        "tenant",
        "enabled",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "created_by",
        "created_at",
    ]
    actions = ["re_enable"]

    def has_add_permission(self, request) -> bool:
        return False  # subscribed on the staff pages or the API, where the URL is checked

    @admin.action(description="Re-enable (retry what waited)")
    def re_enable(self, request, queryset):
        for subscription in queryset.filter(enabled=False):
            try:
                services.enable(subscription)
            except services.WebhookRefusal as exc:
                self.message_user(request, f"{subscription}: {exc}", messages.ERROR)


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "at", "response_status", "duration_ms", "error", "response_excerpt"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "subscription", "status", "attempts", "response_status", "duration_ms", "created_at"]
    list_filter = ["status", "event__type"]
    list_select_related = ["event", "subscription__tenant"]
    search_fields = ["subscription__url", "event__id"]
    inlines = [AttemptInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
