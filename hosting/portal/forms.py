import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin
from django.contrib.auth.signals import user_login_failed
from django.utils import timezone
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField  # type: ignore[attr-defined]  # not in its stubs

from capacity.models import Site
from hosting import packing, quotes, two_factor
from hosting.carriers import Carrier
from hosting.models import MachineModel, MachineRequest, Role


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


# --- accounts: members, invitations, two-factor --------------------------------------------------


CODE_INPUT = {"autocomplete": "one-time-code", "inputmode": "numeric"}


def _code_field() -> forms.CharField:
    return forms.CharField(
        required=False, max_length=20, label="Two-factor code", widget=forms.TextInput(attrs=CODE_INPUT),
        help_text="Only if you turned two-factor on: the code from your app, or a recovery code.",
    )  # fmt: skip


def check_second_factor(form: AuthenticationForm) -> None:
    """A login form's second factor, after the password: a user with two-factor on must give a
    code from their app (or a recovery code). A wrong code counts as a failed login for
    django-axes (five lock the username at that address), and django-otp throttles it.
    `form.otp_problem` is what the page says when the password was right and the code not."""
    user = form.get_user()
    if user is None or not two_factor.enabled(user):
        return
    code = form.cleaned_data.get("otp_token") or ""
    if not code:
        form.otp_problem = "Two-factor is on for this login: enter your password again with the code from your app."  # type: ignore[attr-defined]
        raise forms.ValidationError(form.otp_problem, code="otp_required")  # type: ignore[attr-defined]
    device = two_factor.verify(user, code)
    if device is None:
        credentials = {"username": user.get_username()}
        user_login_failed.send(sender=__name__, credentials=credentials, request=form.request)
        form.otp_problem = "That two-factor code is not right (or came too soon after a wrong one)."  # type: ignore[attr-defined]
        raise forms.ValidationError(form.otp_problem, code="otp_invalid")  # type: ignore[attr-defined]
    user.otp_device = device  # type: ignore[attr-defined]  # django-otp keeps it in the session at login


class SecondFactor(AuthenticationForm):
    """A login form that asks for the second factor's code when the user has one."""

    otp_problem = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["otp_token"] = _code_field()

    def clean(self):
        data = super().clean()
        check_second_factor(self)
        return data


class LoginForm(SecondFactor):
    pass


class AdminLoginForm(SecondFactor, AdminAuthenticationForm):
    pass


class CodeForm(forms.Form):
    code = forms.CharField(max_length=20, label="Code from your app", widget=forms.TextInput(attrs=CODE_INPUT))


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class NewMemberForm(SetPasswordMixin, forms.Form):
    """Someone invited without a login: a username and a password (Django's validators)."""

    username = forms.RegexField(regex=r"^[\w.@+-]+$", max_length=150, label="Username",
                                error_messages={"invalid": "Letters, digits and @/./+/-/_ only."})  # fmt: skip
    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken; pick another.")
        return username

    def clean(self):
        data = super().clean()
        self.validate_passwords()
        self.validate_password_for_user(get_user_model()(username=data.get("username", ""), email=self.email))
        return data
