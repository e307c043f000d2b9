"""The machines page's filters: the API's django-filter set (hosting.api.filters), drawn
with the page's own selects."""

from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest

from capacity.models import Site
from hosting.api.filters import MachineFilter
from hosting.lifecycle import MachineStatus
from hosting.models import MachineModel


class OneOf(forms.Select):
    """A single select for a multiple-choice filter: sends its one value as a list, and no
    value (the "any" option) as none."""

    def value_from_datadict(self, data, files, name):
        return [v for v in data.getlist(name) if v] if hasattr(data, "getlist") else data.get(name) or []


def machine_filter(request: HttpRequest, machines: QuerySet) -> MachineFilter:
    """The API's machine filters over `machines` (already scoped to the user), with selects
    for status, model and site."""
    # A form's "any" option sends an empty value, which the API refuses as a mistake: here it means no filter.
    data = request.GET.copy()
    for name in [k for k in data if not any(data.getlist(k))]:
        del data[name]
    filters = MachineFilter(data, queryset=machines)
    fields = filters.form.fields
    fields["status"].widget = OneOf(choices=[("", "any status"), *MachineStatus.choices])
    models = MachineModel.objects.order_by("name").values_list("slug", "name")
    fields["model"].widget = forms.Select(choices=[("", "any model"), *models])
    sites = Site.objects.order_by("name").values_list("slug", "name")
    fields["site"].widget = forms.Select(choices=[("", "any site"), *sites])
    return filters
