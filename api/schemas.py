"""What the API reads and answers (pydantic, through django-ninja): the OpenAPI schema is made from these."""

from datetime import datetime
from typing import Any, Literal

from django.urls import reverse
from ninja import Field, Schema

from accounts.roles import Role, has_role

TIMELINE_EVENTS = 100
# PostgreSQL refuses NUL in text: a string carrying one is refused here, as the edge refuses it in forms.
NO_NUL = r"^[^\x00]*$"


def text(max_length: int, default: str = "", **kwargs) -> Any:
    return Field(default, max_length=max_length, pattern=NO_NUL, **kwargs)


class Problem(Schema):
    """RFC 9457 problem details, with the portal's cause code."""

    type: str = "about:blank"
    title: str
    status: int
    cause: str = Field(description="Stable code: TOKEN_MISSING, SCOPE_MISSING, NOT_FOUND, VALIDATION_FAILED, …")
    detail: str
    scope: str | None = Field(None, description="On SCOPE_MISSING and ROLE_MISSING: the scope.")
    errors: list[dict[str, Any]] | None = Field(None, description="On VALIDATION_FAILED: one entry per bad field.")


class CheckIn(Schema):
    kind: Literal["connectivity", "registration"] = Field(
        description="connectivity (scope checks:run) or registration (scope registrations:write)"
    )
    model_name: str = text(256, description="The registered model (optional for a connectivity check).")
    model_uri: str = text(500, description="Registration: runs:/<run_id>/model, models:/m-<id>, …")
    token_id: str = text(64, description="Registration: the Hokusai token id, e.g. LSCOR.")
    metric_name: str = text(250, description="Registration: the metric the baseline is measured on.")
    baseline_value: str = text(50, description="Registration: a number, e.g. 0.92.")
    proposal_identifier: str = text(250)
    extra_tags: dict[str, str] = Field(default_factory=dict, description="Registration: extra version tags.")


class StepOut(Schema):
    position: int
    name: str
    title: str
    status: str = Field(description="pass, fail, warn or skip")
    cause: str
    message: str
    remedy: str
    duration_ms: int


class CheckOut(Schema):
    id: int
    kind: str
    status: str = Field(description="queued, running, passed, failed or lost; final when finished is true")
    finished: bool
    cause: str = Field(description="OK when passed; else the first failing step's cause code")
    model_name: str
    key_masked: str
    created_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    url: str = Field(description="The check's page in the portal")
    api_url: str
    steps: list[StepOut]

    @staticmethod
    def resolve_finished(run) -> bool:
        return run.is_finished

    @staticmethod
    def resolve_steps(run) -> list:
        return list(run.steps.all())

    @staticmethod
    def resolve_url(run, context) -> str:
        return context["request"].build_absolute_uri(reverse("onboarding:check_run", args=[run.pk]))

    @staticmethod
    def resolve_api_url(run, context) -> str:
        return context["request"].build_absolute_uri(reverse("api_v1:check", args=[run.pk]))


class CheckStarted(Schema):
    id: int
    status: str
    url: str
    api_url: str


class InvestigationRow(Schema):
    number: str = Field(description="INV-n")
    id: int
    title: str
    severity: str
    status: str
    resolution: str
    owner: str
    created_at: datetime
    updated_at: datetime
    url: str = Field(description="The investigation's page in the portal")
    api_url: str

    @staticmethod
    def resolve_owner(investigation) -> str:
        return investigation.owner.get_username() if investigation.owner else investigation.owner_label

    @staticmethod
    def resolve_url(investigation, context) -> str:
        return context["request"].build_absolute_uri(reverse("triage:detail", args=[investigation.pk]))

    @staticmethod
    def resolve_api_url(investigation, context) -> str:
        return context["request"].build_absolute_uri(reverse("api_v1:investigation", args=[investigation.number]))


class FindingOut(Schema):
    title: str
    status: str
    verdict_reason: str
    root_cause: str | None = Field(None, description="Support and managers only")


