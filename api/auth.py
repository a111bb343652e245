"""Bearer tokens for the API: who is calling, with what scope, how often.

Every refusal is a problem (RFC 9457): 401 without a token or with one that admits no one (TOKEN_MISSING,
TOKEN_INVALID, TOKEN_REVOKED, TOKEN_EXPIRED), 429 past the token's rate (RATE_LIMITED, with Retry-After),
403 naming a scope the token lacks (SCOPE_MISSING) or one its user's role no longer allows (ROLE_MISSING)."""

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from hokusai_portal.ratelimit import Limited, SlidingWindow, client_address

from . import services
from .scopes import SCOPES, scope_allowed


class ApiProblem(Exception):
    """Raised anywhere in the API; answered as problem+json by the handler in endpoints.py."""

    def __init__(self, status: int, cause: str, detail: str, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.cause, self.detail, self.headers, self.extra = status, cause, detail, headers or {}, extra


UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="hokusai-portal"'}


def _rate_window() -> SlidingWindow:
    return SlidingWindow("api-token", settings.API_TOKEN_REQUESTS_PER_MINUTE, 60)


def require_scope(request: HttpRequest, scope: str) -> None:
    """403 unless the request's token has `scope` and its user still has a role that allows it."""
    token = request.auth
    if scope not in token.scopes:
        raise ApiProblem(
            403, "SCOPE_MISSING", f"This token lacks the scope {scope}: make a token with it.", scope=scope
        )
    if not scope_allowed(token.user, scope):
        roles = " or ".join(sorted(role.value for role in SCOPES[scope].roles))
        raise ApiProblem(
            403,
            "ROLE_MISSING",
            f"The scope {scope} needs the role {roles}, which this account does not have now.",
            scope=scope,
        )


class AccessTokenAuth(HttpBearer):
    """`Authorization: Bearer hkp_…`; with `scope`, the token must also carry it (see require_scope)."""

    def __init__(self, scope: str | None = None):
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest):
        # Not HttpBearer.__call__: under DEBUG it logs a header it cannot read, which may be a secret.
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not presented.strip():
            raise ApiProblem(
                401,
                "TOKEN_MISSING",
                "Send an access token: Authorization: Bearer hkp_… (make one at /account/tokens/).",
                headers=UNAUTHORIZED,
            )
        return self.authenticate(request, presented.strip())

    def authenticate(self, request: HttpRequest, token: str):
        try:
            access_token = services.access_token_authenticate(presented=token, address=client_address(request))
        except services.TokenRefused as refused:
            raise ApiProblem(401, refused.cause, refused.detail, headers=UNAUTHORIZED) from None
        window = _rate_window()
        try:
            window.check(str(access_token.pk))
        except Limited as limited:
            raise ApiProblem(
                429,
                "RATE_LIMITED",
                f"This token made more than {window.limit} requests in a minute; try again in {limited.wait}.",
                headers={"Retry-After": str(limited.retry_after)},
            ) from None
        window.hit(str(access_token.pk))
        request.auth = access_token
        if self.scope:
            require_scope(request, self.scope)
        return access_token
