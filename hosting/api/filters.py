import django_filters
from django.db.models import Q

from capacity.models import Site
from hosting.lifecycle import ContractStatus, MachineStatus
from hosting.models import Contract, Machine, Quote


class SiteFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Site
        fields = ["country", "cooling", "region"]


class ContractFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ContractStatus.choices)
    site = django_filters.CharFilter(field_name="site__slug")

    class Meta:
        model = Contract
        fields = ["status", "site"]


class MachineFilter(django_filters.FilterSet):
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


class QuoteFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Quote.Status.choices)

    class Meta:
        model = Quote
        fields = ["status"]
