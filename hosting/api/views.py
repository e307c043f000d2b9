"""API v1 viewsets: a few lines each; scoping in the querysets' `visible_to`, rules in
hosting.quotes / services, errors shaped by hosting.api.errors."""

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from capacity.models import EnergizationPhase, Site
from hosting import quotes
from hosting.accounts import Action, may
from hosting.api import filters, serializers
from hosting.api.throttles import QuoteThrottle
from hosting.commissioning import runs
from hosting.models import CommissioningBatch, Contract, Machine, MachineModel, Quote

# 400/401/403/404/429 are documented where they occur by hosting.api.schema.AutoSchema.
REFUSED = {409: OpenApiResponse(description="Refused by the current state, e.g. the capacity is gone (`shortfall`).")}


@csrf_exempt  # nothing is written: a POST to a wrong path learns it is wrong, not that CSRF failed
def unknown_path(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """A 404 in the API's error shape for any path under /api/v1/ that names no endpoint.

    This pattern matches every path, so Django's APPEND_SLASH never sees an unknown one:
    a read of a real endpoint without its slash is redirected here as it would have been,
    and a write (which a redirect would turn into a GET) is told the right path instead."""
    meant = _with_slash(request.path)
    if meant is not None and request.method in ("GET", "HEAD"):
        query = request.META.get("QUERY_STRING")
        return HttpResponsePermanentRedirect(f"{meant}?{query}" if query else meant)
    message = f"The API has no endpoint at {request.path}" + (f"; did you mean {meant}?" if meant else ".")
    return JsonResponse({"code": "not_found", "message": message}, status=404)


def _with_slash(path: str) -> str | None:
    """`path` with a trailing slash, if that names an endpoint."""
    if path.endswith("/"):
        return None
    try:
        match = resolve(path + "/")
    except Resolver404:
        return None
    return None if match.func is unknown_path else path + "/"


class TenantScopedMixin:
    """Lists and lookups see only what the user may: staff all, tenants their own."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)


@extend_schema_view(
    list=extend_schema(summary="Sites open for hosting, with today's free capacity", auth=[]),
    retrieve=extend_schema(summary="One site", auth=[]),
)
class SiteViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = (
        Site.objects.exclude(status=Site.Status.CLOSED)
        .select_related("pricing")
        .prefetch_related(Prefetch("phases", queryset=EnergizationPhase.objects.order_by("energized_on")))
        .order_by("slug")
    )
    serializer_class = serializers.SiteSerializer
    permission_classes = [permissions.AllowAny]
    filterset_class = filters.SiteFilter
    search_fields = ["name", "region"]
    ordering_fields = ["slug", "name"]
    lookup_field = "slug"

    def get_serializer(self, instance=None, *args, **kwargs):
        if instance is not None:  # the rows of the page, each with today's figures
            instance = quotes.public_sites(list(instance)) if kwargs.get("many") else quotes.public_sites([instance])[0]
        return super().get_serializer(instance, *args, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="The machine catalog", auth=[]),
    retrieve=extend_schema(summary="One machine model", auth=[]),
)
class MachineModelViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = MachineModel.objects.order_by("vendor", "name")
    serializer_class = serializers.MachineModelSerializer
    permission_classes = [permissions.AllowAny]
    filterset_class = filters.MachineModelFilter
    search_fields = ["name"]
    lookup_field = "slug"


@extend_schema_view(
    list=extend_schema(summary="Your quotes (needs a token or session)"),
    retrieve=extend_schema(summary="A quote, for whoever holds its id", auth=[]),
)
class QuoteViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Quote.objects.select_related("machine_model", "site", "tenant", "hold__site")
    serializer_class = serializers.QuoteSerializer
    filterset_class = filters.QuoteFilter
    ordering_fields = ["created_at"]

    def get_permissions(self):
        if self.action in ("create", "retrieve"):
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_throttles(self):
        throttles = super().get_throttles()
        return [*throttles, QuoteThrottle()] if self.action == "create" else throttles

    def get_queryset(self):
        # A quote's id is its secret: whoever holds it may read it, and a tenant may accept it.
        queryset = super().get_queryset()
        return queryset if self.action in ("retrieve", "accept") else queryset.visible_to(self.request.user)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.action == "list":
            context["waitlist_positions"] = {
                pk: n for n, pk in enumerate(Quote.objects.waitlist().values_list("pk", flat=True), start=1)
            }
        return context

    @extend_schema(
        summary="Ask for a quote",
        description="Public (throttled per client IP; a token raises the limit). Prices every site that can "
        "take the whole term within the planning horizon, best first, or puts the request on the waitlist.",
        request=serializers.QuoteRequestSerializer,
        responses={201: serializers.QuoteSerializer, **REFUSED},
        auth=[],
    )
    def create(self, request, *args, **kwargs):
        form = serializers.QuoteRequestSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        user = request.user if request.user.is_authenticated else None
        quote = quotes.request_quote(
            quotes.new_request(
                data,
                requester=user,
                contact_email=data.get("contact_email") or user.email,
                client_ip=request.META.get("REMOTE_ADDR"),
            )
        )
        return Response(self.get_serializer(quote).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Hold an option's capacity",
        description="Needs the token of a tenant's owner or operator (a viewer's is refused, 403). "
        "Turns the option at `site` into a capacity hold that expires "
        "(72 h by default). Asking again for the same option returns the same hold.",
        request=serializers.AcceptSerializer,
        responses={200: serializers.QuoteSerializer, **REFUSED},
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def accept(self, request, pk=None):
        quote = self.get_object()  # a malformed id is 404, as for GET
        form = serializers.AcceptSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        tenant = quotes.tenant_for(request.user, form.validated_data.get("tenant"))
        if not may(request.user, tenant, Action.REQUEST):  # a token acts with its user's role
            raise PermissionDenied(f"Your role for {tenant} does not hold capacity: an owner or an operator does.")
        quotes.accept(quote, site_slug=form.validated_data["site"], tenant=tenant)
        return Response(self.get_serializer(self.queryset.get(pk=quote.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="Your contracts"),
    retrieve=extend_schema(summary="One of your contracts"),
)
class ContractViewSet(TenantScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Contract.objects.select_related("tenant", "site").order_by("-created_at", "-pk")
    serializer_class = serializers.ContractSerializer
    filterset_class = filters.ContractFilter
    ordering_fields = ["created_at", "starts_on"]

    def get_permissions(self):
        if self.action == "create":
            return [permissions.IsAdminUser()]
        return super().get_permissions()

    @extend_schema(
        summary="Staff: turn an accepted quote into a signed contract",
        description="The quote's hold becomes the contract's firm reservation in the same transaction; "
        "409 with the shortfall if the hold expired and the capacity went meanwhile.",
        request=serializers.ContractFromQuoteSerializer,
        responses={201: serializers.ContractSerializer, **REFUSED},
    )
    def create(self, request, *args, **kwargs):
        form = serializers.ContractFromQuoteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        contract = quotes.contract_from_quote(form.validated_data["quote"], by=request.user)
        return Response(self.get_serializer(contract).data, status=status.HTTP_201_CREATED)


class CommissionMixin:
    """Machine actions of commissioning: start a self-test (staff), read the evidence."""

    @extend_schema(
        summary="Staff: commission a racked (or failed, for a re-run) machine",
        request=None,
        responses={202: serializers.RunAcceptedSerializer, **REFUSED},
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAdminUser])
    def commission(self, request, pk=None):
        machine = self.get_object()
        (run,) = runs.request([machine], by=request.user)
        run.refresh_from_db(fields=["status"])
        body = {"run": run.pk, "status": run.status, "machine": machine.pk, "dispatch": runs.dispatch_state([run.pk])}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The machine's self-tests with every check's measurements and verdict, newest first",
        responses=serializers.SelfTestRunSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="self-tests",
        serializer_class=serializers.SelfTestRunSerializer,
        filter_backends=[],  # pages of one machine's runs; the machine filters are not theirs
    )
    def self_tests(self, request, pk=None):
        machine = self.get_object()
        queryset = machine.self_tests.prefetch_related("checks", "samples").order_by("-created_at", "-pk")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializers.SelfTestRunSerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="Your machines"),
    retrieve=extend_schema(summary="One of your machines"),
)
class MachineViewSet(CommissionMixin, TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Machine.objects.select_related("model", "contract__site", "slot__rack__site").order_by("serial")
    serializer_class = serializers.MachineSerializer
    filterset_class = filters.MachineFilter
    search_fields = ["=serial", "mac"]
    ordering_fields = ["serial", "status_changed_at"]


class BatchViewSet(
    TenantScopedMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Commissioning batches and their progress (queued, testing, passed, failed)."""

    queryset = CommissioningBatch.objects.with_progress().select_related("tenant").order_by("-created_at")
    serializer_class = serializers.BatchSerializer

    def get_permissions(self):
        if self.action == "create":
            return [permissions.IsAdminUser()]
        return super().get_permissions()

    @extend_schema(
        summary="Staff: commission a selection of machines or a contract's",
        request=serializers.BatchRequestSerializer,
        responses={201: serializers.BatchCreatedSerializer, **REFUSED},
    )
    def create(self, request, *args, **kwargs):
        form = serializers.BatchRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        batch = runs.start_batch(
            form.validated_data["machines"],
            contract=form.validated_data.get("contract"),
            label=form.validated_data["label"],
            by=request.user,
        )
        batch = self.get_queryset().get(pk=batch.pk)  # with its progress
        dispatch = runs.dispatch_state(batch.runs.values_list("pk", flat=True))
        return Response({**self.get_serializer(batch).data, "dispatch": dispatch}, status=status.HTTP_201_CREATED)
