"""Onboarding reads. Every read of a run goes through here so ownership is checked in one place."""

import functools
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.roles import Role, has_role
from accounts.selectors import email_verified_known, email_verified_of_user_row
from hokusai_portal import query as query_values
from hokusai_portal.prepared import PreparedValues
from organizations.selectors import organization_id_of

from .diagnosis import StepStatus
from .models import ApiKey, CheckRun, CheckStep, EnvironmentReport, OrganizationApiKey, Registration
from .registration_input import RegistrationRequest
from .snippet import python_snippet

WIZARD_STEPS = [
    ("key", "Key"),
    ("connectivity", "Connectivity"),
    ("environment", "Your environment"),  # optional: never the step a developer is sent to
    ("registration", "Registration"),
    ("done", "Done"),
]
OPTIONAL_STEPS = {"environment"}


def shared_with(*, user) -> Q:
    """What a developer may read of runs (and what hangs off them): their own, and those run in their
    organization (by any member, while a member). The one place the organization widens onboarding's reads."""
    organization_id = organization_id_of(user=user)
    mine = Q(user=user)
    return mine | Q(organization_id=organization_id) if organization_id else mine


def check_run_list_for(*, user) -> QuerySet[CheckRun]:
    """A developer sees their own runs and their organization's; support engineers and managers see everyone's."""
    runs = CheckRun.objects.select_related("user")
    if has_role(user, Role.SUPPORT, Role.MANAGER):
        return runs
    return runs.filter(shared_with(user=user))


def history_filters(query) -> dict:
    """The history's filters from a query string; what cannot be read is left out, never an error."""
    return {
        "cause": query_values.text(query.get("cause"), 64),
        "since": query_values.day(query.get("since")),
        "failed": query.get("failed") == "1",
    }


def check_runs_filtered(runs: QuerySet[CheckRun], filters: dict) -> QuerySet[CheckRun]:
    if filters["cause"]:
        runs = runs.filter(cause=filters["cause"])
    if filters["since"]:
        runs = runs.filter(created_at__gte=query_values.local_midnight(filters["since"]))
    if filters["failed"]:
        runs = runs.filter(status__in=CheckRun.UNSUCCESSFUL)
    return runs


def check_run_get_for(*, user, run_id: int) -> CheckRun:
    return get_object_or_404(check_run_list_for(user=user), pk=run_id)


def check_run_owned_by(*, user, run_id: int) -> CheckRun:
    run = get_object_or_404(CheckRun, pk=run_id)
    if run.user_id != user.pk:
        raise PermissionDenied
    return run


def api_key_for(*, user) -> ApiKey | None:
    return ApiKey.objects.filter(user=user).first()


def organization_key_for(*, user) -> OrganizationApiKey | None:
    organization_id = organization_id_of(user=user)
    return OrganizationApiKey.objects.filter(organization_id=organization_id).first() if organization_id else None


def run_key_for(*, user) -> ApiKey | OrganizationApiKey | None:
    """The key a check of this user runs with: their own when they saved one (a personal key wins: the
    developer chose it for themselves), else their organization's."""
    return api_key_for(user=user) or organization_key_for(user=user)


def _progress_query(user_id: int) -> QuerySet:
    passed = CheckRun.objects.filter(user=OuterRef("pk"), status=CheckRun.Status.PASSED)
    return (
        get_user_model()
        .objects.filter(pk=user_id)
        .values(
            has_key=Exists(ApiKey.objects.filter(user=OuterRef("pk")))
            | Exists(OrganizationApiKey.objects.filter(organization__memberships__user=OuterRef("pk"))),
            connectivity_passed=Exists(passed.filter(kind=CheckRun.Kind.CONNECTIVITY)),
            registered=Exists(
                Registration.objects.filter(user=OuterRef("pk"), failed=False, check_run__status=CheckRun.Status.PASSED)
            ),
            reported=Exists(EnvironmentReport.objects.filter(user=OuterRef("pk"))),
            # Not the wizard's: every page's banner asks it, and the row is read here anyway.
            email_verified=email_verified_of_user_row(),
        )
    )


# Compiled once: building these EXISTS cost ~25x running them, on every page with the wizard (issue 27).
_progress_prepared = PreparedValues(_progress_query)


