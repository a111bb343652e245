"""Triage writes. Every free-text field is redacted on save (API keys, bearer tokens -> masked) and
every change lands in the append-only timeline."""

from dataclasses import dataclass, field
from datetime import UTC

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from hokusai_portal.query import local_midnight
from hokusai_portal.redaction import redact_value

from . import sla, timeline
from .clocks import warning_key
from .markdown_io import Plan, PlanError, parse_plan
from .models import OPEN_STATUSES, ActionItem, Component, Finding, Investigation, TimelineEvent

Kind = TimelineEvent.Kind

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
    timeline.record(investigation, Kind.CREATED, actor=actor, new=investigation.status)
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
            changed.append((name, old, value))
    if changed:
        investigation.save(update_fields=[*(name for name, _, _ in changed), "updated_at"])
    with timeline.action():  # recorded once saved: a step's receivers read the state it describes
        for name, old, value in changed:
            kind = {"severity": Kind.SEVERITY, "owner": Kind.OWNER}.get(name, Kind.FIELD)
            timeline.record(
                investigation, kind, actor=actor, field=name if kind == Kind.FIELD else "", old=old, new=value
            )
    return redactions


@transaction.atomic
def investigation_set_components(*, investigation: Investigation, actor: AbstractBaseUser | None, components) -> None:
    old = sorted(investigation.components.values_list("name", flat=True))
    new = sorted(c.name for c in components)
    if old != new:
        investigation.components.set(components)
        timeline.record(investigation, Kind.COMPONENTS, actor=actor, old=", ".join(old), new=", ".join(new))


