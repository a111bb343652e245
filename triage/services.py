"""Triage writes. Every free-text field is redacted on save (API keys, bearer tokens -> masked) and
every change lands in the append-only timeline."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from django.db import transaction
from django.utils import timezone

from hokusai_portal.locks import transaction_lock
from hokusai_portal.redaction import redact

from .markdown_io import Plan, parse_plan
from .models import ActionItem, Component, Finding, Investigation, Report, TimelineEvent

S = Investigation.Status
# Validated transitions: no skipping ahead; resolving from anywhere open needs a resolution.
TRANSITIONS: dict[str, set[str]] = {
    S.NEW: {S.INVESTIGATING, S.RESOLVED},
    S.INVESTIGATING: {S.ROOT_CAUSE_IDENTIFIED, S.RESOLVED},
    S.ROOT_CAUSE_IDENTIFIED: {S.FIXING, S.INVESTIGATING, S.RESOLVED},
    S.FIXING: {S.MONITORING, S.ROOT_CAUSE_IDENTIFIED, S.RESOLVED},
    S.MONITORING: {S.RESOLVED, S.FIXING},
    S.RESOLVED: {S.CLOSED, S.INVESTIGATING},  # reopen
    S.CLOSED: {S.INVESTIGATING},  # reopen
}
# Resolved straight from these needs a resolution other than "fixed": nothing was fixed yet.
UNFIXED_STATES = {S.NEW, S.INVESTIGATING}
INVESTIGATION_TEXT_FIELDS = (
    "title", "summary", "impact_user", "impact_business", "impact_platform",
    "reproduction_steps", "risks", "mitigations", "owner_label", "review_cadence", "component_details",
)  # fmt: skip
FINDING_TEXT_FIELDS = ("title", "description", "verdict_reason", "root_cause", "possible_causes", "evidence")


class TransitionError(ValueError):
    pass


@dataclass
class Redactions:
    count: int = 0
    fields: list[str] = field(default_factory=list)

    def clean(self, label: str, value):
        if isinstance(value, str):
            cleaned, found = redact(value)
            if found:
                self.count += found
                self.fields.append(label)
            return cleaned
        if isinstance(value, dict):
            return {k: self.clean(f"{label}.{k}", v) for k, v in value.items()}
        return value

    @property
    def message(self) -> str:
        return (
            f"{self.count} API key{'s' if self.count != 1 else ''} or token{'s' if self.count != 1 else ''} "
            f"replaced by their masked form ({', '.join(sorted(set(self.fields)))})."
        )


def _event(
    investigation, actor, subject: str, old="", new="", *, kind=TimelineEvent.Kind.CHANGE, body="", internal=True
):
    return TimelineEvent.objects.create(
        investigation=investigation, actor=actor, kind=kind, subject=subject,
        old_value=str(old or ""), new_value=str(new or ""), body=body, internal=internal,
    )  # fmt: skip


@transaction.atomic
def investigation_create(
    *, actor, data: dict, findings: list[dict] = (), action_items: list[dict] = (), component_names: list[str] = ()
) -> tuple[Investigation, Redactions]:
    redactions = Redactions()
    values = {key: redactions.clean(key, value) for key, value in data.items()}
    values.setdefault("created_at", timezone.now())
    values.setdefault("reporter", actor)
    investigation = Investigation.objects.create(**values)
    if component_names:
        investigation.components.set(Component.objects.filter(name__in=component_names))
    for position, finding in enumerate(findings, start=1):
        Finding.objects.create(
            investigation=investigation, position=position,
            **{k: redactions.clean(f"finding.{k}", v) for k, v in finding.items()},
        )  # fmt: skip
    for position, item in enumerate(action_items, start=1):
        ActionItem.objects.create(
            investigation=investigation, position=position,
            **{k: redactions.clean(f"action_item.{k}", v) for k, v in item.items()},
        )  # fmt: skip
    _event(investigation, actor, "created", new=investigation.get_status_display())
    return investigation, redactions


@transaction.atomic
def investigation_update(*, investigation: Investigation, actor, **fields) -> Redactions:
    """Change plain fields (not status: use investigation_transition), one timeline event per change."""
    redactions = Redactions()
    changed = []
    for name, value in fields.items():
        value = redactions.clean(name, value)
        old = getattr(investigation, name)
        if old != value:
            setattr(investigation, name, value)
            changed.append(name)
            _event(investigation, actor, name, old, value)
    if changed:
        investigation.save(update_fields=[*changed, "updated_at"])
    return redactions


@transaction.atomic
def investigation_set_components(*, investigation: Investigation, actor, components) -> None:
    old = sorted(investigation.components.values_list("name", flat=True))
    new = sorted(c.name for c in components)
    if old != new:
        investigation.components.set(components)
        _event(investigation, actor, "components", ", ".join(old), ", ".join(new))


@transaction.atomic
def investigation_transition(
    *, investigation: Investigation, actor, status: str, resolution: str = "", duplicate_of: Investigation | None = None
) -> Investigation:
    current = investigation.status
    if status == current:
        return investigation
    if status not in TRANSITIONS.get(current, set()):
        raise TransitionError(
            f"{investigation.number} cannot go from “{S(current).label}” to “{S(status).label}”. "
            f"Next steps from here: {', '.join(S(s).label for s in sorted(TRANSITIONS[current]))}."
        )
    if status == S.RESOLVED:
        if not resolution:
            raise TransitionError(
                "Say how it was resolved: fixed, false positive, duplicate, cannot reproduce or won't fix."
            )
        if resolution == Investigation.Resolution.FIXED and current in UNFIXED_STATES:
            raise TransitionError("Nothing can be fixed before its root cause is identified: move it along first.")
        if resolution == Investigation.Resolution.DUPLICATE and (
            duplicate_of is None or duplicate_of.pk == investigation.pk
        ):
            raise TransitionError("A duplicate names the investigation it duplicates.")
    old_resolution = investigation.get_resolution_display()
    investigation.status = status
    if status == S.RESOLVED:
        investigation.resolution = resolution
        investigation.duplicate_of = duplicate_of if resolution == Investigation.Resolution.DUPLICATE else None
        investigation.resolved_at = timezone.now()
    elif status == S.INVESTIGATING and current in (S.RESOLVED, S.CLOSED):
        investigation.resolution = ""
        investigation.duplicate_of = None
        investigation.resolved_at = None
    investigation.save()
    _event(investigation, actor, "status", S(current).label, S(status).label, internal=False)
    if investigation.get_resolution_display() != old_resolution:
        _event(
            investigation, actor, "resolution", old_resolution, investigation.get_resolution_display(), internal=False
        )
    return investigation


@transaction.atomic
def finding_set_status(*, finding: Finding, actor, status: str, reason: str = "") -> Finding:
    redactions = Redactions()
    reason = redactions.clean("verdict_reason", reason.strip())
    if status in Finding.VERDICTS and not reason:
        raise TransitionError(f"A “{Finding.Status(status).label}” verdict needs its reason.")
    old = finding.get_status_display()
    finding.status = status
    if reason:
        finding.verdict_reason = reason
    finding.save(update_fields=["status", "verdict_reason"])
    _event(
        finding.investigation, actor, f"finding “{finding.title}”", old, finding.get_status_display(),
        body=reason,
    )  # fmt: skip
    return finding


@transaction.atomic
def action_item_toggle(*, item: ActionItem, actor) -> ActionItem:
    item.done = not item.done
    item.save(update_fields=["done"])
    _event(
        item.investigation,
        actor,
        f"action “{item.title}”",
        "open" if item.done else "done",
        "done" if item.done else "open",
    )
    return item


def comment_add(
    *, investigation: Investigation, actor, body: str, internal: bool = True
) -> tuple[TimelineEvent, Redactions]:
    redactions = Redactions()
    body = redactions.clean("comment", body.strip())
    if not body:
        raise ValueError("Write something to comment.")
    return _event(
        investigation, actor, "comment", kind=TimelineEvent.Kind.COMMENT, body=body, internal=internal
    ), redactions


def _fit(model, values: dict, shortened: list[str], label: str = "") -> dict:
    """Strings cut to their column's max_length (PostgreSQL refuses longer ones), each cut named in `shortened`."""
    fitted = {}
    for name, value in values.items():
        limit = getattr(model._meta.get_field(name), "max_length", None)
        if isinstance(value, str) and limit and len(value) > limit:
            value = value[: limit - 1] + "…"
            shortened.append(f"{label}{model._meta.get_field(name).verbose_name} (to {limit} characters)")
        fitted[name] = value
    return fitted


