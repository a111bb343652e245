from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .roles import Role


@transaction.atomic
def user_create(*, username: str, email: str = "", password: str, role: Role) -> "get_user_model()":
    user = get_user_model().objects.create_user(username=username, email=email, password=password)
    group, _ = Group.objects.get_or_create(name=role.value)
    user.groups.add(group)
    if role == Role.DEVELOPER:
        from onboarding.models import DeveloperProgress

        DeveloperProgress.objects.create(user=user, signed_up_at=user.date_joined)
    return user
