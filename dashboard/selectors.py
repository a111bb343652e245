"""Read-only aggregates for managers. Each block is one or two queries whatever the data size, so a
page costs the same number of queries at 100 investigations and at 100,000."""

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Least
from django.utils import timezone
from django.utils.functional import cached_property

from hokusai_portal import query as query_values
from hokusai_portal.query import local_midnight
from onboarding.diagnosis import PORTAL_CAUSES
from onboarding.models import CheckRun, DeveloperProgress, EnvironmentCheck
from organizations.models import Membership, Organization
from triage import stats
from triage.models import OPEN_STATUSES, Investigation, InvestigationStat, Report, Severity, SlaCycle
from triage.selectors import tagged_with

WEEKS = 12
# The onboarding milestones in order, as DeveloperProgress records them (`<key>_at`): the funnel's steps and
# the stages an organization reaches.
ONBOARDING_STEPS = (
    ("signed_up", "Signed up"),
    ("email_verified", "Email verified"),
    ("key_saved", "Key saved"),
    ("connectivity_passed", "Connectivity passed"),
    ("registered", "Model registered"),
)
STUCK_DAYS = 7  # an organization that has not reached a further stage for longer than this is stuck
ORGANIZATIONS_PER_PAGE = 25
MEMBERS_SHOWN = 5


@dataclass
class DashboardFilters:
    start: date | None = None
    end: date | None = None
    severity: str = ""
    component: int | None = None

    @classmethod
    def from_query(cls, query) -> "DashboardFilters":
        return cls(
            start=query_values.day(query.get("start")),
            end=query_values.day(query.get("end")),
            severity=query_values.choice(query.get("severity"), Severity.values),
            component=query_values.object_id(query.get("component")),
        )

    def as_list_query(self) -> dict:
        """The same filters in the investigation list's words, for links."""
        query = {}
        if self.start:
            query["created_after"] = self.start.isoformat()
        if self.end:
            query["created_before"] = self.end.isoformat()
        if self.severity:
            query["severity"] = self.severity
        if self.component:
            query["component"] = str(self.component)
        return query


def investigations_for(filters: DashboardFilters) -> QuerySet[Investigation]:
    queryset = Investigation.objects.all()
    if filters.start:
        queryset = queryset.filter(created_at__gte=local_midnight(filters.start))
    if filters.end:
        queryset = queryset.filter(created_at__lt=local_midnight(filters.end + timedelta(days=1)))
    if filters.severity:
        queryset = queryset.filter(severity=filters.severity)
    if filters.component:
        queryset = queryset.filter(tagged_with(filters.component))
    return queryset


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5) WITHIN GROUP (ORDER BY expression)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _stat_rows(filters: DashboardFilters) -> QuerySet[InvestigationStat]:
    rows = InvestigationStat.objects.filter(stats.periods(filters.start, filters.end))
    rows = rows.filter(component_id=filters.component) if filters.component else rows.filter(component__isnull=True)
    return rows.filter(severity=filters.severity) if filters.severity else rows


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 1)


def severities_for(filters: DashboardFilters) -> list[tuple[str, str]]:
    """The severity rows a table shows: the filtered one alone, or all four."""
    return [(v, label) for v, label in Severity.choices if not filters.severity or v == filters.severity]


def time_to_resolution(histograms: dict[str, dict[str, list]], severities: list[tuple[str, str]]) -> dict:
    """p50/p90 days from created to resolved, overall and per severity, from the stats' histograms."""
    overall: dict[str, list] = {}
    for histogram in histograms.values():
        for key, (n, total) in histogram.items():
            merged = overall.setdefault(key, [0, 0.0])
            merged[0] += n
            merged[1] += total

    def summary(histogram: dict[str, list]) -> dict:
        return {
            "p50": _days(stats.percentile(histogram, 0.5)),
            "p90": _days(stats.percentile(histogram, 0.9)),
            "n": sum(n for n, _ in histogram.values()),
        }

    return {
        "overall": summary(overall),
        "per_severity": [(value, label, summary(histograms.get(value, {}))) for value, label in severities],
    }


