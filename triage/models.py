import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .clocks import calendar_of


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Component(models.Model):
    """The managed list of affected components (SDK tracking module, MLflow auth config, ...)."""

    name = models.CharField(max_length=80, unique=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class InvestigationStatus(models.TextChoices):
    NEW = "new", "New"
    INVESTIGATING = "investigating", "Investigating"
    ROOT_CAUSE_IDENTIFIED = "root_cause_identified", "Root cause identified"
    FIXING = "fixing", "Fixing"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# The one set of open statuses (in the workflow's order): lists, clocks, the dashboard and the indexes use it.
OPEN_STATUSES = (
    InvestigationStatus.NEW,
    InvestigationStatus.INVESTIGATING,
    InvestigationStatus.ROOT_CAUSE_IDENTIFIED,
    InvestigationStatus.FIXING,
    InvestigationStatus.MONITORING,
)


class Investigation(models.Model):
    Status = InvestigationStatus

    class Resolution(models.TextChoices):
        NONE = "", "—"
        FIXED = "fixed", "Fixed"
        FALSE_POSITIVE = "false_positive", "False positive"
        DUPLICATE = "duplicate", "Duplicate"
        CANNOT_REPRODUCE = "cannot_reproduce", "Cannot reproduce"
        WONT_FIX = "wont_fix", "Won't fix"

    OPEN_STATUSES = OPEN_STATUSES

    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM, db_index=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.NEW, db_index=True)
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True, default="")
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_investigations"
    )
    owner_label = models.CharField(max_length=120, blank=True, help_text="Owner as written in an imported plan.")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reported_investigations",
    )
    next_review = models.DateField(null=True, blank=True)
    review_cadence = models.CharField(max_length=120, blank=True, help_text="e.g. Daily until resolution")
    environment = models.JSONField(
        default=dict, blank=True, help_text="Python, SDK version/commit, MLflow version, extra key/values."
    )
    components = models.ManyToManyField(Component, blank=True, related_name="investigations")
    # The public status page: a public investigation linked to platform components is an incident there,
    # its public timeline (status changes, replies) its updates.
    public_incident = models.BooleanField(
        default=False, help_text="Shown on the public status page as an incident, with its public updates."
    )
    status_components = models.ManyToManyField(
        "status.PlatformComponent",
        blank=True,
        related_name="incidents",
        verbose_name="platform components (status page)",
    )
    impact_user = models.TextField(blank=True)
    impact_business = models.TextField(blank=True)
    impact_platform = models.TextField(blank=True)
    reproduction_steps = models.TextField(blank=True, help_text="Markdown with code blocks.")
    risks = models.TextField(blank=True)
    mitigations = models.TextField(blank=True)
    component_details = models.TextField(blank=True, help_text="The plan's own description of the affected components.")
    notes = models.JSONField(
        default=list, blank=True, help_text="Sections of an imported plan the importer did not map, kept verbatim."
    )
    fingerprint = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="step:cause:server version, for grouping reports."
    )
    plan_digest = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="SHA-256 of the imported plan's text: a re-import is recognised.",
    )
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # SLA (triage/sla.py): the clocks pause while waiting on the reporter; the rest is derived from the
    # timeline by sla.refresh and kept here for the lists' filters.
    awaiting_reporter = models.BooleanField(default=False, help_text="Waiting on the reporter: the SLA clocks pause.")
    sla_due_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="When a running goal breaches.")
    sla_warn_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="When 75 % of a goal is used.")
    sla_warned_for = models.CharField(max_length=24, blank=True, help_text="The clock (goal:cycle) last warned about.")
    sla_breached = models.BooleanField(
        default=False, db_index=True, help_text="A goal of the current cycle is breached."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "severity"]),
            # the list's default order: a deep page is an index-only walk over ids (see triage.views.index)
            models.Index(fields=["-created_at", "-id"], name="investigation_newest"),
            # the dashboard's live numbers, each an index-only scan of the open investigations
            models.Index(
                fields=["created_at", "id"],
                condition=Q(status__in=list(OPEN_STATUSES)),
                name="investigation_open_oldest",
            ),
            models.Index(
                fields=["updated_at"],
                condition=Q(status__in=list(OPEN_STATUSES), severity="critical"),
                name="investigation_open_critical",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"INV-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Finding(models.Model):
    """A reported issue inside an investigation, with its verdict."""

    class Status(models.TextChoices):
        REPORTED = "reported", "Reported"
        INVESTIGATING = "investigating", "Investigating"
        VERIFIED = "verified", "Verified"
        FALSE_POSITIVE = "false_positive", "False positive"
        NEEDS_INVESTIGATION = "needs_investigation", "Needs investigation"
        RESOLVED = "resolved", "Resolved"

    VERDICTS = (Status.VERIFIED, Status.FALSE_POSITIVE)

    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="findings")
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.REPORTED)
    verdict_reason = models.TextField(blank=True, help_text="Required for verified and false positive.")
    root_cause = models.TextField(blank=True)
    possible_causes = models.TextField(blank=True)
    evidence = models.TextField(blank=True)

    class Meta:
        ordering = ["investigation", "position", "id"]

    def __str__(self) -> str:
        return self.title


