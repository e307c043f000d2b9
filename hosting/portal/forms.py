import datetime as dt
from decimal import Decimal

from django import forms
from django.utils import timezone
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField  # type: ignore[attr-defined]  # not in its stubs

from capacity.models import Site
from hosting import packing, quotes
from hosting.carriers import Carrier
from hosting.models import MachineModel, MachineRequest


class PackingListForm(forms.Form):
    file = forms.FileField(label="Packing list (CSV)", help_text="Columns: serial, mac, model; optional ip, notes.")
    reference = forms.CharField(required=False, max_length=100, label="Shipment reference")
    carrier = forms.ChoiceField(required=False, choices=[("", "—"), *Carrier.choices])
    tracking_number = forms.CharField(required=False, max_length=100, label="Tracking number")


class MachineEditForm(forms.Form):
    """An announced machine's serial, MAC and model, as a packing-list row would give them;
    the rules themselves are `hosting.shipping.edit_machine`'s (those of packing lists)."""

    serial = forms.CharField(max_length=packing.MAX_CHARS["serial"])
    mac = forms.CharField(label="MAC", max_length=packing.MAX_CHARS["mac"])
    model = forms.ModelChoiceField(queryset=MachineModel.objects.order_by("vendor", "name"), to_field_name="slug")
    notes = forms.CharField(
        required=False, max_length=packing.MAX_CHARS["notes"], widget=forms.Textarea(attrs={"rows": 2})
    )


class TrackingForm(forms.Form):
    carrier = forms.ChoiceField(required=False, choices=[("", "—"), *Carrier.choices])
    tracking_number = forms.CharField(max_length=100, label="Tracking number")


class CancelMachineForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=500,
        label="Why (optional)",
        widget=forms.TextInput(attrs={"placeholder": "e.g. unit failed burn-in at our warehouse"}),
    )


class QuoteForm(forms.Form):
    """The portal's quote request: the same fields and limits (hosting.quotes) as POST /api/v1/quotes/."""

    machine_model = forms.ModelChoiceField(
        queryset=MachineModel.objects.order_by("name"), to_field_name="slug", required=False, empty_label="—"
    )
    quantity = forms.IntegerField(min_value=1, max_value=quotes.MAX_MACHINES, required=False)
    it_kw = forms.DecimalField(
        label="or IT kW", min_value=Decimal("0.001"), max_value=quotes.MAX_IT_KW, decimal_places=3, required=False
    )
    start_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    term_months = forms.IntegerField(min_value=1, max_value=quotes.MAX_TERM_MONTHS, initial=12)
    region = forms.CharField(required=False, max_length=100)
    country = LazyTypedChoiceField(required=False, choices=[("", "any country"), *countries])
    site = forms.ModelChoiceField(
        queryset=Site.objects.exclude(status=Site.Status.CLOSED), to_field_name="slug", required=False,
        empty_label="any site",
    )  # fmt: skip

    def clean_start_on(self) -> dt.date:
        value = self.cleaned_data["start_on"]
        try:
            quotes.check_start_on(value, timezone.localdate())
        except ValueError as refused:
            raise forms.ValidationError(str(refused)) from None
        return value

    def clean(self):
        data = super().clean()
        if not any(self.has_error(name) for name in ("machine_model", "quantity", "it_kw")):
            try:
                data["it_kw"] = quotes.requested_kw(data.get("machine_model"), data.get("quantity"), data.get("it_kw"))
            except forms.ValidationError as refused:
                self.add_error(None, refused)
        return data


class MachineRequestForm(forms.Form):
    """A tenant's request about a machine: the kinds its status allows (MachineRequest.kinds_for)."""

    kind = forms.ChoiceField(label="Ask for")
    note = forms.CharField(
        required=False, max_length=2000, label="Note for Haven staff", widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, kinds: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ChoiceField)
        kind.choices = [(k, MachineRequest.Kind(k).label) for k in kinds]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="What it is for")