def weekly_trend(created_by_week: dict[str, int], resolved_by_week: dict[str, int], today: date) -> list[dict]:
    """Created and resolved per week for the last WEEKS weeks."""
    this_monday = today - timedelta(days=today.weekday())
    weeks = [this_monday - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    return [
        {
            "week": w,
            "created": created_by_week.get(w.isoformat(), 0),
            "resolved": resolved_by_week.get(w.isoformat(), 0),
        }
        for w in weeks
    ]


def onboarding_funnel(filters: DashboardFilters, now: datetime) -> dict:
    progress = DeveloperProgress.objects.all()
    if filters.start:
        progress = progress.filter(signed_up_at__date__gte=filters.start)
    if filters.end:
        progress = progress.filter(signed_up_at__date__lte=filters.end)
    registered = Q(registered_at__isnull=False)
    median = {}
    if connection.vendor == "postgresql":
        to_first = RawSQL("EXTRACT(EPOCH FROM (registered_at - signed_up_at))", [])
        median = {"median_seconds": Median(to_first, filter=registered)}
    counts = progress.aggregate(
        signed_up=Count("*"),
        email_verified=Count("id", filter=Q(email_verified_at__isnull=False)),
        key_saved=Count("id", filter=Q(key_saved_at__isnull=False)),
        connectivity_passed=Count("id", filter=Q(connectivity_passed_at__isnull=False)),
        registered=Count("id", filter=registered),
        **median,
    )
    if connection.vendor != "postgresql":  # no percentile aggregate: SQLite serves small data sets
        to_first = ExpressionWrapper(F("registered_at") - F("signed_up_at"), output_field=DurationField())
        durations = [
            d.total_seconds() for d in progress.filter(registered).annotate(d=to_first).values_list("d", flat=True)
        ]
        counts["median_seconds"] = statistics.median(durations) if durations else None
    steps, previous = [], None
    for key, label in ONBOARDING_STEPS:
        value = counts[key]
        conversion = None if previous in (None, 0) else round(100 * value / previous)
        steps.append({"key": key, "label": label, "count": value, "conversion": conversion})
        previous = value
    causes_since = timezone.localdate(now) - timedelta(days=7)  # whole days, so the history can list them
    top_causes = list(
        CheckRun.objects.filter(
            created_at__gte=local_midnight(causes_since),
            status__in=CheckRun.UNSUCCESSFUL,
        )
        .exclude(cause__in=PORTAL_CAUSES)  # the portal's own failures say nothing about where onboarding fails
        .values("cause")
        .annotate(runs=Count("*"), users=Count("user", distinct=True))
        .order_by("-users", "-runs")[:8]
    )
    # What the environment doctor found failing on developers' own machines, beside what the checks found.
    doctor_causes = list(
        EnvironmentCheck.objects.filter(report__created_at__gte=local_midnight(causes_since), status="fail")
        .values("cause")
        .annotate(runs=Count("report", distinct=True), users=Count("report__user", distinct=True))
        .order_by("-users", "-runs")[:8]
    )
    top_causes = sorted(
        [{**row, "source": "check"} for row in top_causes] + [{**row, "source": "doctor"} for row in doctor_causes],
        key=lambda row: (-row["users"], -row["runs"], row["source"], row["cause"]),
    )[:10]
    # The same failures counted by customer: how many organizations (the one a run was made in) each cause hit.
    organization_causes = list(
        CheckRun.objects.filter(
            created_at__gte=local_midnight(causes_since),
            status__in=CheckRun.UNSUCCESSFUL,
            organization__isnull=False,
        )
        .exclude(cause__in=PORTAL_CAUSES)
        .values("cause")
        .annotate(
            organizations=Count("organization", distinct=True),
            users=Count("user", distinct=True),
            runs=Count("*"),
        )
        .order_by("-organizations", "-users", "-runs", "cause")[:8]
    )
    return {
        "steps": steps,
        "top_causes": top_causes,
        "organization_causes": organization_causes,
        "causes_since": causes_since,
        "median_hours_to_first_registration": (
            None if counts["median_seconds"] is None else round(counts["median_seconds"] / 3600, 1)
        ),
    }


class _Counted(Paginator):
    """A paginator told its count (read with the stuck count in one query) instead of asking for it."""

    def __init__(self, object_list, per_page: int, count: int):
        super().__init__(object_list, per_page)
        self._known_count = count

    @cached_property
    def count(self) -> int:
        return self._known_count


def _totals(organizations: QuerySet[Organization]) -> dict:
    """How many organizations, how many stuck: one query over the grouped one. (QuerySet.aggregate() over these
    annotations leaves `stuck` out of its subquery, and SQLite then reads "stuck" as a string: always 0.)"""
    sql, params = organizations.order_by().values("id", "stuck").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), COALESCE(SUM(stuck), 0) FROM ({sql}) AS grouped", params)
        total, stuck = cursor.fetchone()
    return {"total": total, "stuck": int(stuck)}


