"""Problem reports: a developer's failed check becomes a report on the open investigation with the same
fingerprint, or opens one. The one seam between onboarding and triage: this module reads checks through
onboarding's selectors and starts re-runs through onboarding's services; onboarding reaches triage only
by calling `problem_report`.

What a report holds is split by who may read it: the investigation gets what every reporter may read
(cause, remedy, the steps' outcomes), the Report row the reporter's own note and check evidence."""

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import prefetch_related_objects

from hokusai_portal.locks import transaction_lock
from onboarding import selectors as check_selectors
from onboarding.diagnosis import CAUSES, StepStatus
from onboarding.models import CheckRun, EnvironmentReport
from onboarding.services import NoApiKey, connectivity_check_start

from . import timeline
from .models import Investigation, Report, TimelineEvent
from .services import Redactions, investigation_create

CAUSE_COMPONENTS = {
    "AUTH_KEY_REJECTED": ["Auth service"],
    "AUTH_SERVICE_UNAVAILABLE": ["Auth service"],
    "AUTH_SCHEME_MISMATCH": ["MLflow auth config", "API gateway"],
    "REGISTRY_ADMIN_REQUIRED": ["API gateway"],
    "WRITE_PERMISSION_DENIED": ["API gateway"],
    "PERMISSION_DENIED": ["API gateway"],
    "RATE_LIMITED": ["API gateway"],
    "KEY_FORMAT_INVALID": ["Website docs"],
    "RUN_NOT_FOUND": ["SDK registry"],
    "MODEL_ARTIFACT_MISSING": ["SDK registry"],
    "METRIC_NOT_FOUND": ["SDK registry"],
}
URGENT_CAUSES = {
    "REGISTRY_UNAVAILABLE",
    "AUTH_SERVICE_UNAVAILABLE",
    "REGISTRY_ADMIN_REQUIRED",
    "TLS_CERT_INVALID",
    "WORKER_LOST",
}


class ReportError(ValueError):
    pass


def run_fingerprint(run: CheckRun) -> str:
    """step + cause code + server version: failures that share it are one problem (Sentry-style grouping)."""
    failing = check_selectors.check_run_failing_step(run=run)
    version = check_selectors.check_run_server_version(run=run)
    return f"{run.kind}:{failing.name if failing else 'run'}:{run.cause}:{version or 'unknown'}"


def _steps_markdown(run: CheckRun) -> str:
    """The reporter's own evidence: their check's number, masked key and each step's message."""
    lines = [f"Check #{run.pk} ({run.get_kind_display()}) against `{run.registry_url}`, key `{run.key_masked}`:", ""]
    for step in run.steps.all():
        lines.append(f"- **{step.title}**: {step.status} `{step.cause}` ({step.duration_ms} ms) — {step.message}")
        if step.evidence and step.status in (StepStatus.FAIL, StepStatus.WARN):
            evidence = ", ".join(f"{k}={str(v)[:160]}" for k, v in step.evidence.items())
            lines.append(f"  - evidence: {evidence}")
    return "\n".join(lines)


def _steps_public(run: CheckRun) -> str:
    """What every reporter of the investigation may read: the steps' outcomes and causes, against which
    registry. No check number, key, model name or step message: those are one reporter's."""
    lines = [f"A {run.get_kind_display().lower()} check against `{run.registry_url}`:", ""]
    lines += [f"- **{step.title}**: {step.status} `{step.cause}`" for step in run.steps.all()]
    return "\n".join(lines)


