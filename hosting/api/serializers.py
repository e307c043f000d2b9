"""What the API reads and writes. Validation of requests lives here; the rules they feed
live in hosting.quotes / services and capacity.ledger."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import slug_re
from django.utils import timezone
from django.utils.encoding import smart_str
from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from capacity.models import Reservation, Site
from hosting import quotes
from hosting.billing import quoting
from hosting.lifecycle import AWAITING_COMMISSIONING
from hosting.models import (
    CheckResult,
    CommissioningBatch,
    Contract,
    Machine,
    MachineModel,
    Quote,
    Sample,
    SelfTestRun,
)
from hosting.quotes import waitlist_position

MAX_BATCH = 20_000  # machines in one commissioning batch
MAX_ID = 2**63 - 1  # a primary key (bigint) no larger
SHOWN_IDS = 20  # unknown ids named in an error, the rest counted


def errors_of(refused: DjangoValidationError) -> dict | list:
    """A domain rule's Django ValidationError as serializer errors (non-field ones under DRF's key)."""
    if not hasattr(refused, "error_dict"):
        return refused.messages
    key: dict[str, str] = {NON_FIELD_ERRORS: api_settings.NON_FIELD_ERRORS_KEY}
    return {key.get(field, field): messages for field, messages in refused.message_dict.items()}


class SlugChoiceField(serializers.SlugRelatedField):
    """A slug that names a row; anything that is not a slug is refused before it reaches
    the database (PostgreSQL rejects NUL bytes with an error, not an empty result)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not slug_re.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=smart_str(data))
        return super().to_internal_value(data)


class NextPhaseSerializer(serializers.Serializer):
    energized_on = serializers.DateField()
    mw = serializers.DecimalField(max_digits=9, decimal_places=3)


class SiteSerializer(serializers.ModelSerializer):
    """A site as prospects see it; the figures are attached by the view for the page."""

    country = CountryField()
    energized_mw_today = serializers.DecimalField(max_digits=12, decimal_places=3, read_only=True)
    available_kw_today = serializers.DecimalField(max_digits=14, decimal_places=3, read_only=True)
    list_rate_usd_per_kwh = serializers.DecimalField(
        max_digits=8, decimal_places=5, read_only=True, allow_null=True, source="list_rate"
    )
    next_phase = NextPhaseSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Site
        fields = [
            "slug",
            "name",
            "country",
            "region",
            "cooling",
            "energized_mw_today",
            "available_kw_today",
            "list_rate_usd_per_kwh",
            "next_phase",
        ]


class MachineModelSerializer(serializers.ModelSerializer):
    efficiency_j_per_th = serializers.DecimalField(max_digits=6, decimal_places=1, read_only=True)

    class Meta:
        model = MachineModel
        fields = [
            "slug",
            "vendor",
            "name",
            "nominal_hashrate_ths",
            "nameplate_power_w",
            "efficiency_j_per_th",
            "power_tolerance_pct",
            "max_chip_temp_c",
            "hashboards",
            "chips_per_board",
            "fans",
            "source",
        ]


class QuoteRequestSerializer(serializers.Serializer):
    """A request: `machine_model` and `quantity`, or `it_kw`; from `start_on` for `term_months`."""

    machine_model = SlugChoiceField(
        slug_field="slug", queryset=MachineModel.objects.all(), required=False, help_text="Catalog slug."
    )
    quantity = serializers.IntegerField(min_value=1, max_value=quotes.MAX_MACHINES, required=False)
    it_kw = serializers.DecimalField(
        max_digits=12, decimal_places=3, min_value=Decimal("0.001"), max_value=quotes.MAX_IT_KW, required=False
    )
    start_on = serializers.DateField()
    term_months = serializers.IntegerField(min_value=1, max_value=quotes.MAX_TERM_MONTHS)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    country = CountryField(required=False, allow_blank=True, default="")
    site = SlugChoiceField(slug_field="slug", queryset=Site.objects.exclude(status=Site.Status.CLOSED), required=False)
    contact_email = serializers.EmailField(
        max_length=Quote._meta.get_field("contact_email").max_length,
        required=False,
        help_text="Required without a token.",
    )

    def validate_start_on(self, value: dt.date) -> dt.date:
        try:
            quotes.check_start_on(value, timezone.localdate())
        except ValueError as refused:
            raise serializers.ValidationError(str(refused)) from None
        return value

    def validate(self, attrs: dict) -> dict:
        try:
            attrs["it_kw"] = quotes.requested_kw(attrs.get("machine_model"), attrs.get("quantity"), attrs.get("it_kw"))
        except DjangoValidationError as refused:
            raise serializers.ValidationError(errors_of(refused)) from None
        request = self.context["request"]
        if not request.user.is_authenticated and not attrs.get("contact_email"):
            raise serializers.ValidationError({"contact_email": ["Required when asking without a token."]})
        return attrs


