"""Triage writes. Every free-text field is redacted on save (API keys, bearer tokens -> masked) and
every change lands in the append-only timeline."""

from dataclasses import dataclass, field

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from hokusai_portal.query import local_midnight
from hokusai_portal.redaction import redact_value

from . import sla
from .markdown_io import Plan, PlanError, parse_plan
from .models import ActionItem, Component, Finding, Investigation, TimelineEvent
from .signals import timeline_event_added

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
    "title",
    "summary",
    "impact_user",
    "impact_business",
    "impact_platform",
    "reproduction_steps",
    "risks",
    "mitigations",
    "owner_label",
    "review_cadence",
    "component_details",
)
FINDING_TEXT_FIELDS = ("title", "description", "verdict_reason", "root_cause", "possible_causes", "evidence")


class TransitionError(ValueError):
    pass


@dataclass
class Redactions:
    count: int = 0
    fields: list[str] = field(default_factory=list)

    def clean(self, label: str, value):
        """`value` (text, or a JSON field's dicts and lists) with keys masked; counts what was found."""
        cleaned, found = redact_value(value)
        if found:
            self.count += found
            self.fields.append(label)
        return cleaned

    @property
    def message(self) -> str:
        return (
            f"{self.count} API key{'s' if self.count != 1 else ''} or token{'s' if self.count != 1 else ''} "
            f"replaced by their masked form ({', '.join(sorted(set(self.fields)))})."
        )


def _event(
    investigation,
    actor: AbstractBaseUser | None,
    subject: str,
    old="",
    new="",
    *,
    kind=TimelineEvent.Kind.CHANGE,
    body="",
    internal=True,
):
    event = TimelineEvent.objects.create(
        investigation=investigation,
        actor=actor,
        kind=kind,
        subject=subject,
        old_value=str(old or ""),
        new_value=str(new or ""),
        body=body,
        internal=internal,
    )
    if subject in SLA_TRIGGERS or sla.is_clock_event(subject=subject, kind=kind, internal=internal):
        sla.refresh(investigation)  # the clocks read the timeline just written
    timeline_event_added.send(sender=TimelineEvent, event=event)  # notifications: followers hear of it
    return event


# Changes after which the SLA clocks are recomputed (besides the clocks' own events): a new policy applies.
SLA_TRIGGERS = {"created", "imported", "severity"}


@transaction.atomic
def investigation_create(
    *,
    actor: AbstractBaseUser | None,
    data: dict,
    findings: list[dict] = (),
    action_items: list[dict] = (),
    component_names: list[str] = (),
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
            investigation=investigation,
            position=position,
            **{k: redactions.clean(f"finding.{k}", v) for k, v in finding.items()},
        )
    for position, item in enumerate(action_items, start=1):
        ActionItem.objects.create(
            investigation=investigation,
            position=position,
            **{k: redactions.clean(f"action_item.{k}", v) for k, v in item.items()},
        )
    _event(investigation, actor, "created", new=investigation.get_status_display())
    return investigation, redactions


@transaction.atomic
def investigation_update(*, investigation: Investigation, actor: AbstractBaseUser | None, **fields) -> Redactions:
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
def investigation_set_components(*, investigation: Investigation, actor: AbstractBaseUser | None, components) -> None:
    old = sorted(investigation.components.values_list("name", flat=True))
    new = sorted(c.name for c in components)
    if old != new:
        investigation.components.set(components)
        _event(investigation, actor, "components", ", ".join(old), ", ".join(new))


@transaction.atomic
def investigation_set_status_components(
    *, investigation: Investigation, actor: AbstractBaseUser | None, components
) -> None:
    """The platform components (status page) a public incident affects."""
    old = sorted(c.name for c in investigation.status_components.all())
    new = sorted(c.name for c in components)
    if old != new:
        investigation.status_components.set(components)
        _event(investigation, actor, "platform components", ", ".join(old), ", ".join(new))