@transaction.atomic
def investigation_import(*, actor, raw: bytes | str) -> tuple[Investigation, Redactions, Plan]:
    """A Markdown plan -> a structured investigation, all or nothing. Raises markdown_io.PlanError.
    Over-long values are shortened to fit, and `plan.shortened` says which."""
    plan = parse_plan(raw)
    redactions = Redactions()
    data = {
        "title": plan.title, "summary": plan.summary, "severity": plan.severity, "status": plan.status,
        "environment": plan.environment, "impact_user": plan.impact_user, "impact_business": plan.impact_business,
        "impact_platform": plan.impact_platform, "reproduction_steps": plan.reproduction_steps, "risks": plan.risks,
        "mitigations": plan.mitigations, "owner_label": plan.owner_label, "review_cadence": plan.review_cadence,
        "next_review": plan.next_review, "component_details": plan.component_details,
        "notes": [redactions.clean("notes", note) for note in plan.notes],
    }  # fmt: skip
    data = _fit(Investigation, data, plan.shortened)
    if plan.created:
        data["created_at"] = datetime.combine(plan.created, time(), tzinfo=UTC)
    if plan.status in (S.RESOLVED, S.CLOSED):
        data["resolved_at"] = data.get("created_at") or timezone.now()
    finding_fields = ("title", "description", "status", "verdict_reason", "root_cause", "possible_causes", "evidence")
    findings = [
        _fit(Finding, {k: f.get(k, "") for k in finding_fields}, plan.shortened, f"finding {n}: ")
        for n, f in enumerate(plan.findings, start=1)
    ]
    items = [
        _fit(ActionItem, {k: i.get(k, "") for k in ("phase", "priority", "title", "done", "timeframe")},
             plan.shortened, f"action item {n}: ")
        for n, i in enumerate(plan.action_items, start=1)
    ]  # fmt: skip
    investigation, created_redactions = investigation_create(
        actor=actor, data=data, findings=findings, action_items=items, component_names=plan.components
    )
    redactions.count += created_redactions.count
    redactions.fields += created_redactions.fields
    _event(
        investigation,
        actor,
        "imported",
        new=f"{len(findings)} findings, {len(items)} action items, {len(plan.notes)} notes kept",
    )
    return investigation, redactions, plan


