"""One error shape for every API failure:

    {"code": "insufficient_capacity", "message": "…", "errors": {"field": ["…"]}, …details}

`code` is stable and machine-readable, `message` is for people, `errors` lists per-field
problems (validation only). Every domain refusal (`capacity.errors.Refusal`: capacity,
lifecycle, quotes, services) answers 409 with the refusal's own details.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from capacity.errors import Refusal


def domain_response(exc: Exception) -> Response | None:
    if isinstance(exc, Refusal):
        body = {"code": exc.code, "message": str(exc), **exc.details()}
        return Response(body, status=status.HTTP_409_CONFLICT)
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
