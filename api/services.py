"""Access tokens: made (shown once), checked at every API call, revoked. The one write path for tokens:
the account page, the command and the admin call these."""

import hashlib
import hmac
import logging
import secrets
import string
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from .models import AccessToken
from .scopes import SCOPES, scope_allowed

logger = logging.getLogger(__name__)

PREFIX = "hkp_"
SECRET_LENGTH = 43  # 43 characters of 62: 256 bits
ALPHABET = string.ascii_letters + string.digits
DEFAULT_DAYS = 90
MAX_DAYS = 365
MAX_PRESENTED = 200  # longer than any token: refused before hashing
LAST_USE_RESOLUTION = timedelta(minutes=1)  # a token's last use is recorded to the minute


class AccessTokenInvalid(ValueError):
    """A token that cannot be made as asked; `errors` has a message per field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class TokenRefused(Exception):
    """A presented token that admits no one; `cause` says why (TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_REVOKED)."""

    def __init__(self, cause: str, detail: str):
        super().__init__(detail)
        self.cause, self.detail = cause, detail


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def access_token_create(
    *, user: AbstractBaseUser, name: str, scopes: list[str], days: int | None = None
) -> tuple[AccessToken, str]:
    """A new token for `user` with `scopes` (each one the user's roles allow), valid `days` (default 90, at
    most 365). Returns the row and the token, which is not kept anywhere: show it once."""
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Name the token after what uses it, e.g. “CI of lscor-model”."
    elif len(name) > 100:
        errors["name"] = "A token's name has at most 100 characters."
    scopes = list(dict.fromkeys(scope.strip() for scope in scopes if scope.strip()))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if not scopes:
        errors["scopes"] = f"Choose at least one scope: {', '.join(SCOPES)}."
    elif unknown:
        errors["scopes"] = f"No such scope: {', '.join(unknown)}. Scopes: {', '.join(SCOPES)}."
    elif refused := [scope for scope in scopes if not scope_allowed(user, scope)]:
        errors["scopes"] = f"Your account's role does not allow {', '.join(refused)}."
    days = DEFAULT_DAYS if days is None else days
    if not 1 <= days <= MAX_DAYS:
        errors["days"] = f"A token is valid for 1 to {MAX_DAYS} days."
    if errors:
        raise AccessTokenInvalid(errors)
    plain = PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))
    token = AccessToken.objects.create(
        user=user,
        name=name,
        scopes=scopes,
        token_hash=token_digest(plain),
        hint=plain[:8],
        expires_at=timezone.now() + timedelta(days=days),
    )
    logger.info("access token created user=%s token=%s scopes=%s", user.pk, token.pk, ",".join(scopes))
    return token, plain


def access_token_revoke(*, token: AccessToken) -> bool:
    """Revoke `token` (at once: the next call with it gets 401). False if it was revoked already."""
    revoked = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        logger.info("access token revoked user=%s token=%s", token.user_id, token.pk)
    return bool(revoked)


def access_token_authenticate(*, presented: str, address: str) -> AccessToken:
    """The token row `presented` is, if it admits anyone now; its last use is recorded. Raises TokenRefused."""
    if not presented.startswith(PREFIX) or len(presented) > MAX_PRESENTED or not presented.isascii():
        raise TokenRefused("TOKEN_INVALID", "This is not a Hokusai Portal access token (they start with hkp_).")
    digest = token_digest(presented)
    token = AccessToken.objects.select_related("user").filter(token_hash=digest).first()
    # The lookup is by a hash of 256 random bits; the comparison of the bytes is constant-time all the same.
    if token is None or not hmac.compare_digest(token.token_hash.encode(), digest.encode()):
        raise TokenRefused("TOKEN_INVALID", "No such access token: check it was copied whole.")
    if token.revoked_at is not None:
        raise TokenRefused("TOKEN_REVOKED", "This access token was revoked: make a new one at /account/tokens/.")
    if token.is_expired:
        raise TokenRefused("TOKEN_EXPIRED", "This access token has expired: make a new one at /account/tokens/.")
    if not token.user.is_active:
        raise TokenRefused("TOKEN_INVALID", "The account this token belongs to is disabled.")
    now, address = timezone.now(), address[:64]
    # The tokens page shows the last use to the minute: a script calling many times a minute from one address
    # writes the row once a minute, not once a call.
    recorded = token.last_used_at is not None and now - token.last_used_at < LAST_USE_RESOLUTION
    if not (recorded and token.last_used_from == address):
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_from=address)
        token.last_used_at, token.last_used_from = now, address
    return token