def investigation_plan(investigation: Investigation):
    """The investigation as a markdown_io.Plan, for export."""
    return Plan(
        title=investigation.title, summary=investigation.summary, severity=investigation.severity,
        status=investigation.status, environment=investigation.environment,
        components=sorted(investigation.components.values_list("name", flat=True)),
        impact_user=investigation.impact_user, impact_business=investigation.impact_business,
        impact_platform=investigation.impact_platform, reproduction_steps=investigation.reproduction_steps,
        risks=investigation.risks, mitigations=investigation.mitigations,
        findings=list(investigation.findings.values("title", "description", "status", "verdict_reason", "root_cause", "possible_causes", "evidence")),
        action_items=list(investigation.action_items.values("phase", "priority", "title", "done", "timeframe")),
        owner_label=investigation.owner_label or (investigation.owner.get_username() if investigation.owner else ""),
        created=investigation.created_at.date(), next_review=investigation.next_review,
        review_cadence=investigation.review_cadence, component_details=investigation.component_details,
        notes=list(investigation.notes),
    )  # fmt: skip


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


def run_fingerprint(run) -> str:
    """step + cause code + server version: failures that share it are one problem (Sentry-style grouping)."""
    steps = list(run.steps.all())
    failing = next((s for s in steps if s.status == "fail"), None)
    identity = next((s for s in steps if s.name == "identity"), None)
    version = (identity.evidence or {}).get("version", "") if identity else ""
    return f"{run.kind}:{failing.name if failing else 'run'}:{run.cause}:{version or 'unknown'}"


