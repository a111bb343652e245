"""Read-only aggregates for managers. Each block is one or two queries whatever the data size, so a
page costs the same number of queries at 100 investigations and at 100,000."""

import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, FloatField, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from onboarding.models import CheckRun, DeveloperProgress
from triage.models import Finding, Investigation, Severity

OPEN = Investigation.OPEN_STATUSES
WEEKS = 12


@dataclass
class DashboardFilters:
    start: date | None = None
    end: date | None = None
    severity: str = ""
    component: int | None = None

    @classmethod
    def from_query(cls, query) -> "DashboardFilters":
        def day(value):
            try:
                return date.fromisoformat(value) if value else None
            except ValueError:
                return None

        component = query.get("component", "")
        return cls(
            start=day(query.get("start")),
            end=day(query.get("end")),
            severity=query.get("severity", "") if query.get("severity", "") in Severity.values else "",
            component=int(component) if component.isdigit() else None,
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
        queryset = queryset.filter(
            created_at__gte=datetime.combine(filters.start, time.min, tzinfo=timezone.get_current_timezone())
        )
    if filters.end:
        queryset = queryset.filter(
            created_at__lt=datetime.combine(
                filters.end + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
            )
        )
    if filters.severity:
        queryset = queryset.filter(severity=filters.severity)
    if filters.component:
        queryset = queryset.filter(components__id=filters.component)
    return queryset


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(p) WITHIN GROUP (ORDER BY expr), as an aggregate (so GROUP BY
    stays on the grouping fields)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=fraction, **extra)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction  # linear interpolation, like percentile_cont
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_to_resolution(queryset: QuerySet[Investigation]) -> dict:
    """p50/p90 days from created to resolved, overall and per severity (one query on PostgreSQL)."""
    resolved = queryset.filter(resolved_at__isnull=False)
    seconds = ExpressionWrapper(F("resolved_at") - F("created_at"), output_field=DurationField())
    if connection.vendor == "postgresql":
        from django.db.models.expressions import RawSQL

        epoch = RawSQL("EXTRACT(EPOCH FROM (resolved_at - created_at))", [])
        rows = list(
            resolved.values("severity").annotate(
                p50=PercentileCont(epoch, 0.5), p90=PercentileCont(epoch, 0.9), n=Count("id")
            )
        )
        overall = resolved.aggregate(p50=PercentileCont(epoch, 0.5), p90=PercentileCont(epoch, 0.9), n=Count("id"))
    else:  # SQLite: no percentile aggregate; fetch the durations (fine at the sizes SQLite serves)
        by_severity: dict[str, list[float]] = {}
        for severity, duration in resolved.annotate(d=seconds).values_list("severity", "d"):
            by_severity.setdefault(severity, []).append(duration.total_seconds())
        rows = [
            {"severity": s, "p50": _percentile(v, 0.5), "p90": _percentile(v, 0.9), "n": len(v)}
            for s, v in by_severity.items()
        ]
        everything = [x for v in by_severity.values() for x in v]
        overall = {"p50": _percentile(everything, 0.5), "p90": _percentile(everything, 0.9), "n": len(everything)}

    def days(row):
        return {
            "p50": None if row["p50"] is None else round(row["p50"] / 86400, 1),
            "p90": None if row["p90"] is None else round(row["p90"] / 86400, 1),
            "n": row["n"],
        }

    per_severity = {row["severity"]: days(row) for row in rows}
    return {
        "overall": days(overall),
        "per_severity": [
            (value, label, per_severity.get(value, {"p50": None, "p90": None, "n": 0}))
            for value, label in Severity.choices
        ],
    }


def _per_week(queryset: QuerySet[Investigation], field: str, since: datetime) -> dict[date, int]:
    rows = (
        queryset.filter(**{f"{field}__gte": since})
        .annotate(week=TruncWeek(field))
        .values("week")
        .annotate(n=Count("id", distinct=True))
    )
    return {(week.date() if isinstance(week, datetime) else week): n for week, n in rows.values_list("week", "n")}


def weekly_trend(queryset: QuerySet[Investigation], today: date) -> list[dict]:
    this_monday = today - timedelta(days=today.weekday())
    first = this_monday - timedelta(weeks=WEEKS - 1)
    since = datetime.combine(first, time.min, tzinfo=timezone.get_current_timezone())
    created = _per_week(queryset, "created_at", since)
    resolved = _per_week(queryset, "resolved_at", since)
    weeks = [first + timedelta(weeks=i) for i in range(WEEKS)]
    return [{"week": w, "created": created.get(w, 0), "resolved": resolved.get(w, 0)} for w in weeks]


