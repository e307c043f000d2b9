"""`Authorization: Token <key>` against hashed, revocable, per-user API tokens."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from changelog import context as changes
from hosting.models import ApiToken

# Touch last_used_at at most this often per token: one write per minute, not per request.
LAST_USED_GRANULARITY_S = 60


class TokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key):
        token = ApiToken.objects.live().select_related("user").filter(digest=ApiToken.digest_of(key)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_GRANULARITY_S:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        # The change log: this request's changes are the token's user's, made with this token.
        changes.act_as(token.user, by=f"token {token.prefix}")
        return token.user, token


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "hosting.api.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; staff issue and revoke keys in the admin, tenants in the portal.",
        }
