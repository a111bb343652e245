"""allauth's signals, received: a known browser is remembered at sign-in, staff roles follow the identity
provider's groups at every SSO sign-in, and a password reset ends the account's other sessions and lifts the
sign-in lock its owner may have met."""

from allauth.account.adapter import get_adapter
from allauth.account.signals import password_reset, user_logged_in
from allauth.usersessions.internal.flows.sessions import end_other_sessions
from django.dispatch import receiver

from . import services
from .adapter import device_cookie_remember, staff_roles_from_claims


@receiver(user_logged_in, dispatch_uid="accounts.signed_in")
def signed_in(sender, request, user, response=None, sociallogin=None, **kwargs):
    if response is not None:
        device_cookie_remember(request, response, user)
    if sociallogin is not None and sociallogin.account.provider == "sso":
        data = sociallogin.account.extra_data or {}
        claims = {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}
        services.staff_roles_sync(user=user, roles=staff_roles_from_claims(claims))


@receiver(password_reset, dispatch_uid="accounts.password_reset_ends_other_sessions")
def password_was_reset(sender, request, user, **kwargs):
    end_other_sessions(request, user)
    get_adapter(request).login_failures_forget(request, user)
