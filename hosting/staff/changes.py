"""The site-wide change log for staff (/staff/changes/): every recorded create, update and
delete, filtered by model, object, actor, request id and dates, one request's (or task's)
changes grouped together (changelog.present reads; django-auditlog records)."""

import datetime as dt
from itertools import groupby

from django import forms
from django.shortcuts import render
from django.utils import timezone

from changelog import present
from hosting.paging import paginate
from hosting.staff.views import staff_page


class ChangeFilterForm(forms.Form):
    model = forms.ChoiceField(required=False)
    object_id = forms.CharField(required=False, max_length=255, label="Object id")
    actor = forms.CharField(required=False, max_length=150, help_text="username, token prefix or task name")
    request_id = forms.CharField(required=False, max_length=255, label="Request id")
    action = forms.ChoiceField(required=False, choices=[("", "any"), *[(a, a) for a in present.ACTION_OF]])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "all models"), *present.model_choices()]


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


@staff_page
def changes(request):
    form = ChangeFilterForm(request.GET or None)
    rows = present.entries()
    if form.is_valid():
        data = form.cleaned_data
        rows = present.filtered(
            rows,
            model=data["model"],
            object_id=data["object_id"].strip(),
            actor=data["actor"].strip(),
            request_id=data["request_id"].strip(),
            action=data["action"],
            since=_midnight(data["since"]) if data["since"] else None,
            until=_midnight(data["until"] + dt.timedelta(days=1)) if data["until"] else None,
        )
    page = paginate(request, rows)
    items = [
        {
            "entry": e,
            "action": present.action_name(e),
            "actor": present.actor_for_staff(e),
            "via": present.via(e),
            "fields": present.field_changes(e),
        }
        for e in page.object_list
    ]
    # Consecutive entries of one request (or task) under one heading.
    groups = [{"cid": cid, "items": list(group)} for cid, group in groupby(items, key=lambda i: i["entry"].cid or "")]
    return render(request, "staff/changes.html", {"form": form, "page": page, "groups": groups})
