from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .roles import Role
from .signals import account_data_requested, account_deleting, account_deletion_blockers, developer_signed_up


@transaction.atomic
def user_create(*, username: str, email: str = "", password: str, role: Role) -> "get_user_model()":
    """An account an operator makes (the admin's helpers, demo_setup, the tests): the operator vouches for the
    address, so it is recorded as verified. Developers who sign up themselves verify theirs (allauth)."""
    user = get_user_model().objects.create_user(username=username, email=email, password=password)
    if email:
        EmailAddress.objects.create(user=user, email=email.lower(), verified=True, primary=True)
    group, _ = Group.objects.get_or_create(name=role.value)
    user.groups.add(group)
    if role == Role.DEVELOPER:
        developer_signed_up.send(sender=user.__class__, user=user)
    return user


@transaction.atomic
def developer_signup_complete(*, user) -> "get_user_model()":
    """A self sign-up (allauth's form, address not yet verified): saved, in the developer role, announced."""
    user.save()
    group, _ = Group.objects.get_or_create(name=Role.DEVELOPER.value)
    user.groups.add(group)
    developer_signed_up.send(sender=user.__class__, user=user)
    return user


@transaction.atomic
def staff_roles_sync(*, user, roles: set[Role]) -> None:
    """Support and manager roles as the identity provider's groups say now: granted, or taken away."""
    for role in (Role.SUPPORT, Role.MANAGER):
        group, _ = Group.objects.get_or_create(name=role.value)
        if role in roles:
            user.groups.add(group)
        else:
            user.groups.remove(group)
    if hasattr(user, "_portal_roles"):
        del user._portal_roles


def totp_enrol(*, user) -> str:
    """A TOTP authenticator for `user` (demo staff, test fixtures); returns the base32 secret to make codes."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


class AccountDeletionRefused(Exception):
    pass


def account_export(*, user) -> dict:
    """The account's data as JSON: its profile here, each app's sections from `account_data_requested`."""
    data = {
        "profile": {
            "username": user.get_username(),
            "email": user.email,
            "date_joined": user.date_joined.isoformat(),
            "last_login": user.last_login.isoformat() if user.last_login else None,
            "roles": sorted(group.name for group in user.groups.all()),
            "email_addresses": [
                {"email": a.email, "verified": a.verified, "primary": a.primary}
                for a in EmailAddress.objects.filter(user=user)
            ],
            "second_factors": sorted({a.type for a in user.authenticator_set.all()}),
        }
    }
    for _, sections in account_data_requested.send(sender=user.__class__, user=user):
        data.update(sections or {})
    return data


def account_deletion_blocked(*, user) -> list[str]:
    return [reason for _, reason in account_deletion_blockers.send(sender=user.__class__, user=user) if reason]


@transaction.atomic
def account_delete(*, user) -> None:
    """Delete an account: what identifies the person goes (name, email, password, second factors, SSO links,
    sessions); the apps above destroy what is theirs (the saved key) and keep what others rely on (reports
    stay on investigations, from "a deleted developer"). Raises AccountDeletionRefused with the reasons."""
    from allauth.socialaccount.models import SocialAccount
    from allauth.usersessions.models import UserSession

    reasons = account_deletion_blocked(user=user)
    if reasons:
        raise AccountDeletionRefused(" ".join(reasons))
    account_deleting.send(sender=user.__class__, user=user)
    for session in UserSession.objects.filter(user=user):
        session.end()
    EmailAddress.objects.filter(user=user).delete()
    user.authenticator_set.all().delete()
    SocialAccount.objects.filter(user=user).delete()
    user.groups.clear()
    user.username = f"deleted-developer-{user.pk}"
    user.email = user.first_name = user.last_name = ""
    user.is_active = user.is_staff = user.is_superuser = False
    user.set_unusable_password()
    user.save()
