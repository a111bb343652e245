from django.utils.functional import SimpleLazyObject

from .roles import Role, roles_of
from .selectors import user_email_verified


def roles(request):
    user = getattr(request, "user", None)
    user_roles = roles_of(user) if user is not None else set()
    return {
        "is_developer": Role.DEVELOPER in user_roles,
        "is_support": Role.SUPPORT in user_roles,
        "is_manager": Role.MANAGER in user_roles,
        # Every page says so while the address is unverified (no key is stored, no mail is sent).
        # Lazy: asked only by the pages that draw the banner (base.html), not by htmx partials and polls.
        "email_unverified": SimpleLazyObject(
            lambda: bool(user and user.is_authenticated and not user_email_verified(user=user))
        ),
    }