class ActionItem(models.Model):
    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="action_items")
    position = models.PositiveSmallIntegerField(default=0)
    phase = models.CharField(max_length=120, blank=True, help_text="e.g. Phase 2: Authentication Deep Dive")
    priority = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    title = models.CharField(max_length=300)
    done = models.BooleanField(default=False)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    timeframe = models.CharField(max_length=60, blank=True, help_text="e.g. Within 24 hours")
    due = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["investigation", "position", "id"]

    def __str__(self) -> str:
        return self.title


class TimelineEvent(models.Model):
    """Append-only: what happened, in codes (`kind`, `field`, `old`, `new`), who and when. Readers (the SLA
    clocks, webhooks, notifications, the dashboard) read the codes; the words a page shows are derived here,
    at render time (`what`, `old_text`, `new_text`), so a renamed label changes nothing but the page.
    `action_id` groups the steps of one user action (triage/timeline.py: `action()`)."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        IMPORTED = "imported", "Imported from a plan"
        STATUS = "status", "Status"
        RESOLUTION = "resolution", "Resolution"
        SEVERITY = "severity", "Severity"
        OWNER = "owner", "Owner"
        FIELD = "field", "Field changed"
        COMPONENTS = "components", "Components"
        PLATFORM_COMPONENTS = "platform_components", "Platform components"
        FINDING_ADDED = "finding_added", "Finding added"
        FINDING_CHANGED = "finding_changed", "Finding changed"
        FINDING_VERDICT = "finding_verdict", "Finding verdict"
        FINDING_ROOT_CAUSE = "finding_root_cause", "Root cause"
        FINDING_REMOVED = "finding_removed", "Finding removed"
        ACTION_ITEM_ADDED = "action_item_added", "Action item added"
        ACTION_ITEM_CHANGED = "action_item_changed", "Action item changed"
        ACTION_ITEM_DONE = "action_item_done", "Action item done"
        ACTION_ITEM_REOPENED = "action_item_reopened", "Action item reopened"
        ACTION_ITEM_REMOVED = "action_item_removed", "Action item removed"
        WAITING_ON_REPORTER = "waiting_on_reporter", "Waiting on the reporter"
        SLA_WARNING = "sla_warning", "SLA warning"
        COMMENT = "comment", "Comment"
        REPORT = "report", "Problem report"
        RERUN = "rerun", "Check re-run"
        OTHER = "other", "Other"  # a pre-codes row the migration could not read: `field` keeps its words

    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=24, choices=Kind.choices, db_index=True)
    field = models.CharField(
        max_length=60, blank=True, help_text="The field changed (kind field), a finding's field, or an SLA goal."
    )
    target = models.CharField(
        max_length=300, blank=True, help_text="The finding's or action item's title, or the reporter's username."
    )
    old = models.TextField(blank=True, help_text="The machine value before (a status code, not its label).")
    new = models.TextField(blank=True, help_text="The machine value after.")
    body = models.TextField(blank=True)
    internal = models.BooleanField(default=True, help_text="Support only; false = visible to the reporter.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action_id = models.UUIDField(default=uuid.uuid4, db_index=True, help_text="The user action this step is part of.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.what}"

    # --- display, derived from the codes -------------------------------------------------------------------

    @property
    def what(self) -> str:
        """What changed, in words: "status", "finding “Token expiry”", ..."""
        K = self.Kind
        if self.kind == K.FIELD:
            return _verbose_name(Investigation, self.field)
        if self.kind == K.FINDING_VERDICT:
            return f"finding “{self.target}”"
        if self.kind in (K.FINDING_ADDED, K.FINDING_REMOVED):
            return f"finding “{self.target}” {'added' if self.kind == K.FINDING_ADDED else 'removed'}"
        if self.kind == K.FINDING_CHANGED:
            return f"{_verbose_name(Finding, self.field)} of finding “{self.target}”"
        if self.kind == K.FINDING_ROOT_CAUSE:
            return f"root cause of “{self.target}”"
        if self.kind in (K.ACTION_ITEM_DONE, K.ACTION_ITEM_REOPENED):
            return f"action “{self.target}”"
        if self.kind in (K.ACTION_ITEM_ADDED, K.ACTION_ITEM_REMOVED):
            return f"action “{self.target}” {'added' if self.kind == K.ACTION_ITEM_ADDED else 'removed'}"
        if self.kind == K.ACTION_ITEM_CHANGED:
            return f"{_verbose_name(ActionItem, self.field)} of action “{self.target}”"
        if self.kind == K.OTHER:
            return self.field
        return _WHAT.get(self.kind, self.get_kind_display().lower())

    @property
    def old_text(self) -> str:
        return self._text(self.old)

    @property
    def new_text(self) -> str:
        return self._text(self.new)

    def _text(self, value: str) -> str:
        K = self.kind
        kinds = self.Kind
        if K in (kinds.STATUS, kinds.CREATED):
            return _label(Investigation.Status, value)
        if K == kinds.RESOLUTION:
            return _label(Investigation.Resolution, value) if value else ""
        if K == kinds.SEVERITY or (K == kinds.FIELD and self.field == "severity"):
            return _label(Severity, value)
        if K == kinds.FINDING_VERDICT:
            return _label(Finding.Status, value)
        if K == kinds.WAITING_ON_REPORTER:
            return {"true": "yes", "false": "no"}.get(value, value)
        if K in (kinds.ACTION_ITEM_DONE, kinds.ACTION_ITEM_REOPENED):
            return {"true": "done", "false": "open"}.get(value, value)
        if K == kinds.SLA_WARNING and value:
            return f"{self.field} {'breached' if value == 'breached' else '75 % used'}"
        if K == kinds.REPORT and value:
            return f"check #{value} by {self.target}"
        if K == kinds.RERUN and value:
            return f"check #{value} for {self.target}"
        return value


_WHAT = {
    TimelineEvent.Kind.WAITING_ON_REPORTER: "awaiting reporter",
    TimelineEvent.Kind.SLA_WARNING: "SLA warning",
    TimelineEvent.Kind.PLATFORM_COMPONENTS: "platform components",
    TimelineEvent.Kind.RERUN: "re-run",
    TimelineEvent.Kind.REPORT: "report",
    TimelineEvent.Kind.IMPORTED: "imported",
}


def _label(choices, value: str) -> str:
    """A code's label; an unknown code (a choice since removed) shows as itself."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _verbose_name(model, name: str) -> str:
    try:
        return str(model._meta.get_field(name).verbose_name)
    except Exception:  # noqa: BLE001 - a field since removed shows as its name
        return name


