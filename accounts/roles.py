"""The portal's three roles, each a Django group created by a data migration."""

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from hokusai_portal.prepared import PreparedValues


class Role(StrEnum):
    DEVELOPER = "Developers"
    SUPPORT = "Support engineers"
    MANAGER = "Managers"


def _roles_query(user_id: int):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import Exists, OuterRef

    groups = Group.objects.filter(user=OuterRef("pk"))
    return (
        get_user_model()
        .objects.filter(pk=user_id)
        .values(**{role.name: Exists(groups.filter(name=role.value)) for role in Role})
    )


# Compiled once (hokusai_portal/prepared.py): every signed-in request asks it.
_roles = PreparedValues(_roles_query)


def roles_of(user) -> set[Role]:
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(Role)
    if not hasattr(user, "_portal_roles"):
        held = _roles.first(user.pk) or {}
        user._portal_roles = {role for role in Role if held.get(role.name)}
    return user._portal_roles


def has_role(user, *roles: Role) -> bool:
    return bool(roles_of(user) & set(roles))


def role_required(*roles: Role) -> Callable:
    """Signed-in users with one of `roles` get the view; other signed-in users get 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
