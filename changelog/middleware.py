"""One change-log context per request: its id (X-Request-ID if sane, else a new one, sent
back in the response's X-Request-ID) and its session user. After AuthenticationMiddleware;
the API's token authentication names the token's user later (hosting/api/auth.py)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from changelog import context

HEADER = "X-Request-ID"


class RequestChanges:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cid = context.sane_cid(request.headers.get(HEADER)) or context.new_cid()
        user = getattr(request, "user", None)
        # A session user only; the lazy user is read once, here, as Django would at the view.
        actor = user if user is not None and user.is_authenticated else None
        with context.acting(cid=cid, user=actor, remote_addr=request.META.get("REMOTE_ADDR")):
            response = self.get_response(request)
        response[HEADER] = cid
        return response