class Report(models.Model):
    """A developer's "Report a problem" from a failed check, attached to the investigation its
    fingerprint groups it into. One per (investigation, reporter): the count of affected users."""

    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="problem_reports")
    check_run = models.ForeignKey(
        "onboarding.CheckRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    consent_rerun = models.BooleanField(
        default=False, help_text="Support may re-run the check with the reporter's key."
    )
    joined = models.BooleanField(
        default=False, help_text="It joined an investigation others had opened (a deflected report), not a new one."
    )
    # What belongs to this reporter alone: seen by them and by staff, never by the investigation's other
    # reporters (the investigation itself holds only what every reporter may read).
    note = models.TextField(blank=True, help_text="The reporter's words, redacted.")
    evidence = models.TextField(
        blank=True, help_text="The reporter's check: number, masked key, each step's message (redacted)."
    )
    doctor_report = models.ForeignKey(
        "onboarding.EnvironmentReport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="problem_reports",
        help_text="The reporter's environment doctor report, attached as evidence.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["investigation", "reporter"], name="one_report_per_user")]

    def __str__(self) -> str:
        return f"{self.reporter} on {self.investigation.number}"


class InvestigationStat(models.Model):
    """Pre-aggregated counts of investigations, per (day or month created, severity, component slice,
    metric, key). Derived data: `triage.stats` keeps it current and can rebuild it from scratch."""

    class Kind(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"
        ALL = "all", "All time"

    class Metric(models.TextChoices):
        STATUS = "status", "Investigations by status"
        FINDING = "finding", "Findings by status"
        CREATED = "created", "Created, by week"
        RESOLVED = "resolved", "Resolved, by week"
        TTR = "ttr", "Time to resolution (log bucket)"
        REVIEW = "review", "Open, by next review date"

    kind = models.CharField(max_length=5, choices=Kind.choices)
    period = models.DateField(help_text="The day created, the first day of the month, or 0001-01-01 (all time).")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    component = models.ForeignKey(
        Component,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: every investigation.",
    )
    metric = models.CharField(max_length=10, choices=Metric.choices)
    key = models.CharField(max_length=32)
    n = models.IntegerField()
    total = models.FloatField(default=0, help_text="Sum of seconds (time to resolution).")

    class Meta:
        indexes = [
            models.Index(fields=["kind", "component", "period"], name="investigation_stat_read"),  # the dashboard
            models.Index(fields=["kind", "period", "severity", "metric", "key"], name="investigation_stat_refresh"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period} {self.severity} {self.metric}={self.key}: {self.n}"


class WorkingCalendar(models.Model):
    """Working hours for SLA clocks: a time zone, daily hours, weekdays and holidays (the `holidays` package)."""

    name = models.CharField(max_length=80, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="An IANA zone, e.g. Europe/Berlin.")
    work_start = models.TimeField(default="09:00")
    work_end = models.TimeField(default="17:00")
    weekdays = models.CharField(
        max_length=20, default="0,1,2,3,4", help_text="0 = Monday … 6 = Sunday, comma-separated."
    )
    holiday_country = models.CharField(
        max_length=2, blank=True, help_text="ISO country code, e.g. US, DE: its public holidays."
    )
    holiday_subdivision = models.CharField(max_length=10, blank=True, help_text="e.g. CA for California.")
    extra_holidays = models.JSONField(default=list, blank=True, help_text='Extra days off, e.g. ["2026-12-24"].')

    def __str__(self) -> str:
        return self.name

    def clean(self):
        try:
            calendar_of(self)
        except (ValueError, KeyError, NotImplementedError) as error:
            raise ValidationError(str(error)) from None
        if self.work_end <= self.work_start:
            raise ValidationError("Work must end after it starts.")


class SlaPolicy(models.Model):
    """The goals for one severity, in minutes of the calendar's working time (no calendar: every minute)."""

    severity = models.CharField(max_length=10, choices=Severity.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(help_text="Time to the first public reply to the reporter.")
    resolution_minutes = models.PositiveIntegerField(help_text="Time to resolved, per cycle (a reopen starts one).")
    calendar = models.ForeignKey(
        WorkingCalendar, null=True, blank=True, on_delete=models.PROTECT, help_text="Empty: around the clock."
    )

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: respond {self.first_response_minutes} min, resolve {self.resolution_minutes} min"


class SlaCycle(models.Model):
    """One goal's clock in one cycle, as of the investigation's last change: what the dashboard's attainment
    counts. Rewritten by sla.refresh (derived data, like InvestigationStat)."""

    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="sla_cycles")
    goal = models.CharField(max_length=10, choices=[("response", "First response"), ("resolution", "Resolution")])
    cycle = models.PositiveSmallIntegerField(default=1)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    goal_minutes = models.PositiveIntegerField()
    elapsed_minutes = models.PositiveIntegerField()
    breached_at = models.DateTimeField(null=True, blank=True)
    met = models.BooleanField(null=True, help_text="Empty while the clock runs within its goal.")

    class Meta:
        ordering = ["investigation", "goal", "cycle"]
        constraints = [models.UniqueConstraint(fields=["investigation", "goal", "cycle"], name="one_sla_cycle")]

    def __str__(self) -> str:
        return f"{self.investigation_id} {self.goal} #{self.cycle}: {self.met}"
