"""Admin plumbing shared by both apps: ledger-checked forms, per-page figures, cheap counts."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

from capacity.errors import Refusal, describe


class EstimatedCountPaginator(Paginator):
    """Unfiltered lists of big PostgreSQL tables take their total from planner statistics.

    An exact COUNT(*) of 750 k slots is a sequential scan on every page view; the
    estimate is free and close enough for "page 3 of ~3,000". Filtered lists and small
    tables are still counted exactly.
    """

    ESTIMATE_ABOVE = 100_000

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list  # a QuerySet whenever `query` is there
        query = getattr(queryset, "query", None)
        if query is not None and not query.where and connections[queryset.db].vendor == "postgresql":
            with connections[queryset.db].cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > self.ESTIMATE_ABOVE:
                return int(row[0])
        return super().count


class PageFiguresChangeList(ChangeList):
    """Lets a ModelAdmin compute figures for the rows of one page in a fixed number of queries."""

    def get_results(self, request):
        super().get_results(request)
        self.model_admin.prepare_page(list(self.result_list))


class PageFiguresAdmin(admin.ModelAdmin):
    """Base admin: per-page figures hook, select_related lists, cheap counts on big tables."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def get_changelist(self, request, **kwargs):
        return PageFiguresChangeList

    def prepare_page(self, rows: list) -> None:
        """Attach figures to the rows about to be shown; override to batch-load them."""


class ReadOnlyAdmin(PageFiguresAdmin):
    """Evidence and history: shown, never added, edited or deleted by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their parent's page, changed elsewhere (or never)."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class LedgerCheckedForm(forms.ModelForm):
    """Runs the ledger's check for the edited object while the form validates.

    The check takes the ledger's row lock inside the admin's per-request transaction,
    so the lock is still held when `save_model` repeats the check and writes: a refusal
    shows on the form, and nothing slips in between. `LedgerSavedAdmin` supplies
    `ledger_save`.
    """

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return
        try:
            self.ledger_save(self.instance, dry_run=True)
        except Refusal as exc:
            self.add_error(None, str(exc))
        except ValidationError as exc:
            self.add_error(None, exc)


class LedgerSavedAdmin(PageFiguresAdmin):
    """An admin whose saves go through a ledger function, checked first on the form."""

    form = LedgerCheckedForm

    def ledger_save(self, obj, *, dry_run: bool = False) -> None:
        raise NotImplementedError

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.ledger_save = staticmethod(self.ledger_save)  # a fresh class per call: safe to set
        return form

    def save_model(self, request, obj, form, change):
        self.ledger_save(obj)


def run_each(modeladmin: admin.ModelAdmin, request, objects, action, done: str) -> None:
    """Apply a service function to each selected object, each in its own transaction, and
    report every refusal by name; the others still go through."""
    succeeded = 0
    for obj in objects:
        try:
            action(obj)
        except (Refusal, ValidationError) as exc:
            modeladmin.message_user(request, f"{obj}: {describe(exc)}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded}.", messages.SUCCESS)
