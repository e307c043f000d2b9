"""Throttles that fail open: if the cache holding their counters is down, requests go
through (and it is logged) rather than every API call failing with it."""

import logging

from rest_framework import throttling

log = logging.getLogger(__name__)


class FailOpen:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache (Redis) is unreachable
            log.warning("throttle %s skipped: its cache is unreachable", type(self).__name__, exc_info=True)
            return True


class AnonRateThrottle(FailOpen, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(FailOpen, throttling.UserRateThrottle):
    pass


class QuoteThrottle(FailOpen, throttling.SimpleRateThrottle):
    """Quote requests per client IP; a token holder gets its own, higher allowance."""

    def get_rate(self):
        return None  # chosen per request in allow_request

    def allow_request(self, request, view):
        token_holder = request.user.is_authenticated and request.auth is not None
        self.scope = "quote_token" if token_holder else "quote_anon"
        self.rate = self.THROTTLE_RATES[self.scope]
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        ident = request.user.pk if self.scope == "quote_token" else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