def _progress(*, user) -> dict:
    """What the developer has done, in one query on their row: a key (their own or their organization's),
    a passed connectivity check, a registration, an environment report."""
    row = _progress_prepared.first(user.pk)
    if row is None:
        raise get_user_model().DoesNotExist(user.pk)
    email_verified_known(user=user, verified=row.pop("email_verified"))
    return {name: bool(value) for name, value in row.items()}  # SQLite answers EXISTS with 0 or 1


def wizard_of(*, user, progress: dict | None = None) -> dict:
    """The wizard's steps, what is done and the step the developer is at (one query): what a page that shows
    the wizard, but not the key, needs."""
    progress = progress if progress is not None else _progress(user=user)
    has_key = progress["has_key"]
    connectivity_passed = progress["connectivity_passed"] and has_key
    registered = progress["registered"]
    if not has_key:
        current = "key"
    elif not connectivity_passed:
        current = "connectivity"
    elif not registered:
        current = "registration"
    else:
        current = "done"
    done = {
        "key": has_key,
        "connectivity": connectivity_passed,
        "environment": progress["reported"],
        "registration": registered,
        "done": registered,
    }
    return {
        "connectivity_passed": connectivity_passed,
        "registered": registered,
        "current": current,
        "wizard_steps": [
            {
                "name": name,
                "label": label,
                "done": done[name],
                "current": name == current,
                "optional": name in OPTIONAL_STEPS,
            }
            for name, label in WIZARD_STEPS
        ],
    }


def onboarding_state(*, user) -> dict:
    """Where the user is in the wizard, derived from what they have (nothing extra to keep in sync), with
    the key itself and the latest check (the pages that show them)."""
    personal_key = api_key_for(user=user)
    organization_key = organization_key_for(user=user)
    api_key = personal_key or organization_key
    latest = CheckRun.objects.filter(user=user, kind=CheckRun.Kind.CONNECTIVITY).first() if api_key else None
    return {
        "api_key": api_key,
        "personal_key": personal_key,
        "organization_key": organization_key,
        "latest_run": latest,
        **wizard_of(user=user, progress={**_progress(user=user), "has_key": api_key is not None}),
    }


def registration_initial(*, user) -> dict:
    """Prefill the form from the user's last registration, so a retry after a fix is one click."""
    last = Registration.objects.filter(user=user).first()
    if last is None:
        return {}
    return {
        "model_uri": last.model_uri,
        "model_name": last.model_name,
        "token_id": last.token_id,
        "metric_name": last.metric_name,
        "baseline_value": last.baseline_value,
        "proposal_identifier": last.proposal_identifier,
        "extra_tags": "\n".join(f"{k}={v}" for k, v in last.extra_tags.items()),
    }


def registration_result(*, run: CheckRun) -> dict:
    """For a registration run: the registration, and once registered the snippet that reproduces it."""
    if run.kind != CheckRun.Kind.REGISTRATION:
        return {}
    registration = run.registration
    context = {"registration": registration}
    if run.status == CheckRun.Status.PASSED:
        context["snippet"] = registration_snippet(registration=registration)
    return context


def registration_request_of(registration: Registration) -> RegistrationRequest:
    """The request a stored registration was made from (for a retry, and for its snippet)."""
    return RegistrationRequest(**{name: getattr(registration, name) for name in RegistrationRequest.STORED_FIELDS})


def registration_snippet(*, registration: Registration) -> str:
    return python_snippet(
        registry_url=registration.check_run.registry_url,
        request=registration_request_of(registration),
        source=registration.source,
        run_id=registration.mlflow_run_id or None,
        model_id=registration.model_id or None,
    )


def registrations_done(*, user) -> QuerySet[Registration]:
    """The user's registrations that passed (the version exists and was read back), newest first."""
    return Registration.objects.filter(
        user=user, failed=False, check_run__status=CheckRun.Status.PASSED
    ).select_related("check_run")


def registration_owned_by(*, user, registration_id: int) -> Registration:
    """The user's own registration or their organization's, or 404 (another developer's is not admitted
    to exist)."""
    shared = CheckRun.objects.filter(shared_with(user=user)).values("pk")
    registrations = Registration.objects.filter(
        check_run__in=shared, failed=False, check_run__status=CheckRun.Status.PASSED
    ).select_related("check_run", "user")
    return get_object_or_404(registrations, pk=registration_id)