class LevyTierSerializer(serializers.Serializer):
    price_up_to = serializers.DecimalField(max_digits=12, decimal_places=5, help_text="Power price ceiling.")
    per_kwh = serializers.DecimalField(max_digits=12, decimal_places=5, help_text="In the levy's currency.")


class LevyRuleSerializer(serializers.Serializer):
    per_kwh = serializers.DecimalField(
        max_digits=12, decimal_places=5, help_text="The flat rate: when no tier applies (no price, or above all)."
    )
    power_price_per_kwh = serializers.DecimalField(
        max_digits=12, decimal_places=5, allow_null=True, help_text="The power price the site pays: picks the tier."
    )
    tiers = LevyTierSerializer(many=True, help_text="The first tier at or above the power price applies.")


class LevySerializer(serializers.Serializer):
    """A per-kWh fee of the site's jurisdiction (e.g. Kazakhstan's 1–25 tenge/kWh by power price)."""

    name = serializers.CharField()
    currency = serializers.CharField(help_text="The levy's own currency (e.g. KZT).")
    per_kwh = serializers.DecimalField(
        max_digits=12, decimal_places=5, help_text="Per kWh in the levy's currency, its tier picked."
    )
    per_kwh_billing = serializers.DecimalField(
        max_digits=16, decimal_places=6, help_text="Per kWh converted to the billing currency (as invoiced)."
    )
    to_billing_currency = serializers.DecimalField(
        max_digits=16, decimal_places=8, help_text="Billing currency per unit of the levy's currency."
    )
    rule = LevyRuleSerializer()
    effective_from = serializers.DateField()
    effective_until = serializers.DateField(allow_null=True, help_text="First day it no longer applies.")
    monthly = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="On the estimated month's kWh, in the billing currency."
    )


class QuoteOptionSerializer(serializers.Serializer):
    """One site's offer (the shape of each entry of a quote's `options`)."""

    rank = serializers.IntegerField()
    site = serializers.SlugField()
    available_from = serializers.DateField()
    rate_usd_per_kwh = serializers.DecimalField(max_digits=8, decimal_places=5)
    monthly_usd = serializers.DecimalField(max_digits=14, decimal_places=2)
    setup_usd = serializers.DecimalField(max_digits=14, decimal_places=2)
    circuits = serializers.IntegerField(help_text="Circuits of the site's standard design the machines fill.")
    slots = serializers.IntegerField()
    slots_free_now = serializers.IntegerField(help_text="Machines the built floor could take today.")
    billing_currency = serializers.CharField(help_text="ISO 4217 code the site invoices in (levies converted to it).")
    estimated_kwh_month = serializers.DecimalField(
        max_digits=16, decimal_places=3, help_text="The month priced: IT kW × 730 h (as monthly_usd)."
    )
    levies = LevySerializer(many=True, help_text="The site's levies in force on `available_from`; [] if none.")
    levies_monthly = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="The levies on the estimated month, in the billing currency."
    )
    all_in_monthly = serializers.DecimalField(
        max_digits=16, decimal_places=2,
        help_text="monthly_usd + levies_monthly: the month's estimate with the site's levies, in the billing currency.",
    )  # fmt: skip


@extend_schema_field(QuoteOptionSerializer(many=True))
class OptionsField(serializers.JSONField):
    """The stored snapshot, served as is: it was written in exactly this shape."""


class HoldSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)

    class Meta:
        model = Reservation
        fields = ["site", "it_kw", "starts_on", "ends_on", "expires_at"]
        read_only_fields = fields


class QuoteSerializer(serializers.ModelSerializer):
    machine_model = serializers.SlugRelatedField[Any](
        slug_field="slug", read_only=True, allow_null=True, help_text="None when asked for in IT kW."
    )
    site = serializers.SlugRelatedField[Any](
        slug_field="slug", read_only=True, allow_null=True, help_text="The one site asked for, if any."
    )
    options = OptionsField(read_only=True)
    waitlist_position = serializers.SerializerMethodField()
    hold = HoldSerializer(read_only=True, allow_null=True)
    tenant = serializers.SlugRelatedField[Any](
        slug_field="slug", read_only=True, allow_null=True, help_text="Who accepted it; None until then."
    )

    class Meta:
        model = Quote
        fields = [
            "id",
            "status",
            "it_kw",
            "machine_model",
            "quantity",
            "start_on",
            "term_months",
            "region",
            "country",
            "site",
            "valid_until",
            "waitlist_position",
            "options",
            "tenant",
            "hold",
            "contract",
            "created_at",
        ]

    def to_representation(self, instance: Quote) -> dict:
        data = super().to_representation(instance)
        data["options"] = quoting.with_levies(data["options"] or [], instance.it_kw)
        return data

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_waitlist_position(self, quote: Quote) -> int | None:
        positions = self.context.get("waitlist_positions")  # a list view reads the queue once
        return positions.get(quote.pk) if positions is not None else waitlist_position(quote)


class AcceptSerializer(serializers.Serializer):
    site = serializers.SlugField(help_text="The slug of the option to hold.")
    tenant = serializers.SlugField(required=False, help_text="Needed only if you act for several tenants.")


class ContractSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)
    site = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id",
            "tenant",
            "site",
            "it_kw",
            "machine_count",
            "rate_usd_per_kwh",
            "starts_on",
            "ends_on",
            "status",
            "signed_at",
            "created_at",
        ]
        read_only_fields = fields


class ContractFromQuoteSerializer(serializers.Serializer):
    quote = serializers.PrimaryKeyRelatedField(
        queryset=Quote.objects.all(), help_text="An accepted quote; its hold becomes this contract's firm reservation."
    )


class MachineSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField[Any](slug_field="slug", read_only=True)
    site = serializers.SlugRelatedField[Any](source="contract.site", slug_field="slug", read_only=True)
    slot = serializers.StringRelatedField[Any](read_only=True, allow_null=True, help_text="None off the floor.")

    class Meta:
        model = Machine
        fields = ["id", "serial", "mac", "ip", "model", "contract", "site", "slot", "status", "status_changed_at"]
        read_only_fields = fields


class CheckResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = CheckResult
        fields = ["name", "passed", "reasons", "measurements"]
        read_only_fields = fields


class SampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sample
        fields = [
            "seq",
            "taken_at",
            "reachable",
            "hashrate_ths",
            "power_w",
            "outlet_w",
            "circuit_w",
            "inlet_temp_c",
            "boards",
            "fans_rpm",
            "errors",
        ]
        read_only_fields = fields


class SelfTestRunSerializer(serializers.ModelSerializer):
    """A self-test with its evidence: every check's verdict and measurements, every sample."""

    checks = CheckResultSerializer(many=True, read_only=True)
    samples = SampleSerializer(many=True, read_only=True)

    class Meta:
        model = SelfTestRun
        fields = [
            "id",
            "machine",
            "batch",
            "status",
            "attempt",
            "reasons",
            "created_at",
            "started_at",
            "finished_at",
            "checks",
            "samples",
        ]
        read_only_fields = fields


DISPATCH_HELP = (
    "Where the self-tests went: `sent` to the site's worker, `queued` behind the site's stagger, or "
    "`delayed` — the broker could not be reached; they are kept and sent when it is back."
)


class RunAcceptedSerializer(serializers.Serializer):
    run = serializers.IntegerField(help_text="The self-test run (a second request joins the open one).")
    status = serializers.CharField()
    machine = serializers.IntegerField()
    dispatch = serializers.ChoiceField(choices=["sent", "queued", "delayed"], help_text=DISPATCH_HELP)


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    queued = serializers.IntegerField()
    testing = serializers.IntegerField()
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()


class BatchSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    tenant = serializers.SlugRelatedField[Any](
        slug_field="slug", read_only=True, allow_null=True, help_text="None when the machines are several tenants'."
    )

    class Meta:
        model = CommissioningBatch
        fields = ["id", "source", "label", "tenant", "contract", "created_at", "progress"]
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, batch: CommissioningBatch) -> dict:
        return batch.progress  # the view reads batches with_progress()


class BatchCreatedSerializer(BatchSerializer):
    """A new batch, and where its self-tests went."""

    dispatch = serializers.ChoiceField(choices=["sent", "queued", "delayed"], read_only=True, help_text=DISPATCH_HELP)

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "dispatch"]
        read_only_fields = fields


class BatchRequestSerializer(serializers.Serializer):
    """Staff: commission these machines, or every machine of a contract that may be (re-)tested."""

    machines = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        max_length=MAX_BATCH,
        required=False,
        help_text=f"Machine ids, at most {MAX_BATCH:,}.",
    )
    contract = serializers.PrimaryKeyRelatedField(queryset=Contract.objects.all(), required=False)
    # A declared field leaves the class body (DRF's metaclass); Field.label is not shadowed.
    label = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")  # type: ignore[assignment]

    def validate_machines(self, ids: list[int]) -> list[Machine]:
        """The machines, read in one query (a per-id lookup is 20,000 queries for a full batch)."""
        wanted = list(dict.fromkeys(ids))
        found = Machine.objects.in_bulk(wanted)
        missing = [pk for pk in wanted if pk not in found]
        if missing:
            shown = ", ".join(str(pk) for pk in missing[:SHOWN_IDS])
            more = f" and {len(missing) - SHOWN_IDS:,} more" if len(missing) > SHOWN_IDS else ""
            raise serializers.ValidationError(f"No machine has the id {shown}{more}.")
        return [found[pk] for pk in wanted]

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("machines")) == bool(attrs.get("contract")):
            raise serializers.ValidationError("Give machines (a list of ids) or a contract, not both.")
        if attrs.get("contract") is not None:
            attrs["machines"] = list(attrs["contract"].machines.filter(status__in=AWAITING_COMMISSIONING))
            if not attrs["machines"]:
                allowed = ", ".join(sorted(AWAITING_COMMISSIONING))
                raise serializers.ValidationError({"contract": [f"It has no machine to commission ({allowed})."]})
        return attrs
