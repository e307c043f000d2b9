import django_filters
from django.db.models import Q
from django_filters import rest_framework as drf_filters

from capacity.models import Site
from hosting.lifecycle import ContractStatus, MachineStatus
from hosting.models import Contract, Machine, MachineModel, Quote


class FilterSet(drf_filters.FilterSet):
    """The API's filters. An empty value is refused unless the filter is free text: the schema
    types `?cooling=` and `?contract=` as a choice and a number, so "" is a mistake, not "any"."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, declared in self.filters.items():
            if isinstance(declared, django_filters.CharFilter) or name in self.form.errors:
                continue
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else [self.data.get(name)]
            if name in self.data and "" in values:
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid


class SiteFilter(FilterSet):
    region = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Site
        fields = ["country", "cooling", "region"]


class MachineModelFilter(FilterSet):
    class Meta:
        model = MachineModel
        fields = ["vendor"]


class ContractFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ContractStatus.choices)
    site = django_filters.CharFilter(field_name="site__slug")

    class Meta:
        model = Contract
        fields = ["status", "site"]


class MachineFilter(FilterSet):
    """The machine filters of the API and of the portal's machines page (one set)."""

    q = django_filters.CharFilter(method="search", label="Serial or MAC", max_length=64)
    status = django_filters.MultipleChoiceFilter(choices=MachineStatus.choices)
    model = django_filters.CharFilter(field_name="model__slug")
    site = django_filters.CharFilter(field_name="contract__site__slug")

    class Meta:
        model = Machine
        fields = ["q", "status", "model", "site", "contract"]

    def search(self, queryset, name, value):
        """Part of a serial, or of a MAC in any case (stored lower-case)."""
        return queryset.filter(Q(serial__icontains=value) | Q(mac__icontains=value.lower()))


class QuoteFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Quote.Status.choices)

    class Meta:
        model = Quote
        fields = ["status"]
