"""Onboarding's answers to the signals of the apps below it (accounts never imports onboarding)."""

from allauth.account.models import EmailAddress
from allauth.account.signals import email_confirmed
from django.dispatch import receiver
from django.utils import timezone

from accounts.signals import account_data_requested, account_deleting, developer_signed_up

from .models import ApiKey, CheckRun, DeveloperProgress, EnvironmentReport, Registration


@receiver(developer_signed_up, dispatch_uid="onboarding_progress_start")
def progress_start(*, user, **kwargs) -> None:
    """The dashboard's onboarding funnel starts at sign-up."""
    verified = EmailAddress.objects.filter(user=user, verified=True).exists()  # an operator vouched for it
    DeveloperProgress.objects.get_or_create(
        user=user,
        defaults={"signed_up_at": user.date_joined, "email_verified_at": user.date_joined if verified else None},
    )


@receiver(email_confirmed, dispatch_uid="onboarding_progress_email_verified")
def progress_email_verified(*, email_address, **kwargs) -> None:
    """The funnel's "Email verified" step: the first address the developer confirmed (allauth's signal)."""
    DeveloperProgress.objects.filter(user_id=email_address.user_id, email_verified_at__isnull=True).update(
        email_verified_at=timezone.now()
    )


@receiver(account_data_requested, dispatch_uid="onboarding_account_data")
def account_data(*, user, **kwargs) -> dict:
    """Checks, registrations and environment reports for "Download my data"; of the key, only its mask."""
    key = ApiKey.objects.filter(user=user).first()
    return {
        "api_key": {"masked": key.masked} if key else None,
        "checks": [
            {
                "id": r.pk,
                "kind": r.kind,
                "status": r.status,
                "cause": r.cause,
                "model_name": r.model_name,
                "created_at": r.created_at.isoformat(),
            }
            for r in CheckRun.objects.filter(user=user).order_by("created_at")
        ],
        "registrations": list(
            Registration.objects.filter(user=user).values("model_uri", "model_name", "token_id", "metric_name")
        ),
        "environment_reports": [
            {"id": r.pk, "created_at": r.created_at.isoformat(), "ok": r.ok, "facts": r.facts}
            for r in EnvironmentReport.objects.filter(user=user).order_by("created_at")
        ],
    }


@receiver(account_deleting, dispatch_uid="onboarding_account_deleting")
def account_deleting_destroys_the_key(*, user, **kwargs) -> None:
    """The saved key goes with the account; checks stay (reports on investigations point at them)."""
    ApiKey.objects.filter(user=user).delete()