def _stage_of(progress: DeveloperProgress | None) -> int:
    """The index in ONBOARDING_STEPS of the furthest milestone one developer reached (0: signed up)."""
    if progress is None:
        return 0
    return max(i for i, (key, _) in enumerate(ONBOARDING_STEPS) if i == 0 or getattr(progress, f"{key}_at"))


def organizations_onboarding(filters: DashboardFilters, now: datetime, page_number=None) -> dict:
    """Onboarding per organization: its members, the furthest stage any member reached (the funnel's stages),
    days since its first sign-up (or its creation), and stuck (no further stage for longer than STUCK_DAYS
    days, short of a registered model); stuck ones first, the longest stuck first. Three queries whatever
    the number of organizations: the totals, one page, that page's members. The date range selects
    organizations by their first sign-up, as the funnel selects developers by theirs."""
    progress = "memberships__user__onboarding_progress__"
    last = len(ONBOARDING_STEPS) - 1
    firsts = {f"first_{key}": Min(f"{progress}{key}_at") for key, _ in ONBOARDING_STEPS}
    organizations = Organization.objects.annotate(members=Count("memberships"), **firsts).annotate(
        started=Least(Coalesce("first_signed_up", "created_at"), "created_at"),
        stage=Case(
            *[
                When(**{f"first_{key}__isnull": False}, then=Value(i))
                for i, (key, _) in reversed(list(enumerate(ONBOARDING_STEPS)))
                if i
            ],
            default=Value(0),
            output_field=IntegerField(),
        ),
    )
    reached = Case(
        *[When(stage=i, then=F(f"first_{key}")) for i, (key, _) in enumerate(ONBOARDING_STEPS) if i],
        default=F("started"),
    )
    organizations = organizations.annotate(reached=reached).annotate(
        done=Case(When(stage=last, then=Value(True)), default=Value(False), output_field=BooleanField()),
        stuck=Case(  # 1 or 0: summed for the totals
            When(stage__lt=last, reached__lt=now - timedelta(days=STUCK_DAYS), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )
    if filters.start:
        organizations = organizations.filter(started__gte=local_midnight(filters.start))
    if filters.end:
        organizations = organizations.filter(started__lt=local_midnight(filters.end + timedelta(days=1)))
    totals = _totals(organizations)
    members = Membership.objects.select_related("user__onboarding_progress").order_by("-role", "joined_at", "id")
    ordered = organizations.order_by("-stuck", "done", "reached", "name", "id").prefetch_related(
        Prefetch("memberships", queryset=members[:MEMBERS_SHOWN], to_attr="shown_members")
    )
    page: Page = _Counted(ordered, ORGANIZATIONS_PER_PAGE, totals["total"]).get_page(page_number)
    rows = []
    for organization in page:
        shown = organization.shown_members
        rows.append(
            {
                "id": organization.pk,
                "name": organization.name,
                "members": organization.members,
                "shown_members": [
                    {
                        "username": m.user.get_username(),
                        "owner": m.is_owner,
                        "stage": ONBOARDING_STEPS[_stage_of(getattr(m.user, "onboarding_progress", None))][1],
                    }
                    for m in shown
                ],
                "more_members": organization.members - len(shown),
                "stage": ONBOARDING_STEPS[organization.stage][0],
                "stage_label": ONBOARDING_STEPS[organization.stage][1],
                "stage_number": organization.stage + 1,
                "days_since_sign_up": (now - organization.started).days,
                "days_at_stage": (now - organization.reached).days,
                "stuck": bool(organization.stuck),
                "done": organization.done,
            }
        )
    return {
        "total": totals["total"],
        "stuck": totals["stuck"],
        "stuck_days": STUCK_DAYS,
        "stages": len(ONBOARDING_STEPS),
        "page": page,
        "rows": rows,
    }


def dashboard_numbers(filters: DashboardFilters, now: datetime | None = None, organizations_page=None) -> dict:
    now = now or timezone.now()
    today = timezone.localdate(now)
    this_monday = today - timedelta(days=today.weekday())
    last_monday = this_monday - timedelta(weeks=1)
    # Counts over every matching investigation come from the pre-aggregated stats (one query) ...
    matrix: dict[tuple[str, str], int] = defaultdict(int)
    findings: dict[str, int] = defaultdict(int)
    resolved_by_week: dict[str, int] = defaultdict(int)
    created_by_week: dict[str, int] = defaultdict(int)
    histograms: dict[str, dict[str, list]] = defaultdict(dict)
    overdue, today_iso = 0, today.isoformat()
    Metric = InvestigationStat.Metric
    for metric, key, severity, n, total in (
        _stat_rows(filters)
        .values("metric", "key", "severity")
        .annotate(n=Sum("n"), total=Sum("total"))
        .values_list("metric", "key", "severity", "n", "total")
        .order_by()
    ):
        if metric == Metric.STATUS:
            matrix[(severity, key)] += n
        elif metric == Metric.FINDING:
            findings[key] += n
        elif metric == Metric.RESOLVED:
            resolved_by_week[key] += n
        elif metric == Metric.CREATED:
            created_by_week[key] += n
        elif metric == Metric.TTR:
            histograms[severity][key] = [n, total]
        elif metric == Metric.REVIEW and key < today_iso:  # ISO dates compare as strings
            overdue += n
    # ... and what depends on the last update is read live, from small indexed sets.
    investigations = investigations_for(filters)
    open_investigations = investigations.filter(status__in=OPEN_STATUSES)
    severities = severities_for(filters)
    stale_critical = open_investigations.filter(
        severity=Severity.CRITICAL, updated_at__lt=now - timedelta(hours=24)
    ).count()
    oldest = list(
        open_investigations.order_by("created_at", "id").only("id", "title", "severity", "status", "created_at")[:10]
    )
    totals = {
        "this_week": resolved_by_week.get(this_monday.isoformat(), 0),
        "last_week": resolved_by_week.get(last_monday.isoformat(), 0),
        "open": sum(matrix[(severity, status)] for severity in Severity.values for status in OPEN_STATUSES),
        "overdue": overdue,
        "stale_critical": stale_critical,
    }
    return {
        "now": now,
        "open_statuses": [(s, Investigation.Status(s).label) for s in OPEN_STATUSES],
        "matrix": [
            (
                value,
                label,
                [(status, matrix[(value, status)]) for status in OPEN_STATUSES],
                sum(matrix[(value, s)] for s in OPEN_STATUSES),
            )
            for value, label in severities
        ],
        "totals": totals,
        "this_monday": this_monday,
        "last_monday": last_monday,
        "last_sunday": this_monday - timedelta(days=1),
        "findings": [
            ("verified", "Verified", findings["verified"]),
            ("false_positive", "False positive", findings["false_positive"]),
            ("needs_investigation", "Needs investigation", findings["needs_investigation"]),
            ("open", "Open (reported or investigating)", findings["reported"] + findings["investigating"]),
            ("resolved", "Resolved", findings["resolved"]),
        ],
        "ttr": time_to_resolution(histograms, severities),
        "oldest": [(inv, (now - inv.created_at).days) for inv in oldest],
        "trend": weekly_trend(created_by_week, resolved_by_week, today),
        "funnel": onboarding_funnel(filters, now),
        "organizations": organizations_onboarding(filters, now, organizations_page),
    }


SLA_WEEKS = 8


def status_summary(filters: DashboardFilters, now: datetime | None = None) -> dict:
    """The headline numbers other tools read: `/api/status` and the API's `GET /api/v1/dashboard` answer this."""
    numbers = dashboard_numbers(filters, now)
    return {
        "generated_at": numbers["now"].isoformat(),
        "open": numbers["totals"]["open"],
        "open_by_severity": {value: total for value, _, _, total in numbers["matrix"]},
        "resolved_this_week": numbers["totals"]["this_week"],
        "resolved_last_week": numbers["totals"]["last_week"],
        "overdue_reviews": numbers["totals"]["overdue"],
        "critical_without_update_24h": numbers["totals"]["stale_critical"],
        "time_to_resolution_days": numbers["ttr"]["overall"],
        "findings": {key: count for key, _, count in numbers["findings"]},
        "onboarding_funnel": {step["key"]: step["count"] for step in numbers["funnel"]["steps"]},
        "top_failure_causes_7d": numbers["funnel"]["top_causes"],
        "top_failure_causes_by_organizations_7d": numbers["funnel"]["organization_causes"],
        "onboarding_by_organization": {
            "organizations": numbers["organizations"]["total"],
            "stuck": numbers["organizations"]["stuck"],
            "stuck_after_days": STUCK_DAYS,
            # the dashboard's first page: stuck ones first, the longest stuck first
            "first_page": [
                {key: row[key] for key in ("name", "members", "stage", "days_since_sign_up", "days_at_stage", "stuck")}
                for row in numbers["organizations"]["rows"]
            ],
        },
    }


def _recent_weeks(now: datetime, weeks: int) -> list[date]:
    """The Mondays of the last `weeks` local weeks, oldest first (this week last)."""
    this_week = stats.week_of(now)
    return [this_week - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def _percent(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def sla_attainment(now: datetime | None = None, weeks: int = SLA_WEEKS) -> dict:
    """Per severity: goals met of goals decided (a clock that ended, or one already breached), for time to first
    response and time to resolution, over the last `weeks` weeks and per week (by when each was decided)."""
    week_starts = _recent_weeks(now or timezone.now(), weeks)
    since = local_midnight(week_starts[0])
    decided = SlaCycle.objects.filter(met__isnull=False).filter(
        Q(ended_at__gte=since) | Q(ended_at__isnull=True, breached_at__gte=since)
    )
    # (severity, goal) -> week -> [met, total]
    cells = {(s, g): {w: [0, 0] for w in week_starts} for s in Severity.values for g in ("response", "resolution")}
    for severity, goal, met, ended_at, breached_at in decided.values_list(
        "severity", "goal", "met", "ended_at", "breached_at"
    ):
        counts = cells.get((severity, goal), {}).get(stats.week_of(ended_at or breached_at))
        if counts is not None:
            counts[0] += int(met)
            counts[1] += 1
    rows = []
    for severity, label in Severity.choices:
        goals = {}
        for goal in ("response", "resolution"):
            per_week = cells[(severity, goal)]
            met, total = sum(m for m, _ in per_week.values()), sum(t for _, t in per_week.values())
            goals[goal] = {
                "met": met,
                "total": total,
                "percent": _percent(met, total),
                "weeks": [
                    {"week": w, "met": m, "total": t, "percent": _percent(m, t)} for w, (m, t) in per_week.items()
                ],
            }
        rows.append({"severity": severity, "label": label, **goals})
    return {"rows": rows, "weeks": week_starts}


def deflection(now: datetime | None = None, weeks: int = SLA_WEEKS) -> list[dict]:
    """Per week: problem reports that joined an open investigation (deflected: someone else had opened it, and
    the known issue was shown at the failure) against those that opened a new one."""
    starts = _recent_weeks(now or timezone.now(), weeks)
    counts = {week: [0, 0] for week in starts}
    for created_at, joined in Report.objects.filter(created_at__gte=local_midnight(starts[0])).values_list(
        "created_at", "joined"
    ):
        if (week := stats.week_of(created_at)) in counts:
            counts[week][0 if joined else 1] += 1
    return [
        {"week": week, "joined": joined, "new": new, "percent": _percent(joined, joined + new)}
        for week, (joined, new) in counts.items()
    ]