class EventOut(Schema):
    kind: str = Field(description="What happened, as a code (status, field, finding_verdict, comment, ...)")
    field: str = Field(description="The field that changed, for field and finding/action changes")
    target: str = Field(description="The finding's or action item's title, or the reporter's name")
    old: str = Field(description="The machine value before (a status code, not its label)")
    new: str = Field(description="The machine value after")
    what: str = Field(description="What changed, in words, as the page says it")
    old_text: str
    new_text: str
    action_id: str = Field(description="Shared by the steps of one user action (resolve as fixed walks several)")
    body: str
    internal: bool
    actor: str
    created_at: datetime


class InvestigationOut(InvestigationRow):
    summary: str
    resolved_at: datetime | None
    findings: list[FindingOut]
    timeline: list[EventOut] = Field(description="The latest 100 events, oldest first; public ones only for reporters")

    @staticmethod
    def resolve_findings(investigation, context) -> list[dict]:
        staff = _staff(context)
        return [
            {
                "title": finding.title,
                "status": finding.status,
                "verdict_reason": finding.verdict_reason,
                "root_cause": finding.root_cause if staff else None,  # support's own work, as on the page
            }
            for finding in investigation.findings.all()
        ]

    @staticmethod
    def resolve_timeline(investigation, context) -> list[dict]:
        events = investigation.timeline.select_related("actor").order_by("-created_at", "-id")
        if not _staff(context):
            events = events.filter(internal=False)  # internal notes never leave support, as on the page
        return [
            {
                "kind": event.kind,
                "field": event.field,
                "target": event.target,
                "old": event.old,
                "new": event.new,
                "what": event.what,
                "old_text": event.old_text,
                "new_text": event.new_text,
                "action_id": str(event.action_id),
                "body": event.body,
                "internal": event.internal,
                "actor": event.actor.get_username() if event.actor else "",
                "created_at": event.created_at,
            }
            for event in reversed(events[:TIMELINE_EVENTS])
        ]


def _staff(context) -> bool:
    return has_role(context["request"].auth.user, Role.SUPPORT, Role.MANAGER)


class CommentIn(Schema):
    body: str = Field(min_length=1, max_length=20000, pattern=NO_NUL)
    visibility: Literal["reply", "internal"] = Field(
        description="reply: the reporters read it; internal: support and managers only"
    )


class CommentOut(Schema):
    id: int
    internal: bool
    created_at: datetime
    redactions: int = Field(description="How many secrets were masked in the body before it was saved")


class TransitionIn(Schema):
    status: str = text(
        32, default=..., description="new, investigating, root_cause_identified, fixing, resolved, closed…"
    )
    resolution: str = text(32, description="When resolving: fixed, false_positive, duplicate, …")
    duplicate_of: str = text(20, description="For a duplicate: INV-n")


class InvestigationFilters(Schema):
    """The investigation list's filters (the page's names and values; a value that cannot be read is ignored)."""

    status: str | None = None
    severity: str | None = None
    owner: str | None = None
    component: str | None = None
    finding_status: str | None = None
    q: str | None = None
    sla: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    resolved_after: str | None = None
    resolved_before: str | None = None
    resolved: str | None = None
    overdue: str | None = None
    stale_critical: str | None = None


class CheckFilters(Schema):
    """The check history's filters."""

    cause: str | None = None
    since: str | None = Field(None, description="YYYY-MM-DD")
    failed: str | None = Field(None, description="1: failed and lost runs only")


class DashboardFiltersIn(Schema):
    start: str | None = Field(None, description="YYYY-MM-DD")
    end: str | None = Field(None, description="YYYY-MM-DD")
    severity: str | None = None
    component: str | None = None


class DashboardOut(Schema):
    generated_at: str
    open: int
    open_by_severity: dict[str, int]
    resolved_this_week: int
    resolved_last_week: int
    overdue_reviews: int
    critical_without_update_24h: int
    time_to_resolution_days: dict[str, Any]
    findings: dict[str, int]
    onboarding_funnel: dict[str, int]
    top_failure_causes_7d: list[dict[str, Any]]
    top_failure_causes_by_organizations_7d: list[dict[str, Any]] = Field(
        description="Failed checks' causes counted by distinct organizations (and developers, runs)"
    )
    onboarding_by_organization: dict[str, Any] = Field(
        description="Organizations, how many are stuck (no further stage for more than 7 days), and the "
        "dashboard's first page of them, stuck first"
    )