def check_run_queued_ahead(*, run: CheckRun) -> int:
    """How many queued runs were submitted before this one (the page's "n ahead")."""
    return CheckRun.objects.filter(status=CheckRun.Status.QUEUED, created_at__lt=run.created_at).count()


def check_run_failing_step(*, run: CheckRun) -> CheckStep | None:
    return next((step for step in run.steps.all() if step.status == StepStatus.FAIL), None)


def check_run_server_version(*, run: CheckRun) -> str:
    """The MLflow version the identity step read ("" when it could not)."""
    identity = next((step for step in run.steps.all() if step.name == "identity"), None)
    return str((identity.evidence or {}).get("version", "")) if identity else ""


def _state_token(status: str, step_count: int, attempt: int, enqueue_error: str) -> str:
    return f"{status}.{step_count}.{attempt}.{int(bool(enqueue_error))}"


def check_run_state_is_final(state: str) -> bool:
    """Whether a state token is a verdict (or the run is gone: "")."""
    return not state or state.partition(".")[0] in CheckRun.FINISHED


def check_run_state_of(*, run: CheckRun, steps: list[CheckStep]) -> str:
    """The token of what a page shows: status, steps saved, attempt, queue trouble."""
    return _state_token(run.status, len(steps), run.attempt, run.enqueue_error)


@functools.cache  # one database, one backend: the statement never changes
def _state_sql() -> str:
    quote = connection.ops.quote_name
    runs, steps = quote(CheckRun._meta.db_table), quote(CheckStep._meta.db_table)
    return (
        f"SELECT {quote('status')}, (SELECT COUNT(*) FROM {steps} WHERE {steps}.{quote('run_id')} = %s), "
        f"{quote('attempt')}, {quote('enqueue_error')} FROM {runs} WHERE {runs}.{quote('id')} = %s"
    )


def check_run_state(*, run_id: int) -> str:
    """The same token as the database has it now: one indexed query, the long poll's probe, run on every
    wake of every waiting page. Written as SQL: building it through the ORM (a join, a GROUP BY) cost ~5x
    the CPU of running it, on the web's hottest path (issue 27)."""
    with connection.cursor() as cursor:
        cursor.execute(_state_sql(), [run_id, run_id])
        row = cursor.fetchone()
    return "" if row is None else _state_token(*row)


def check_run_wait(*, run_id: int, seen: str, timeout: float, interval: float = 0.05) -> str:
    """Block until the run's state differs from `seen` (or `timeout` passes); return the state. One
    indexed query every `interval`: a step the worker saves reaches the page within ~interval + a
    round trip, instead of waiting for the next 500 ms poll."""
    deadline = time.monotonic() + timeout
    while True:
        state = check_run_state(run_id=run_id)
        if state != seen or time.monotonic() >= deadline:
            return state
        time.sleep(interval)


def check_run_announcement(*, run: CheckRun, steps: list[CheckStep]) -> str:
    """One sentence for the page's live region: the verdict when the run is over, else the latest step."""
    if run.status == CheckRun.Status.PASSED:
        return f"Check passed: every step passed{f' in {run.duration_ms} ms' if run.duration_ms is not None else ''}."
    if run.is_finished:
        failing = next((s for s in steps if s.status == StepStatus.FAIL), None)
        if failing:
            return f"Check failed at {failing.title}: {failing.message} How to fix: {failing.remedy}"
        return f"Check did not finish ({run.cause})."
    if steps:
        last = steps[-1]
        return f"Step {len(steps)}: {last.title}, {last.get_status_display().lower()}."
    return "Check queued." if run.status == CheckRun.Status.QUEUED else "Check running."


def environment_reports_for(*, user) -> QuerySet[EnvironmentReport]:
    """A developer's own environment reports, newest first."""
    return EnvironmentReport.objects.filter(user=user)


def environment_report_visible_to(*, user, report_id: int) -> EnvironmentReport:
    """The report with its checks, for its author and for staff (a report attached to a problem report is
    evidence support reads); anyone else gets a 404, not a 403: they are not told it exists."""
    reports = EnvironmentReport.objects.select_related("user").prefetch_related("checks")
    if not has_role(user, Role.SUPPORT, Role.MANAGER):
        reports = reports.filter(user=user)
    return get_object_or_404(reports, pk=report_id)