def onboarding_funnel(filters: DashboardFilters, now: datetime) -> dict:
    progress = DeveloperProgress.objects.all()
    if filters.start:
        progress = progress.filter(signed_up_at__date__gte=filters.start)
    if filters.end:
        progress = progress.filter(signed_up_at__date__lte=filters.end)
    counts = progress.aggregate(
        signed_up=Count("id"),
        key_saved=Count("id", filter=Q(key_saved_at__isnull=False)),
        connectivity_passed=Count("id", filter=Q(connectivity_passed_at__isnull=False)),
        registered=Count("id", filter=Q(registered_at__isnull=False)),
    )
    steps, previous = [], None
    for key, label in (
        ("signed_up", "Signed up"),
        ("key_saved", "Key saved"),
        ("connectivity_passed", "Connectivity passed"),
        ("registered", "Model registered"),
    ):
        value = counts[key]
        conversion = None if previous in (None, 0) else round(100 * value / previous)
        steps.append({"key": key, "label": label, "count": value, "conversion": conversion})
        previous = value
    to_first = ExpressionWrapper(F("registered_at") - F("signed_up_at"), output_field=DurationField())
    durations = [
        d.total_seconds()
        for d in progress.filter(registered_at__isnull=False).annotate(d=to_first).values_list("d", flat=True)[:5000]
    ]
    week_start = now - timedelta(days=7)
    top_causes = list(
        CheckRun.objects.filter(created_at__gte=week_start, status__in=[CheckRun.Status.FAILED, CheckRun.Status.LOST])
        .values("cause")
        .annotate(runs=Count("id"), users=Count("user", distinct=True))
        .order_by("-users", "-runs")[:8]
    )
    return {
        "steps": steps,
        "top_causes": top_causes,
        "median_hours_to_first_registration": None if not durations else round(statistics.median(durations) / 3600, 1),
    }


CACHE_SECONDS = 60


def dashboard_numbers_cached(filters: DashboardFilters) -> dict:
    """The numbers, computed at most once a minute per filter set: the page a manager reloads, or a
    tool polls, costs one cache read instead of a dozen aggregates over every investigation."""
    from django.core.cache import cache

    key = f"dashboard:v1:{filters.start}:{filters.end}:{filters.severity}:{filters.component}"
    numbers = cache.get(key)
    if numbers is None:
        numbers = dashboard_numbers(filters)
        cache.set(key, numbers, CACHE_SECONDS)
    return numbers


def dashboard_numbers(filters: DashboardFilters, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    today = timezone.localdate(now)
    investigations = investigations_for(filters)
    distinct = filters.component is not None  # only the component filter joins (and can repeat rows)
    open_rows = (
        investigations.filter(status__in=OPEN).values("severity", "status").annotate(n=Count("id", distinct=distinct))
    )
    matrix = {(row["severity"], row["status"]): row["n"] for row in open_rows}
    this_monday = datetime.combine(
        today - timedelta(days=today.weekday()), time.min, tzinfo=timezone.get_current_timezone()
    )
    resolved_weeks = investigations.aggregate(
        this_week=Count("id", distinct=distinct, filter=Q(resolved_at__gte=this_monday)),
        last_week=Count(
            "id",
            distinct=distinct,
            filter=Q(resolved_at__gte=this_monday - timedelta(weeks=1), resolved_at__lt=this_monday),
        ),
        open=Count("id", distinct=distinct, filter=Q(status__in=OPEN)),
        overdue=Count("id", distinct=distinct, filter=Q(status__in=OPEN, next_review__lt=today)),
        stale_critical=Count(
            "id",
            distinct=distinct,
            filter=Q(status__in=OPEN, severity=Severity.CRITICAL, updated_at__lt=now - timedelta(hours=24)),
        ),
    )
    finding_rows = Finding.objects.all()
    if filters.start or filters.end or filters.severity or filters.component:
        finding_rows = finding_rows.filter(investigation__in=investigations.values("id"))
    findings = dict(finding_rows.values("status").annotate(n=Count("id")).values_list("status", "n"))
    oldest = list(
        investigations.filter(status__in=OPEN)
        .order_by("created_at", "id")
        .distinct()
        .only("id", "title", "severity", "status", "created_at")[:10]
    )
    return {
        "now": now,
        "open_statuses": [(s, Investigation.Status(s).label) for s in OPEN],
        "matrix": [
            (
                value,
                label,
                [(status, matrix.get((value, status), 0)) for status in OPEN],
                sum(matrix.get((value, s), 0) for s in OPEN),
            )
            for value, label in Severity.choices
        ],
        "totals": resolved_weeks,
        "this_monday": this_monday.date(),
        "last_monday": (this_monday - timedelta(weeks=1)).date(),
        "findings": [
            ("verified", "Verified", findings.get("verified", 0)),
            ("false_positive", "False positive", findings.get("false_positive", 0)),
            ("needs_investigation", "Needs investigation", findings.get("needs_investigation", 0)),
            (
                "open",
                "Open (reported or investigating)",
                findings.get("reported", 0) + findings.get("investigating", 0),
            ),
            ("resolved", "Resolved", findings.get("resolved", 0)),
        ],
        "ttr": time_to_resolution(investigations),
        "oldest": [(inv, (now - inv.created_at).days) for inv in oldest],
        "trend": weekly_trend(investigations, today),
        "funnel": onboarding_funnel(filters, now),
    }
