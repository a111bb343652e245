"""What the portal adds to django-allauth's flows: the developer role at sign-up, the sign-in rate-limit keys
(per account+address, per account, per known browser), staff roles from the OIDC provider's groups, and mail
that cannot take a page down when SMTP is."""

import logging
import secrets
import smtplib

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.internal import ratelimit
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import Q

from hokusai_portal import crypto
from hokusai_portal.ratelimit import client_address

from . import services
from .roles import Role

logger = logging.getLogger(__name__)

# A browser that signed in to an account before keeps its own allowance of failures for that account
# (OWASP's "device cookies"): a guesser elsewhere who spends the account's allowance does not lock it out.
DEVICE_COOKIE = "portal_device"
DEVICE_COOKIE_SALT = "accounts.device-cookie"
DEVICE_COOKIE_MAX_AGE = 180 * 24 * 3600


def device_cookie_read(request) -> dict:
    """{"device": id, "users": [pk, ...]} from the signed cookie, or an empty one when absent or forged."""
    try:
        value = signing.loads(
            request.COOKIES.get(DEVICE_COOKIE, ""), salt=DEVICE_COOKIE_SALT, max_age=DEVICE_COOKIE_MAX_AGE
        )
    except signing.BadSignature:
        return {"device": "", "users": []}
    if not isinstance(value, dict) or not isinstance(value.get("users"), list):
        return {"device": "", "users": []}
    return {"device": str(value.get("device", "")), "users": [u for u in value["users"] if isinstance(u, int)]}


def device_cookie_remember(request, response, user) -> None:
    cookie = device_cookie_read(request)
    users = [pk for pk in cookie["users"] if pk != user.pk][-9:] + [user.pk]
    value = signing.dumps(
        {"device": cookie["device"] or secrets.token_urlsafe(16), "users": users}, salt=DEVICE_COOKIE_SALT
    )
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_COOKIE_MAX_AGE,
        httponly=True,
        secure=settings.SESSION_COOKIE_SECURE,
        samesite="Lax",
    )


def _account_key(user_pk: int) -> str:
    """An account's part of its sign-in failure keys, whatever name it was tried by."""
    return f"user:{user_pk}"


class _Usages:
    """Both sign-in counters, rolled back together on a success (allauth rolls back one)."""

    def __init__(self, usages):
        self.usages = usages

    def rollback(self) -> None:
        for usage in self.usages:
            usage.rollback()


class AccountAdapter(DefaultAccountAdapter):
    def get_client_ip(self, request) -> str:
        # The portal's reading of X-Forwarded-For (TRUSTED_PROXY_HOPS, from the right); never a 500 on a short one.
        return client_address(request) or "unknown"

    def populate_username(self, request, user) -> None:
        # Developers sign in with their email; it is their username too (as before allauth).
        user.username = (user.email or "").strip().lower()

    def clean_email(self, email: str) -> str:
        return super().clean_email(email).strip().lower()

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=False)
        return services.developer_signup_complete(user=user)

    def pre_authenticate(self, request, **credentials) -> None:
        """Failed sign-ins are counted per account+address (5 in 15 minutes) and per account (20), or, from a
        browser that signed in to this account before, per account+browser only. Per address alone sign-ins
        are throttled (allauth's `login` rate), never locked: an office behind one NAT is not shut out. An
        account is counted by its id whatever name it is tried by (its username or its address): guessing
        one and then the other does not double the allowance."""
        login = str(credentials.get("email", credentials.get("username", ""))).strip().lower()
        user_pk = (
            get_user_model()
            .objects.filter(Q(username__iexact=login) | Q(email__iexact=login))
            .values_list("pk", flat=True)
            .first()
        )
        account = _account_key(user_pk) if user_pk is not None else f"login:{login}"
        cookie = device_cookie_read(request)
        if user_pk is not None and user_pk in cookie["users"]:
            keys = [self._device_key(account, cookie)]
        else:
            keys = [self._address_key(request, account), ("login_failed_account", account)]
        usages = []
        for action, key in keys:
            usage = ratelimit.consume(request, app="allauth.account", action=action, key=key)
            if not usage:
                _Usages(usages).rollback()
                self._login_failed_rl_usage = None
                logger.warning("sign-in refused: too many failures (%s)", action)
                raise self.validation_error("too_many_login_attempts")
            usages.append(usage)
        self._login_failed_rl_usage = _Usages(usages)

    def _address_key(self, request, account: str) -> tuple[str, str]:
        return "login_failed", f"{account}|{self.get_client_ip(request)}"

    @staticmethod
    def _device_key(account: str, cookie: dict) -> tuple[str, str]:
        return "login_failed", f"{account}|device|{cookie['device']}"

    def login_failures_forget(self, request, user) -> None:
        """After a password reset: the failures that could still lock the owner out are forgotten, those
        counted for the account and for it from this address and this browser. The reset proves the mailbox,
        and is itself rate limited. Failures counted from other addresses stay theirs: a guesser elsewhere
        gets no fresh allowance from the owner's reset. (allauth clears its own per-email key here; the
        portal counts per account id, as pre_authenticate does, so an address added to another account,
        unverified, names nothing here.)"""
        account = _account_key(user.pk)
        keys = [self._address_key(request, account), ("login_failed_account", account)]
        cookie = device_cookie_read(request)
        if cookie["device"]:
            keys.append(self._device_key(account, cookie))
        for action, key in keys:
            ratelimit.clear(request, app="allauth.account", action=action, key=key)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Sending happens in the request (the message holds a one-time link or code, which the portal never
        stores: not in the notifications outbox either). When the mail server is down, say so and carry on:
        the account is made, and "send again" works once the server is back."""
        try:
            super().send_mail(template_prefix, email, context)
        except (OSError, smtplib.SMTPException) as error:
            logger.error("account mail %s not sent: %s", template_prefix.rsplit("/", 1)[-1], type(error).__name__)
            request = context.get("request") or getattr(self, "request", None)
            if request is not None and hasattr(request, "_messages"):
                messages.warning(
                    request,
                    "We could not send the email just now (our mail server did not answer). "
                    "Try “send again” in a few minutes.",
                )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Staff single sign-on: the provider's groups decide support and manager roles at every sign-in."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return True

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        user.username = (user.email or sociallogin.account.uid).strip().lower()[:150]
        return user


class MultiFactorAdapter(DefaultMFAAdapter):
    """TOTP secrets and recovery-code seeds are encrypted at rest with the portal's Fernet keys (as API keys)."""

    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(encrypted_text)

    def can_delete_authenticator(self, authenticator) -> bool:
        # Staff keep at least one second factor (the rule the middleware enforces); developers may drop theirs.
        from .middleware import is_staff_account

        if not is_staff_account(authenticator.user):
            return True
        others = authenticator.user.authenticator_set.exclude(pk=authenticator.pk).exclude(type="recovery_codes")
        return others.exists()


def staff_roles_from_claims(claims: dict) -> set[Role]:
    """The roles the OIDC provider's role claim (a list, or a comma-separated string) grants."""
    value = claims.get(settings.OIDC_ROLE_CLAIM) or []
    groups = {g.strip() for g in (value.split(",") if isinstance(value, str) else value) if isinstance(g, str)}
    roles = set()
    if groups & set(settings.OIDC_SUPPORT_GROUPS):
        roles.add(Role.SUPPORT)
    if groups & set(settings.OIDC_MANAGER_GROUPS):
        roles.add(Role.MANAGER)
    return roles
