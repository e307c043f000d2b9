"""Request hygiene that no view should have to repeat."""

from django.http import JsonResponse


class RejectNulBytes:
    """A NUL byte in a URL is never meaningful and PostgreSQL refuses it in text with an
    error, not an empty result: answer 400 before any view or query sees it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.GET
        if "\x00" in request.path or any("\x00" in k or any("\x00" in v for v in query.getlist(k)) for k in query):
            return JsonResponse({"code": "invalid", "message": "NUL bytes are not allowed in URLs."}, status=400)
        return self.get_response(request)
