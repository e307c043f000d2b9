"""The OpenAPI schema says what the API answers, errors included.

Every operation documents the errors it can give, in the one error shape
(hosting.api.errors), without each view repeating them:

- 400 everywhere: a field's problem, a body that is not JSON, a NUL byte in the URL;
- 401 everywhere: a token that is wrong or revoked is refused even where none is needed;
- 403 where a role is needed, and on every write (a session must send its CSRF token);
- 404 where the path names an object, and on lists (a page past the end);
- 429 everywhere: throttles are global;
- 409 (a refusal by the current state) where a view says so.
"""

from drf_spectacular import openapi
from rest_framework import permissions, serializers


class ErrorSerializer(serializers.Serializer):
    """Every API failure; a refusal (409) adds its own details, e.g. `shortfall`."""

    code = serializers.CharField(help_text="Stable and machine-readable: `invalid`, `not_found`, `throttled`, …")
    message = serializers.CharField(help_text="For people.")
    # A declared field leaves the class body (DRF's metaclass); Serializer.errors stays.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(), required=False, help_text="Validation only: the problems of each field."
    )
    retry_after_s = serializers.IntegerField(required=False, help_text="Throttled only: when to try again.")

    class Meta:
        ref_name = "Error"  # the component is called Error


ERROR_DESCRIPTIONS = {
    400: "Invalid request: `errors` lists each field's problems (also a body that is not JSON, a NUL byte in the URL).",
    401: "The credentials are missing, wrong or revoked.",
    403: "Not allowed: staff only, not a tenant of yours, or a session without its CSRF token.",
    404: "Not found (or not yours).",
    429: "Throttled: try again after `retry_after_s` seconds.",
}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_TO_ALL = (permissions.AllowAny, permissions.IsAuthenticated)


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry) -> dict | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error = {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}}
        responses = operation["responses"]
        for code, description in self._errors().items():
            responses.setdefault(str(code), {"description": description})
        for code, response in responses.items():
            if int(code) >= 400:
                response.setdefault("content", error)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _errors(self) -> dict[int, str]:
        errors = {code: ERROR_DESCRIPTIONS[code] for code in (400, 401, 429)}
        restricted = any(not isinstance(p, OPEN_TO_ALL) for p in self.view.get_permissions())
        if self.method in UNSAFE or restricted:
            errors[403] = ERROR_DESCRIPTIONS[403]
        if "{" in self.path:
            errors[404] = ERROR_DESCRIPTIONS[404]
        elif self._is_list_view():
            errors[404] = "A page past the end."
        return errors