@transaction.atomic
def investigation_transition(
    *,
    investigation: Investigation,
    actor: AbstractBaseUser | None,
    status: str,
    resolution: str = "",
    duplicate_of: Investigation | None = None,
) -> Investigation:
    """Move to `status`. Resolving is one action: as fixed from New or Investigating it walks through
    Root cause identified and Fixing when a finding records the root cause, each step in the timeline.
    An investigation is never resolved without an owner: the one resolving it becomes its owner."""
    current = investigation.status
    if status == current:
        return investigation
    walk = [status]
    if status == S.RESOLVED and resolution == Investigation.Resolution.FIXED and current in UNFIXED_STATES:
        if not investigation.findings.exclude(root_cause="").exists():
            raise TransitionError(
                "Nothing can be fixed before its root cause is identified: write the root cause on the finding, "
                "then resolve as fixed in one step."
            )
        walk = [s for s in (S.INVESTIGATING, S.ROOT_CAUSE_IDENTIFIED, S.FIXING) if s != current] + [S.RESOLVED]
    elif status not in TRANSITIONS.get(current, set()):
        raise TransitionError(
            f"{investigation.number} cannot go from “{S(current).label}” to “{S(status).label}”. "
            f"Next steps from here: {', '.join(S(s).label for s in sorted(TRANSITIONS[current]))}."
        )
    if status == S.RESOLVED:
        if not resolution:
            raise TransitionError(
                "Say how it was resolved: fixed, false positive, duplicate, cannot reproduce or won't fix."
            )
        if resolution == Investigation.Resolution.DUPLICATE and (
            duplicate_of is None or duplicate_of.pk == investigation.pk
        ):
            raise TransitionError("A duplicate names the investigation it duplicates.")
        if investigation.owner_id is None:
            if actor is None:
                raise TransitionError("Give the investigation an owner before resolving it.")
            investigation_update(investigation=investigation, actor=actor, owner=actor)
    for step in walk[:-1]:  # the path walked on the way, each step on the timeline
        _event(investigation, actor, "status", S(investigation.status).label, S(step).label, internal=False)
        investigation.status = step
    current = investigation.status
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
def finding_set_status(
    *, finding: Finding, actor: AbstractBaseUser | None, status: str, reason: str = "", root_cause: str | None = None
) -> Finding:
    """The verdict with its reason (shown to reporters) and, when given, the root cause (support only).
    A verified or false-positive verdict needs a reason, the one already on the finding counts."""
    redactions = Redactions()
    reason = redactions.clean("verdict_reason", reason.strip()) or (
        finding.verdict_reason if status == finding.status else ""
    )
    if status in Finding.VERDICTS and not reason:
        raise TransitionError(f"A “{Finding.Status(status).label}” verdict needs its reason.")
    old = finding.get_status_display()
    finding.status, finding.verdict_reason = status, reason or finding.verdict_reason
    fields = ["status", "verdict_reason"]
    if root_cause is not None:
        finding.root_cause = redactions.clean("root_cause", root_cause.strip())
        fields.append("root_cause")
    finding.save(update_fields=fields)
    _event(finding.investigation, actor, f"finding “{finding.title}”", old, finding.get_status_display(), body=reason)
    if root_cause is not None and root_cause.strip():
        _event(finding.investigation, actor, f"root cause of “{finding.title}”", "", finding.root_cause[:200])
    return finding


@transaction.atomic
def action_item_toggle(*, item: ActionItem, actor: AbstractBaseUser | None) -> ActionItem:
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
    *, investigation: Investigation, actor: AbstractBaseUser | None, body: str, internal: bool = True
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


class AlreadyImported(PlanError):
    """The same plan was imported before; `existing` is the investigation it made."""

    def __init__(self, existing: Investigation):
        super().__init__(f"This plan was already imported as {existing.number} ({existing.title}).")
        self.existing = existing


