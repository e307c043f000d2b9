"""Staff admin for the physical side. Every change that can strand a reservation or
overload a circuit goes through capacity.ledger; figures are batch-loaded per page."""

from decimal import Decimal

from django.contrib import admin
from django.db.models import Count
from django.utils import timezone

from capacity import errors, ledger, power
from capacity.adminutils import LedgerSavedAdmin, PageFiguresAdmin, ReadOnlyInline, run_each
from capacity.models import Circuit, EnergizationPhase, Pdu, PowerFeed, Rack, Reservation, Site, Slot

# --- Sites and phases ----------------------------------------------------------------


class PhaseInline(ReadOnlyInline):
    """Read-only here: phases change through their own admin, which checks the ledger."""

    model = EnergizationPhase
    fields = ("name", "energized_on", "mw")
    show_change_link = True


@admin.register(Site)
class SiteAdmin(LedgerSavedAdmin):
    list_display = (
        "name",
        "slug",
        "country",
        "region",
        "cooling",
        "pue",
        "status",
        "energized_mw_today",
        "committed_kw_today",
        "headroom_kw_today",
    )
    list_filter = ("status", "cooling", "country")
    search_fields = ("name", "slug", "region")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PhaseInline]

    def prepare_page(self, rows):
        now = timezone.now()
        books = ledger.load_books(rows, now)
        for site in rows:
            site.book, site.book_day = books[site.pk], site.today(now)

    def _book(self, site) -> tuple[power.SiteBook, object]:
        if not hasattr(site, "book"):  # the change form shows one site
            self.prepare_page([site])
        return site.book, site.book_day

    @admin.display(description="energized today")
    def energized_mw_today(self, site):
        book, day = self._book(site)
        return f"{book.budget_kw(day) / power.KW_PER_MW:,.1f} MW"

    @admin.display(description="committed IT today")
    def committed_kw_today(self, site):
        book, day = self._book(site)
        return errors.fmt_kw(book.committed_kw(day))

    @admin.display(description="free IT today")
    def headroom_kw_today(self, site):
        book, day = self._book(site)
        return errors.fmt_kw(book.headroom_kw(day))

    def get_readonly_fields(self, request, obj=None):
        return ("energized_mw_today", "committed_kw_today", "headroom_kw_today") if obj else ()

    RECEIVING = ("ship_to_address", "receiving_hours", "receiving_dock", "customs_notes", "receiving_contact")

    def get_fieldsets(self, request, obj=None):
        """Every field as Django lays them out, the ship-to and receiving ones apart."""
        ((_, options),) = super().get_fieldsets(request, obj)
        rest = [f for f in options["fields"] if f not in self.RECEIVING]
        receiving = {
            "fields": self.RECEIVING,
            "description": "Shown to the site's tenants on each contract page, where they send machines.",
        }
        return [(None, {"fields": rest}), ("Ship-to and receiving", receiving)]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        site = self.get_object(request, object_id)
        if site is not None:
            book, day = self._book(site)
            extra_context = {
                **(extra_context or {}),
                "capacity_timeline": [
                    {
                        "starts_on": s.starts_on,
                        "ends_on": s.ends_on,
                        "budget_mw": s.budget_kw / power.KW_PER_MW,
                        "committed_kw": s.committed_kw,
                        "headroom_kw": s.headroom_kw(book.pue),
                    }
                    for s in book.timeline(day).segments
                ],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def ledger_save(self, obj, *, dry_run=False):
        ledger.save_site(obj, dry_run=dry_run)


@admin.register(EnergizationPhase)
class EnergizationPhaseAdmin(LedgerSavedAdmin):
    list_display = ("site", "name", "energized_on", "mw")
    list_filter = ("site",)
    list_select_related = ("site",)
    search_fields = ("name", "site__name", "site__slug")
    autocomplete_fields = ("site",)
    date_hierarchy = "energized_on"
    actions = ["cancel_phases"]

    def has_delete_permission(self, request, obj=None):
        return False  # a phase is removed with "cancel", which checks the reservations still fit

    def ledger_save(self, obj, *, dry_run=False):
        ledger.save_phase(obj, dry_run=dry_run)

    @admin.action(description="Cancel selected phases (if reservations still fit)", permissions=["change"])
    def cancel_phases(self, request, queryset):
        run_each(self, request, queryset, ledger.cancel_phase, "Phases cancelled")


# --- Power chain -------------------------------------------------------------------------


@admin.register(PowerFeed)
class PowerFeedAdmin(LedgerSavedAdmin):
    list_display = ("name", "site", "rating_kva", "load", "circuit_count")
    list_filter = ("site",)
    list_select_related = ("site",)
    search_fields = ("name", "site__name", "site__slug")
    autocomplete_fields = ("site",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(circuit_count=Count("circuits"))

    def prepare_page(self, rows):
        loads = ledger.feed_loads_va([f.pk for f in rows])
        for feed in rows:
            feed.load_va = loads.get(feed.pk, Decimal(0))

    @admin.display(description="load / rating")
    def load(self, feed):
        if not hasattr(feed, "load_va"):
            self.prepare_page([feed])
        return f"{feed.load_va / 1000:,.0f} / {feed.rating_kva:,} kVA ({feed.load_va / feed.rating_va:.0%})"

    @admin.display(description="circuits", ordering="circuit_count")
    def circuit_count(self, feed):
        return feed.circuit_count

    def ledger_save(self, obj, *, dry_run=False):
        ledger.save_feed(obj, dry_run=dry_run)


@admin.register(Circuit)
class CircuitAdmin(LedgerSavedAdmin):
    list_display = ("name", "feed", "voltage_v", "phases", "breaker_amps", "power_factor", "load", "pdu")
    list_filter = ("feed__site", "phases", "voltage_v")
    list_select_related = ("feed__site", "pdu__site")
    search_fields = ("name", "feed__name", "feed__site__slug")
    autocomplete_fields = ("feed", "pdu")
    readonly_fields = ("load",)

    def get_queryset(self, request):
        return super().get_queryset(request).with_load()

    @admin.display(description="load / usable", ordering="load_w")
    def load(self, circuit):
        if circuit.pk is None:
            return "—"
        usable = circuit.usable_w
        return f"{circuit.load_w:,} / {usable:,} W ({circuit.load_w / usable:.0%})"

    def ledger_save(self, obj, *, dry_run=False):
        ledger.save_circuit(obj, dry_run=dry_run)


# --- Racks and slots ---------------------------------------------------------------------


class SlotInline(admin.TabularInline):
    model = Slot
    fields = ("position", "circuit", "outlet", "allocated_w", "occupant")
    readonly_fields = ("allocated_w", "occupant")
    autocomplete_fields = ("circuit",)
    extra = 0
    show_change_link = True


@admin.register(Rack)
class RackAdmin(PageFiguresAdmin):
    list_display = ("name", "site", "row", "feed", "slots")
    list_filter = ("site", "row")
    list_select_related = ("site", "feed__site")
    search_fields = ("name", "row", "site__slug")
    autocomplete_fields = ("site", "feed")
    inlines = [SlotInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_occupancy()

    @admin.display(description="slots used / total", ordering="slots_used")
    def slots(self, rack):
        return f"{rack.slots_used} / {rack.slots_total}"


class OccupiedFilter(admin.SimpleListFilter):
    title = "occupancy"
    parameter_name = "occupied"

    def lookups(self, request, model_admin):
        return [("yes", "occupied"), ("no", "free")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(occupant__isnull=self.value() == "no")
        return queryset


@admin.register(Slot)
class SlotAdmin(PageFiguresAdmin):
    list_display = ("__str__", "rack", "position", "circuit", "outlet", "allocated_w", "occupant")
    list_filter = (OccupiedFilter, "rack__site")
    list_select_related = ("rack__site", "circuit__feed__site")
    search_fields = ("rack__name", "occupant")
    autocomplete_fields = ("rack", "circuit")
    readonly_fields = ("allocated_w", "occupant")  # written only by the ledger
    ordering = ("rack", "position")


# --- Reservations ------------------------------------------------------------------------


class ReservationStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("counting", "counting"), ("expired", "expired hold"), ("released", "released")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "counting":
            return queryset.active(now)
        if self.value() == "expired":
            return queryset.filter(kind=Reservation.Kind.HOLD, released_at__isnull=True, expires_at__lte=now)
        if self.value() == "released":
            return queryset.filter(released_at__isnull=False)
        return queryset


@admin.register(Reservation)
class ReservationAdmin(LedgerSavedAdmin):
    """Reservations are booked through the ledger and never edited: release and book again."""

    booking_fields = ("site", "it_kw", "starts_on", "ends_on", "kind", "expires_at", "reference")
    list_display = ("reference", "site", "kind", "it_kw", "starts_on", "ends_on", "expires_at", "released_at")
    list_filter = (ReservationStateFilter, "kind", "site")
    list_select_related = ("site",)
    search_fields = ("reference", "site__slug")
    autocomplete_fields = ("site",)
    date_hierarchy = "starts_on"
    actions = ["release_reservations"]

    def get_fields(self, request, obj=None):
        return self.booking_fields if obj is None else (*self.booking_fields, "released_at", "created_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def ledger_save(self, obj, *, dry_run=False):
        if obj.pk is not None:
            return  # every field is read-only once booked
        booked = ledger.reserve(
            obj.site_id,
            it_kw=obj.it_kw,
            starts_on=obj.starts_on,
            ends_on=obj.ends_on,
            kind=obj.kind,
            reference=obj.reference,
            expires_at=obj.expires_at,
            dry_run=dry_run,
        )
        if booked is not None:
            obj.pk = booked.pk
            obj.refresh_from_db()

    @admin.action(description="Release selected reservations", permissions=["change"])
    def release_reservations(self, request, queryset):
        run_each(self, request, queryset, ledger.release, "Reservations released")


@admin.register(Pdu)
class PduAdmin(PageFiguresAdmin):
    list_display = ("name", "site", "host", "port", "profile", "circuit_count")
    list_filter = ("site", "profile")
    list_select_related = ("site",)
    search_fields = ("name", "host", "site__slug")
    autocomplete_fields = ("site",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(circuit_count=Count("circuits"))

    @admin.display(description="circuits", ordering="circuit_count")
    def circuit_count(self, pdu):
        return pdu.circuit_count
