from allauth.account.authentication import get_authentication_records
from allauth.usersessions.internal import usersessionkit
from django.contrib import messages
from django.core.cache import cache
from django.db import DatabaseError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.deprecation import MiddlewareMixin

from .roles import Role, roles_of
from .selectors import user_has_second_factor

TRACK_EVERY_SECONDS = 60

# Account pages (enrolment itself, sign-out, email, password, sessions) and what every page needs stay open.
OPEN_PREFIXES = ("/accounts/", "/static/", "/healthz", "/favicon.ico", "/status")


def is_staff_account(user) -> bool:
    return user.is_staff or user.is_superuser or bool(roles_of(user) & {Role.SUPPORT, Role.MANAGER})


def signed_in_by_single_sign_on(request) -> bool:
    """The identity provider enforces its own second factor (the issue's rule): SSO satisfies ours."""
    return any(record.get("method") == "socialaccount" for record in get_authentication_records(request, request.user))


class StaffMultiFactorRequired(MiddlewareMixin):
    """Support engineers, managers and administrators who signed in with a password and have no second factor
    yet are sent to enrol one from every staff page; developers are not (it is optional for them).
    MiddlewareMixin keeps it async-capable: under ASGI a waiting check page holds no thread."""

    def process_request(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(OPEN_PREFIXES)
            and is_staff_account(user)
            and not signed_in_by_single_sign_on(request)
            and not user_has_second_factor(user=user)
        ):
            messages.warning(
                request,
                "Staff accounts need a second factor: set up an authenticator app or a passkey to continue.",
            )
            return redirect(f"{reverse('mfa_index')}")
        return None


class UserSessions(MiddlewareMixin):
    """allauth's UserSessionsMiddleware (sync-only: under ASGI it would hold a thread for each waiting check
    page), as a MiddlewareMixin, and at most once a minute per session: allauth's writes the session's row
    (three queries and a savepoint) at every request, every long poll of a check page included. "Last seen"
    on the sessions page is to the minute."""

    def process_request(self, request):
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is None or not session.session_key or user is None or not user.is_authenticated:
            return
        if cache.add(f"usersessions-seen:{session.session_key}", 1, TRACK_EVERY_SECONDS):
            try:
                usersessionkit.track_activity(request, user=user, session=session)
            except DatabaseError:  # a read-only database: "last seen" waits; the page (or /healthz) answers
                cache.delete(f"usersessions-seen:{session.session_key}")