@transaction.atomic
def investigation_set_status_components(
    *, investigation: Investigation, actor: AbstractBaseUser | None, components
) -> None:
    """The platform components (status page) a public incident affects."""
    old = sorted(c.name for c in investigation.status_components.all())
    new = sorted(c.name for c in components)
    if old != new:
        investigation.status_components.set(components)
        timeline.record(investigation, Kind.PLATFORM_COMPONENTS, actor=actor, old=", ".join(old), new=", ".join(new))


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
    Root cause identified and Fixing when a finding records the root cause, each step in the timeline
    (one action id: followers get one email for it). An investigation is never resolved without an owner:
    the one resolving it becomes its owner. Each step is saved before it is recorded, so what its receivers
    read (a webhook's investigation) is the state the step reached."""
    with timeline.action():
        return _transition(
            investigation=investigation, actor=actor, status=status, resolution=resolution, duplicate_of=duplicate_of
        )


def _transition(
    *, investigation: Investigation, actor, status: str, resolution: str, duplicate_of: Investigation | None
) -> Investigation:
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
    for step in walk[:-1]:  # the path walked on the way, each step saved and on the timeline
        previous, investigation.status = investigation.status, step
        investigation.save(update_fields=["status", "updated_at"])
        timeline.record(investigation, Kind.STATUS, actor=actor, old=previous, new=step, internal=False)
    current = investigation.status
    old_resolution = investigation.resolution
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
    timeline.record(investigation, Kind.STATUS, actor=actor, old=current, new=status, internal=False)
    if investigation.resolution != old_resolution:
        timeline.record(
            investigation,
            Kind.RESOLUTION,
            actor=actor,
            old=old_resolution,
            new=investigation.resolution,
            internal=False,
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
    old = finding.status
    finding.status, finding.verdict_reason = status, reason or finding.verdict_reason
    fields = ["status", "verdict_reason"]
    if root_cause is not None:
        finding.root_cause = redactions.clean("root_cause", root_cause.strip())
        fields.append("root_cause")
    finding.save(update_fields=fields)
    with timeline.action():
        timeline.record(
            finding.investigation,
            Kind.FINDING_VERDICT,
            actor=actor,
            target=finding.title,
            old=old,
            new=finding.status,
            body=reason,
        )
        if root_cause is not None and root_cause.strip():
            timeline.record(
                finding.investigation,
                Kind.FINDING_ROOT_CAUSE,
                actor=actor,
                target=finding.title,
                new=finding.root_cause[:200],
            )
    return finding


@transaction.atomic
def action_item_toggle(*, item: ActionItem, actor: AbstractBaseUser | None) -> ActionItem:
    item.done = not item.done
    item.save(update_fields=["done"])
    timeline.record(
        item.investigation,
        Kind.ACTION_ITEM_DONE if item.done else Kind.ACTION_ITEM_REOPENED,
        actor=actor,
        target=item.title,
        old=not item.done,
        new=item.done,
    )
    return item


def comment_add(
    *, investigation: Investigation, actor: AbstractBaseUser | None, body: str, internal: bool = True
) -> tuple[TimelineEvent, Redactions]:
    redactions = Redactions()
    body = redactions.clean("comment", body.strip())
    if not body:
        raise ValueError("Write something to comment.")
    return timeline.record(investigation, Kind.COMMENT, actor=actor, body=body, internal=internal), redactions


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
    with timeline.action():
        investigation, created_redactions = investigation_create(
            actor=actor, data=data, findings=findings, action_items=items, component_names=plan.components
        )
        timeline.record(
            investigation,
            Kind.IMPORTED,
            actor=actor,
            new=f"{len(findings)} findings, {len(items)} action items, {len(plan.notes)} notes kept",
        )
    redactions.count += created_redactions.count
    redactions.fields += created_redactions.fields
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
    timeline.record(
        investigation, Kind.WAITING_ON_REPORTER, actor=actor, old=not awaiting, new=awaiting, internal=False
    )
    return True


# --- findings and action items edited as records (the admin's inlines): redacted, each change on the timeline


@transaction.atomic
def finding_save(*, finding: Finding, actor: AbstractBaseUser | None, changed: list[str]) -> Redactions:
    """Save a finding added or edited as a record (not its verdict: finding_set_status does that). Its text is
    redacted; an addition is one event, an edit one event per changed field."""
    redactions = Redactions()
    for name in FINDING_TEXT_FIELDS:
        setattr(finding, name, redactions.clean(f"finding.{name}", getattr(finding, name)))
    adding = finding.pk is None
    finding.save()
    with timeline.action():
        if adding:
            timeline.record(finding.investigation, Kind.FINDING_ADDED, actor=actor, target=finding.title)
        else:
            for name in changed:
                timeline.record(
                    finding.investigation,
                    Kind.FINDING_CHANGED,
                    actor=actor,
                    field=name,
                    target=finding.title,
                    new=str(getattr(finding, name))[:200],
                )
    return redactions


@transaction.atomic
def finding_remove(*, finding: Finding, actor: AbstractBaseUser | None) -> None:
    timeline.record(finding.investigation, Kind.FINDING_REMOVED, actor=actor, target=finding.title, old=finding.status)
    finding.delete()


ACTION_ITEM_TEXT_FIELDS = ("phase", "title", "timeframe")


@transaction.atomic
def action_item_save(*, item: ActionItem, actor: AbstractBaseUser | None, changed: list[str]) -> Redactions:
    """Save an action item added or edited as a record; redacted, each change on the timeline."""
    redactions = Redactions()
    for name in ACTION_ITEM_TEXT_FIELDS:
        setattr(item, name, redactions.clean(f"action_item.{name}", getattr(item, name)))
    adding = item.pk is None
    item.save()
    with timeline.action():
        if adding:
            timeline.record(item.investigation, Kind.ACTION_ITEM_ADDED, actor=actor, target=item.title)
        for name in [] if adding else changed:
            kind = Kind.ACTION_ITEM_CHANGED
            if name == "done":
                kind = Kind.ACTION_ITEM_DONE if item.done else Kind.ACTION_ITEM_REOPENED
            timeline.record(
                item.investigation,
                kind,
                actor=actor,
                field=name if kind == Kind.ACTION_ITEM_CHANGED else "",
                target=item.title,
                old=(not item.done) if name == "done" else "",
                new=item.done if name == "done" else str(getattr(item, name) or "")[:200],
            )
    return redactions


@transaction.atomic
def action_item_remove(*, item: ActionItem, actor: AbstractBaseUser | None) -> None:
    timeline.record(item.investigation, Kind.ACTION_ITEM_REMOVED, actor=actor, target=item.title, old=item.done)
    item.delete()


# --- SLA warnings -------------------------------------------------------------------------------------------


def sla_warnings_send(now=None) -> int:
    """Investigations past 75 % of a goal get one internal timeline note for their owner (shown on the owner's
    queue, emailed to them). Returns how many were warned. Beat sends it every minute."""
    now = now or timezone.now()
    warned = 0
    due = Investigation.objects.filter(sla_warn_at__lte=now, status__in=OPEN_STATUSES)
    for investigation in due.select_related("owner")[:500]:
        state = sla.refresh(investigation, now)
        key = warning_key(state) if state else ""
        if not key or key == investigation.sla_warned_for:
            continue
        clock = next(c for c in state.clocks if f"{c.goal}:{c.cycle}" == key)
        if clock.warn_at and clock.warn_at > now:
            continue
        owner = investigation.owner.get_username() if investigation.owner else "no owner"
        with transaction.atomic():
            Investigation.objects.filter(pk=investigation.pk).update(sla_warned_for=key)
            timeline.record(
                investigation,
                Kind.SLA_WARNING,
                field=clock.goal,
                new="breached" if clock.breached_at else "warning",
                body=(
                    f"The {clock.goal.replace('response', 'first response')} goal ({clock.goal_minutes} min) is "
                    f"{'breached' if clock.breached_at else 'at 75 %'}; it breaches at "
                    f"{clock.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC. Owner: {owner}."
                ),
            )
        warned += 1
    return warned