def _steps_markdown(run) -> str:
    """The reporter's own evidence: their check's number, masked key and each step's message."""
    lines = [f"Check #{run.pk} ({run.get_kind_display()}) against `{run.registry_url}`, key `{run.key_masked}`:", ""]
    for step in run.steps.all():
        lines.append(f"- **{step.title}**: {step.status} `{step.cause}` ({step.duration_ms} ms) — {step.message}")
        if step.evidence and step.status in ("fail", "warn"):
            evidence = ", ".join(f"{k}={str(v)[:160]}" for k, v in step.evidence.items())
            lines.append(f"  - evidence: {evidence}")
    return "\n".join(lines)


def _steps_public(run) -> str:
    """What every reporter of the investigation may read: the steps' outcomes and causes, against which
    registry. No check number, key, model name or step message: those are one reporter's."""
    lines = [f"A {run.get_kind_display().lower()} check against `{run.registry_url}`:", ""]
    lines += [f"- **{step.title}**: {step.status} `{step.cause}`" for step in run.steps.all()]
    return "\n".join(lines)


@transaction.atomic
def problem_report(*, run, reporter, consent_rerun: bool = False, note: str = "") -> tuple[Investigation, bool]:
    """Attach a failed run to the open investigation with its fingerprint, or open one. Returns (investigation, created).

    The investigation gets only what every reporter may read (the cause, its remedy, the steps' outcomes);
    the note and the check's own evidence go on this reporter's Report."""
    from onboarding.models import CheckRun

    if run.user_id != reporter.pk:
        raise ReportError("You can only report your own checks.")
    if run.status not in CheckRun.UNSUCCESSFUL:
        raise ReportError("Only a failed check can be reported.")
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
    failing = run.steps.filter(status="fail").first()
    if created:
        from onboarding.diagnosis import CAUSES

        message, remedy = CAUSES.get(run.cause, ("", ""))
        step_title = failing.title if failing else "The check"
        identity = run.steps.filter(name="identity").first()
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
                        "server version": ((identity.evidence or {}).get("version", "") if identity else "")
                        or "unknown",
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
            ],  # fmt: skip
            component_names=CAUSE_COMPONENTS.get(run.cause, ["MLflow tracking server"]),
        )
    Report.objects.update_or_create(
        investigation=investigation,
        reporter=reporter,
        defaults={"check_run": run, "consent_rerun": consent_rerun, "note": note, "evidence": evidence},
    )
    _event(  # internal: it names the reporter and their check
        investigation, reporter, "report", new=f"check #{run.pk} by {reporter.get_username()}",
        body=evidence + (f"\n\n{note}" if note else ""),
    )  # fmt: skip
    return investigation, created


@transaction.atomic
def problem_report_rerun(*, report: Report, actor):
    """Support re-runs the reporter's connectivity check with the reporter's saved key (they consented)."""
    from onboarding.services import NoApiKey, connectivity_check_start

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
    _event(
        report.investigation,
        actor,
        "re-run",
        new=f"check #{run.pk} for {report.reporter.get_username()}",
        internal=False,
    )
    return run