@transaction.atomic
def investigation_import(
    *, actor: AbstractBaseUser | None, raw: bytes | str, again: bool = False
) -> tuple[Investigation, Redactions, Plan]:
    """A Markdown plan -> a structured investigation, all or nothing. Raises markdown_io.PlanError.
    Over-long values are shortened to fit, and `plan.shortened` says which. The same plan a second time
    raises AlreadyImported unless `again` (a deliberate copy)."""
    plan = parse_plan(raw)
    existing = Investigation.objects.filter(plan_digest=plan.digest).order_by("created_at").first()
    if existing is not None and not again:
        raise AlreadyImported(existing)
    redactions = Redactions()
    data = {
        "title": plan.title,
        "summary": plan.summary,
        "severity": plan.severity,
        "status": plan.status,
        "environment": plan.environment,
        "impact_user": plan.impact_user,
        "impact_business": plan.impact_business,
        "impact_platform": plan.impact_platform,
        "reproduction_steps": plan.reproduction_steps,
        "risks": plan.risks,
        "mitigations": plan.mitigations,
        "owner_label": plan.owner_label,
        "review_cadence": plan.review_cadence,
        "next_review": plan.next_review,
        "component_details": plan.component_details,
        "notes": [redactions.clean("notes", note) for note in plan.notes],
        "plan_digest": plan.digest,
    }
    data = _fit(Investigation, data, plan.shortened)
    if plan.created:
        data["created_at"] = local_midnight(plan.created)  # the day the plan says, in the portal's time zone
    if plan.status in (S.RESOLVED, S.CLOSED):
        data["resolved_at"] = data.get("created_at") or timezone.now()
    finding_fields = ("title", "description", "status", "verdict_reason", "root_cause", "possible_causes", "evidence")
    findings = [
        _fit(Finding, {k: f.get(k, "") for k in finding_fields}, plan.shortened, f"finding {n}: ")
        for n, f in enumerate(plan.findings, start=1)
    ]
    items = [
        _fit(
            ActionItem,
            {k: i.get(k, "") for k in ("phase", "priority", "title", "done", "timeframe")},
            plan.shortened,
            f"action item {n}: ",
        )
        for n, i in enumerate(plan.action_items, start=1)
    ]
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
        title=investigation.title,
        summary=investigation.summary,
        severity=investigation.severity,
        status=investigation.status,
        environment=investigation.environment,
        components=sorted(investigation.components.values_list("name", flat=True)),
        impact_user=investigation.impact_user,
        impact_business=investigation.impact_business,
        impact_platform=investigation.impact_platform,
        reproduction_steps=investigation.reproduction_steps,
        risks=investigation.risks,
        mitigations=investigation.mitigations,
        findings=list(
            investigation.findings.values(
                "title", "description", "status", "verdict_reason", "root_cause", "possible_causes", "evidence"
            )
        ),
        action_items=list(investigation.action_items.values("phase", "priority", "title", "done", "timeframe")),
        owner_label=investigation.owner_label or (investigation.owner.get_username() if investigation.owner else ""),
        created=investigation.created_at.date(),
        next_review=investigation.next_review,
        review_cadence=investigation.review_cadence,
        component_details=investigation.component_details,
        notes=list(investigation.notes),
    )


@transaction.atomic
def investigation_set_awaiting(*, investigation: Investigation, actor: AbstractBaseUser | None, awaiting: bool) -> bool:
    """Waiting on the reporter (the SLA clocks pause) or not; the reporter sees it. Returns whether it changed."""
    if investigation.awaiting_reporter == awaiting:
        return False
    if awaiting and not investigation.is_open:
        raise TransitionError("A resolved investigation waits on no one.")
    Investigation.objects.filter(pk=investigation.pk).update(awaiting_reporter=awaiting)
    investigation.awaiting_reporter = awaiting
    _event(
        investigation,
        actor,
        "awaiting reporter",
        "no" if awaiting else "yes",
        "yes" if awaiting else "no",
        internal=False,
    )
    return True
