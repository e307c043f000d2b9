"""Staff's curtailment pages: each site's price against its strikes, its load and events, a
form for a new event, the ERCOT price upload, and an event's page (timeline, chosen
machines, non-responders). Staff only; thin: reads in hosting.curtailment.reports.
"""

from __future__ import annotations

import datetime as dt
import logging

from django import forms
from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from capacity.models import Site
from hosting.curtailment import prices, reports, services, triggers
from hosting.curtailment.models import CurtailmentStatus, Event, Program, ProgramKind
from hosting.paging import paginate
from hosting.staff.curtailment_svg import event_chart
from hosting.staff.views import staff_action, staff_page

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a month of 15-minute prices for every ERCOT point is ~15 MB
ERRORS_SHOWN = 50
NOT_RESPONDING_SHOWN = 100  # with their commands; the table below filters to all of them


# --------------------------------------------------------------------------------------
# Forms
# --------------------------------------------------------------------------------------

UTC_INPUT = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


class UtcDateTimeField(forms.DateTimeField):
    """A date and time typed in UTC (the page says so), whatever the server's zone."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, **kwargs):
        super().__init__(input_formats=UTC_INPUT, **kwargs)

    def to_python(self, value):
        result = super().to_python(value)
        if result is None:
            return None
        return result.astimezone(dt.UTC) if timezone.is_aware(result) else result.replace(tzinfo=dt.UTC)


class EventForm(forms.Form):
    """A curtailment staff enter by hand: shed (or reach) MW at a site by a deadline."""

    site = forms.ModelChoiceField(Site.objects.order_by("name"), to_field_name="slug")
    program = forms.ModelChoiceField(
        Program.objects.filter(active=True).select_related("site").order_by("site__name", "name"),
        required=False,
        empty_label="— none (a manual curtailment) —",
    )
    target = forms.ChoiceField(choices=Event.Target.choices, initial=Event.Target.SHED)
    target_mw = forms.DecimalField(label="MW", max_digits=10, decimal_places=3, min_value=0)
    starts_at = UtcDateTimeField(label="Start (UTC)")
    ends_at = UtcDateTimeField(label="End (UTC)", required=False, help_text="Empty: open until ended.")
    deadline_at = UtcDateTimeField(
        label="Deadline (UTC)", required=False,
        help_text="When the target must be met. Empty: the start plus the program's response time (ERS-10: 10 min).",
    )  # fmt: skip
    notes = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, now: dt.datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()

    def clean(self):
        data = super().clean()
        site, program = data.get("site"), data.get("program")
        starts, ends, deadline = data.get("starts_at"), data.get("ends_at"), data.get("deadline_at")
        if deadline is None and starts is not None and "deadline_at" not in self.errors:
            kind = program.kind if program is not None else ProgramKind.VOLUNTARY
            deadline = data["deadline_at"] = triggers.deadline(kind, starts, program and program.response_minutes)
        if site is not None and program is not None and program.site_id != site.pk:
            self.add_error("program", f"{program.name} is a program of {program.site}, not of {site}.")
        mw = data.get("target_mw")
        if mw is not None and data.get("target") == Event.Target.SHED and mw == 0:
            self.add_error("target_mw", "Shedding 0 MW is no event.")
        if starts is not None and ends is not None and ends <= starts:
            self.add_error("ends_at", "The end must be after the start.")
        elif ends is not None and ends <= self.now:
            self.add_error("ends_at", "The end is in the past: the event would already be over.")
        if starts is not None and deadline is not None and deadline < starts:
            self.add_error("deadline_at", "The deadline must not be before the start.")
        elif deadline is not None and deadline <= self.now:
            self.add_error("deadline_at", "The deadline is in the past.")
        if ends is not None and deadline is not None and deadline > ends:
            self.add_error("deadline_at", "The deadline must not be after the end.")
        return data


class PriceFileForm(forms.Form):
    file = forms.FileField(label="ERCOT RTM settlement point prices (CSV)")

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        return f


# --------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------


def _overview(request, *, event_form: EventForm | None = None, price_form: PriceFileForm | None = None,
              price_errors: list | None = None, status: int = 200):  # fmt: skip
    context = {
        "sites": reports.sites_overview(),
        "event_form": event_form or EventForm(initial={"starts_at": timezone.now()}),
        "price_form": price_form or PriceFileForm(),
        "price_errors": price_errors or [],
    }
    return render(request, "staff/curtailment.html", context, status=status)


@staff_page
def curtailment(request):
    return _overview(request)


@staff_action
def event_new(request):
    form = EventForm(request.POST)
    if not form.is_valid():
        return _overview(request, event_form=form, status=400)
    data = form.cleaned_data
    with transaction.atomic():
        event = Event.objects.create(
            site=data["site"], program=data["program"], source=Event.Source.STAFF, target=data["target"],
            target_mw=data["target_mw"], starts_at=data["starts_at"], ends_at=data["ends_at"],
            deadline_at=data["deadline_at"], notes=data["notes"], created_by=request.user,
        )  # fmt: skip
        transaction.on_commit(lambda: services.start_event(event.pk))
    messages.success(request, f"Event #{event.pk} at {event.site} recorded; machines are being chosen.")
    return redirect("staff:curtailment-event", pk=event.pk)


@staff_action
def price_upload(request):
    form = PriceFileForm(request.POST, request.FILES)
    if not form.is_valid():
        return _overview(request, price_form=form, status=400)
    try:
        result = prices.import_file(form.cleaned_data["file"])
    except prices.PriceFileError as exc:
        errors = exc.errors
        return _overview(request, price_form=form, price_errors=errors[:ERRORS_SHOWN], status=400)
    points = ", ".join(result.points) or "no settlement point"
    messages.success(request, f"{result.rows} price(s) imported for {points}.")
    return redirect("staff:curtailment")


@staff_page
def event(request, pk: int):
    event = get_object_or_404(reports.with_event_figures(Event.objects.select_related("site", "program")), pk=pk)
    points = reports.timeline(event)
    # Up to its end, or (still on) to now and at least the deadline; always the last sample.
    end = event.ends_at if event.ends_at is not None else max(timezone.now(), event.deadline_at)
    end = max([end, *(p.at for p in points[-1:])])
    start = min([event.starts_at, *(p.at for p in points[:1])])
    chart = event_chart(reports.thin(points), start=start, end=end, deadline=event.deadline_at)
    only = request.GET.get("only") == "not_responding"
    page = paginate(request, reports.event_machines(event, only_not_responding=only))
    not_responding = list(reports.not_responding(event)[:NOT_RESPONDING_SHOWN])
    counts = reports.event_status_counts(event)
    statuses = [(value, label, counts.get(value, 0)) for value, label in CurtailmentStatus.choices]
    context = {
        "event": event, "chart": chart, "page": page, "only": only, "not_responding": not_responding,
        "statuses": statuses, "last": points[-1] if points else None, "samples_n": len(points),
        "flagged": set(reports.NOT_RESPONDING),
    }  # fmt: skip
    return render(request, "staff/curtailment_event.html", context)
