"""Onboarding reads. Every read of a run goes through here so ownership is checked in one place."""

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.roles import Role, has_role

from .models import ApiKey, CheckRun
from .services import check_runs_expire

WIZARD_STEPS = [("key", "Key"), ("connectivity", "Connectivity"), ("registration", "Registration"), ("done", "Done")]


def check_run_list_for(*, user) -> QuerySet[CheckRun]:
    """A developer sees their own runs; a support engineer sees everyone's."""
    check_runs_expire()
    runs = CheckRun.objects.select_related("user")
    if has_role(user, Role.SUPPORT):
        return runs
    return runs.filter(user=user)


def check_run_get_for(*, user, run_id: int) -> CheckRun:
    run = get_object_or_404(check_run_list_for(user=user), pk=run_id)
    return run


def check_run_owned_by(*, user, run_id: int) -> CheckRun:
    run = get_object_or_404(CheckRun, pk=run_id)
    if run.user_id != user.pk:
        raise PermissionDenied
    return run


def api_key_for(*, user) -> ApiKey | None:
    return ApiKey.objects.filter(user=user).first()


def onboarding_state(*, user) -> dict:
    """Where the user is in the wizard, derived from what they have (nothing extra to keep in sync)."""
    api_key = api_key_for(user=user)
    latest = CheckRun.objects.filter(user=user, kind=CheckRun.Kind.CONNECTIVITY).first() if api_key else None
    if latest is not None and not latest.is_finished:
        check_runs_expire()
        latest.refresh_from_db()
    connectivity_passed = CheckRun.objects.filter(
        user=user, kind=CheckRun.Kind.CONNECTIVITY, status=CheckRun.Status.PASSED
    ).exists() if api_key else False  # fmt: skip
    if api_key is None:
        current = "key"
    elif not connectivity_passed:
        current = "connectivity"
    else:
        current = "registration"
    done = {"key": api_key is not None, "connectivity": connectivity_passed, "registration": False, "done": False}
    return {
        "api_key": api_key,
        "latest_run": latest,
        "connectivity_passed": connectivity_passed,
        "current": current,
        "steps": [
            {"name": name, "label": label, "done": done[name], "current": name == current}
            for name, label in WIZARD_STEPS
        ],
    }
