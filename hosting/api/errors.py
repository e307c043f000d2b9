"""One error shape for every API failure:

    {"code": "insufficient_capacity", "message": "…", "errors": {"field": ["…"]}, …details}

`code` is stable and machine-readable, `message` is for people, `errors` lists per-field
problems (validation only). Domain refusals (capacity, lifecycle) answer 409.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from capacity.errors import InsufficientCapacity, LedgerError
from hosting.lifecycle import IllegalTransition
from hosting.services import ServiceError


def _shortfall(exc: InsufficientCapacity) -> dict:
    return {
        "site": exc.site,
        "requested_kw": str(exc.requested_kw),
        "available_kw": str(exc.available_kw),
        "short_kw": str(exc.short_kw),
        "short_from": exc.short_from.isoformat(),
        "fits_from": exc.fits_from.isoformat() if exc.fits_from else None,
    }


def domain_response(exc: Exception) -> Response | None:
    if isinstance(exc, InsufficientCapacity):
        body = {"code": exc.code, "message": str(exc), "shortfall": _shortfall(exc)}
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, LedgerError | IllegalTransition | ServiceError):
        return Response({"code": exc.code, "message": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        body = {"code": "invalid", "message": "The request has invalid fields.", "errors": errors}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return None


def exception_handler(exc, context):
    response = domain_response(exc)
    if response is not None:
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"code": "invalid", "message": "The request has invalid fields.", "errors": detail}
    else:
        codes = exc.get_codes()
        response.data = {
            "code": codes if isinstance(codes, str) else getattr(exc, "default_code", "error"),
            "message": str(exc.detail),
        }
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            response.data["retry_after_s"] = int(exc.wait)
    return response