@transaction.atomic
def problem_report(
    *,
    run: CheckRun,
    reporter: AbstractBaseUser,
    consent_rerun: bool = False,
    note: str = "",
    doctor_report: EnvironmentReport | None = None,
) -> tuple[Investigation, bool]:
    """Attach a failed run to the open investigation with its fingerprint, or open one. Returns (investigation, created).

    The investigation gets only what every reporter may read (the cause, its remedy, the steps' outcomes);
    the note and the check's own evidence go on this reporter's Report."""
    if run.user_id != reporter.pk:
        raise ReportError("You can only report your own checks.")
    if run.status not in CheckRun.UNSUCCESSFUL:
        raise ReportError("Only a failed check can be reported.")
    if doctor_report is not None and doctor_report.user_id != reporter.pk:
        raise ReportError("You can only attach your own environment report.")
    prefetch_related_objects([run], "steps")  # one query for the steps every helper below reads
    fingerprint = run_fingerprint(run)
    redactions = Redactions()
    evidence = redactions.clean("evidence", _steps_markdown(run))
    note = redactions.clean("note", note.strip())
    transaction_lock(f"triage.fingerprint:{fingerprint}")  # two first reports at once: one investigation
    investigation = (
        Investigation.objects.select_for_update()
        .filter(fingerprint=fingerprint, status__in=Investigation.OPEN_STATUSES)
        .order_by("created_at")
        .first()
    )
    created = investigation is None
    failing = check_selectors.check_run_failing_step(run=run)
    if created:
        message, remedy = CAUSES.get(run.cause, ("", ""))
        step_title = failing.title if failing else "The check"
        investigation, _ = investigation_create(
            actor=reporter,
            data={
                "title": f"{step_title} fails with {run.cause}",
                "summary": f"{message} Reported from a failed {run.get_kind_display().lower()} check.",
                "severity": "high" if run.cause in URGENT_CAUSES else "medium",
                "fingerprint": fingerprint,
                "reporter": reporter,
                "environment": {
                    "extra": {
                        "registry": run.registry_url,
                        "server version": check_selectors.check_run_server_version(run=run) or "unknown",
                    }
                },
            },
            findings=[
                {
                    "title": f"{step_title}: {run.cause}",
                    "description": f"{message}\n\nRemedy shown to the user: {remedy}",
                    "status": "reported",
                    "evidence": _steps_public(run),
                }
            ],
            component_names=CAUSE_COMPONENTS.get(run.cause, ["MLflow tracking server"]),
        )
    values = {
        "check_run": run,
        "consent_rerun": consent_rerun,
        "note": note,
        "evidence": evidence,
        "doctor_report": doctor_report,
    }
    Report.objects.update_or_create(
        investigation=investigation,
        reporter=reporter,
        defaults=values,
        create_defaults={**values, "joined": not created},  # a report that found its investigation open
    )
    if doctor_report is not None:
        failing = [c.cause for c in doctor_report.checks.all() if c.status == "fail"]
        evidence += f"\n\nEnvironment report #{doctor_report.pk} attached: " + (
            f"{len(failing)} failed ({', '.join(failing)})." if failing else "nothing failed."
        )
    timeline.record(  # internal: it names the reporter and their check
        investigation,
        TimelineEvent.Kind.REPORT,
        actor=reporter,
        target=reporter.get_username(),
        new=run.pk,
        body=evidence + (f"\n\n{note}" if note else ""),
    )
    return investigation, created


@dataclass(frozen=True)
class KnownIssue:
    """An open investigation a failed check matches, as its reporter may read it."""

    investigation: Investigation
    affected: int  # developers who reported it
    latest_update: TimelineEvent | None  # the newest public event
    workaround: str
    reported_by_you: bool


def known_issue(*, run: CheckRun, user: AbstractBaseUser) -> KnownIssue | None:
    """The open investigation whose fingerprint the failed run has: shown at the failure, before anything else."""
    if run.status not in CheckRun.UNSUCCESSFUL:
        return None
    investigation = (
        Investigation.objects.filter(fingerprint=run_fingerprint(run), status__in=Investigation.OPEN_STATUSES)
        .order_by("created_at")
        .first()
    )
    if investigation is None:
        return None
    reporters = set(investigation.reports.values_list("reporter_id", flat=True))
    latest = (
        investigation.timeline.filter(internal=False)
        .exclude(kind=TimelineEvent.Kind.CREATED)
        .order_by("-created_at", "-id")
        .first()
    )
    return KnownIssue(
        investigation=investigation,
        affected=len(reporters),
        latest_update=latest,
        workaround=investigation.mitigations.strip(),
        reported_by_you=user.pk in reporters,
    )


@transaction.atomic
def problem_report_rerun(*, report: Report, actor: AbstractBaseUser) -> CheckRun:
    """Support re-runs the reporter's connectivity check with the reporter's saved key (they consented)."""
    if not report.consent_rerun:
        raise ReportError("The reporter did not agree to checks being re-run for them.")
    try:
        run = connectivity_check_start(
            user=report.reporter, model_name=report.check_run.model_name if report.check_run else ""
        )
    except NoApiKey:
        raise ReportError(
            f"{report.reporter.get_username()} has no saved key any more: ask them to run the check."
        ) from None
    timeline.record(
        report.investigation,
        TimelineEvent.Kind.RERUN,
        actor=actor,
        target=report.reporter.get_username(),
        new=run.pk,
        internal=False,
    )
    return run
