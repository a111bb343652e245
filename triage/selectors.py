"""Triage reads: lists with filters, ownership checks in one place."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.roles import Role, has_role
from hokusai_portal import query as query_values
from organizations.models import Organization
from organizations.selectors import organization_of

from . import sla
from .models import Component, Finding, Investigation, Report, Severity

SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "updated": ("-updated_at", "-id"),
    "severity": ("severity_rank", "-created_at", "-id"),
}
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


FILTER_FLAGS = ("resolved", "overdue", "stale_critical")
SLA_FILTERS = {"breaching": "breaching within 24 h", "breached": "breached"}
FILTER_DATES = ("created_after", "created_before", "resolved_after", "resolved_before")


def _either(word: str, read):
    """A filter that takes one special word ("open", "me") or what `read` makes of the value."""
    return lambda value: word if value == word else read(value)


def _iso_day(value) -> str:
    parsed = query_values.day(value)
    return parsed.isoformat() if parsed else ""


# Every filter the list reads, each through `hokusai_portal.query` (the fuzz test sends each one bad values).
FILTER_READERS = {
    "status": _either("open", lambda value: query_values.choice(value, Investigation.Status.values)),
    "severity": lambda value: query_values.choice(value, Severity.values),
    "owner": _either("me", lambda value: str(query_values.object_id(value) or "")),
    "component": lambda value: str(query_values.object_id(value) or ""),
    "organization": lambda value: str(query_values.object_id(value) or ""),
    "finding_status": _either("open", lambda value: query_values.choice(value, Finding.Status.values)),
    "q": query_values.text,
    "sort": lambda value: query_values.choice(value, SORTS),
    "sla": lambda value: query_values.choice(value, SLA_FILTERS),
    **dict.fromkeys(FILTER_DATES, _iso_day),
    **dict.fromkeys(FILTER_FLAGS, lambda value: "1" if value == "1" else ""),
}


def investigation_filters(query) -> dict[str, str]:
    """The list's filters from a query string: a value that cannot be read (an unknown status, an id
    that is no id, an impossible date) is left out."""
    return {name: value for name, read in FILTER_READERS.items() if (value := read(query.get(name)))}


def investigation_list(*, filters: dict, user=None) -> QuerySet[Investigation]:
    from django.db.models import Case, IntegerField, Value, When

    queryset = Investigation.objects.select_related("owner")
    if status := filters.get("status"):
        queryset = (
            queryset.filter(status=status)
            if status != "open"
            else queryset.filter(status__in=Investigation.OPEN_STATUSES)
        )
    if severity := filters.get("severity"):
        queryset = queryset.filter(severity=severity)
    if owner := filters.get("owner"):
        queryset = queryset.filter(owner=user) if owner == "me" else queryset.filter(owner_id=owner)
    if component := filters.get("component"):
        queryset = queryset.filter(tagged_with(component))
    if organization := filters.get("organization"):
        queryset = queryset.filter(reported_from_organization(organization))
    queryset = _date_filters(queryset, filters)
    if sla_filter := filters.get("sla"):
        queryset = queryset.filter(sla_q(sla_filter))
    if finding_status := filters.get("finding_status"):
        statuses = FINDING_OPEN if finding_status == "open" else [finding_status]
        queryset = queryset.filter(Exists(Finding.objects.filter(investigation=OuterRef("pk"), status__in=statuses)))
    if text := (filters.get("q") or "").strip():
        query = Q(title__icontains=text) | Q(summary__icontains=text)
        if text.upper().startswith("INV-") and (number := query_values.object_id(text[4:])) is not None:
            query |= Q(pk=number)
        queryset = queryset.filter(query)
    sort = SORTS.get(filters.get("sort") or "newest", SORTS["newest"])
    if sort[0] == "severity_rank":
        queryset = queryset.annotate(
            severity_rank=Case(
                *(When(severity=s, then=Value(r)) for s, r in SEVERITY_RANK.items()), output_field=IntegerField()
            )
        )
    return queryset.order_by(*sort)


SEARCH_COUNT_CAP = 1000
FINDING_OPEN = [Finding.Status.REPORTED, Finding.Status.INVESTIGATING]  # the dashboard's "open" findings


def list_rows(ids: list[int]) -> list[dict]:
    """The list's rows for one page of ids, in that order: plain values with their labels (no model
    instances, no per-row lookups in the template)."""
    components: dict[int, list[str]] = {}
    for investigation_id, name in (
        Investigation.components.through.objects.filter(investigation_id__in=ids)
        .order_by("component__name")
        .values_list("investigation_id", "component__name")
    ):
        components.setdefault(investigation_id, []).append(name)
    severities, statuses = dict(Severity.choices), dict(Investigation.Status.choices)
    resolutions = dict(Investigation.Resolution.choices)
    rows = {}
    for row in Investigation.objects.filter(pk__in=ids).values(
        "id", "title", "severity", "status", "resolution", "owner_label", "created_at", owner_name=F("owner__username")
    ):
        row["severity_label"] = severities.get(row["severity"], row["severity"])
        row["status_label"] = statuses.get(row["status"], row["status"])
        row["resolution_label"] = resolutions.get(row["resolution"], "") if row["resolution"] else ""
        row["owner"] = row["owner_name"] or row["owner_label"] or "—"
        row["components"] = ", ".join(components.get(row["id"], ()))
        row["created"] = timezone.localtime(row["created_at"]).date().isoformat()
        rows[row["id"]] = row
    return [rows[pk] for pk in ids if pk in rows]


def reported_from_organization(organization) -> Exists:
    """Investigations a member of the organization reported (from a check run in it): a semi-join."""
    return Exists(Report.objects.filter(investigation=OuterRef("pk"), check_run__organization=organization))


def tagged_with(component) -> Exists:
    """Investigations tagged with a component: a semi-join, so no row repeats and no DISTINCT."""
    return Exists(Investigation.components.through.objects.filter(investigation=OuterRef("pk"), component=component))


def reported_in_reach_of(*, user) -> Q:
    """The investigations a developer may read: those they reported or joined, and those a member of their
    organization reported from a check run in it. The one place the organization widens triage's reads (a
    report's note and evidence stay its reporter's: the pages show only the reader's own Report)."""
    mine = Q(reporter=user) | Q(reports__reporter=user)
    organization = organization_of(user=user)
    return mine | Q(reports__check_run__organization=organization) if organization else mine


def investigation_get_for(*, user, pk: int) -> Investigation:
    """Support engineers see every investigation; a reporter only the ones they (or their organization)
    reported (404 otherwise)."""
    queryset = Investigation.objects.select_related("owner", "reporter", "duplicate_of")
    if not has_role(user, Role.SUPPORT, Role.MANAGER):
        queryset = queryset.filter(pk__in=Investigation.objects.filter(reported_in_reach_of(user=user)).values("pk"))
    try:
        return queryset.get(pk=pk)
    except Investigation.DoesNotExist:
        raise Http404("No such investigation") from None


def reports_of(*, user) -> QuerySet[Investigation]:
    return Investigation.objects.filter(
        pk__in=Investigation.objects.filter(reported_in_reach_of(user=user)).values("pk")
    ).order_by("-created_at")


def filter_choices() -> dict:
    support = get_user_model().objects.filter(groups__name=Role.SUPPORT.value).order_by("username")
    return {
        "statuses": [("open", "Open (any)")] + list(Investigation.Status.choices),
        "severities": Severity.choices,
        "owners": support,
        "components": Component.objects.all(),
        "organizations": Organization.objects.all(),
        "sla_filters": list(SLA_FILTERS.items()),
        "sorts": [
            ("newest", "Newest"),
            ("oldest", "Oldest"),
            ("updated", "Recently updated"),
            ("severity", "Severity"),
        ],
    }


def _date_filters(queryset, filters: dict):
    """The dashboard's links: date ranges, overdue reviews, critical ones without an update for 24 h."""
    from datetime import timedelta

    from django.utils import timezone

    for key, lookup in (
        ("created_after", "created_at__date__gte"),
        ("created_before", "created_at__date__lte"),
        ("resolved_after", "resolved_at__date__gte"),
        ("resolved_before", "resolved_at__date__lte"),
    ):
        if value := query_values.day(filters.get(key)):
            queryset = queryset.filter(**{lookup: value})
    if filters.get("resolved") == "1":  # resolved at some point: what time to resolution counts
        queryset = queryset.filter(resolved_at__isnull=False)
    if filters.get("overdue") == "1":
        queryset = queryset.filter(status__in=Investigation.OPEN_STATUSES, next_review__lt=timezone.localdate())
    if filters.get("stale_critical") == "1":
        queryset = queryset.filter(
            status__in=Investigation.OPEN_STATUSES,
            severity=Severity.CRITICAL,
            updated_at__lt=timezone.now() - timedelta(hours=24),
        )
    return queryset


def finding_list(*, filters: dict, user=None) -> QuerySet[Finding]:
    """Findings (not investigations) matching the list's filters: the investigation filters narrow which
    investigations, `finding_status` which of their findings. Each row is one finding, so the dashboard's
    finding counts link here and the list shows exactly that many."""
    investigation_filters_only = {k: v for k, v in filters.items() if k not in ("finding_status", "sort")}
    investigations = investigation_list(filters=investigation_filters_only, user=user).order_by()
    findings = Finding.objects.filter(investigation__in=investigations.values("pk"))
    if finding_status := filters.get("finding_status"):
        findings = findings.filter(status__in=FINDING_OPEN if finding_status == "open" else [finding_status])
    return findings.select_related("investigation").order_by(
        "-investigation__created_at", "investigation_id", "position"
    )


FILTER_LABELS = {
    "status": "status",
    "severity": "severity",
    "owner": "owner",
    "component": "component",
    "organization": "organization",
    "finding_status": "finding verdict",
    "q": "search",
    "created_after": "created from",
    "created_before": "created to",
    "resolved_after": "resolved from",
    "resolved_before": "resolved to",
    "resolved": "resolved only",
    "overdue": "past their next review",
    "stale_critical": "critical without an update for 24 h",
    "sla": "SLA",
}


def filters_described(filters: dict) -> list[str]:
    """The filters that are on, in words ("severity: High"), for the line that tells a list's reader."""
    choices = {
        "status": {"open": "open", **dict(Investigation.Status.choices)},
        "severity": dict(Severity.choices),
        "finding_status": {"open": "open (reported or investigating)", **dict(Finding.Status.choices)},
        "sla": SLA_FILTERS,
    }
    described = []
    for name, value in filters.items():
        if name == "sort" or name not in FILTER_LABELS:
            continue
        if name in FILTER_FLAGS:
            described.append(FILTER_LABELS[name])
            continue
        if name == "component":
            value = Component.objects.filter(pk=value).values_list("name", flat=True).first() or value
        elif name == "organization":
            value = Organization.objects.filter(pk=value).values_list("name", flat=True).first() or value
        elif name == "owner" and value != "me":
            value = get_user_model().objects.filter(pk=value).values_list("username", flat=True).first() or value
        described.append(f"{FILTER_LABELS[name]}: {choices.get(name, {}).get(value, value)}")
    return described


def sla_q(which: str, now=None) -> Q:
    """breaching: open, a running goal breaches within 24 h; breached: a goal of the current cycle is breached
    (as of the last change) or its due time has passed."""
    now = now or timezone.now()
    if which == "breaching":
        return Q(status__in=Investigation.OPEN_STATUSES, sla_breached=False, sla_due_at__gt=now) & Q(
            sla_due_at__lte=now + timedelta(hours=24)
        )
    return Q(sla_breached=True) | Q(status__in=Investigation.OPEN_STATUSES, sla_due_at__lte=now)


def sla_owner_warnings(*, user) -> QuerySet[Investigation]:
    """The owner's open investigations past 75 % of a goal (warned) or breached: the top of their queue."""
    now = timezone.now()
    return (
        Investigation.objects.filter(owner=user, status__in=Investigation.OPEN_STATUSES)
        .filter(Q(sla_warn_at__lte=now) | sla_q("breached", now))
        .order_by("sla_due_at", "id")
    )


def sla_view(investigation: Investigation) -> list[dict] | None:
    """What the detail page says of each goal: met, breached, paused, or time left (None: no policy)."""
    state = sla.state_of(investigation)
    if state is None:
        return None
    now = timezone.now()
    rows = []
    for goal in (sla.RESPONSE, sla.RESOLUTION):
        clock = state.current(goal)
        if clock is None:
            continue
        if clock.breached_at:
            text = (
                f"breached {duration_words(now - clock.breached_at)} ago"
                if clock.ended_at is None
                else (f"breached: took {clock.elapsed_minutes} of {clock.goal_minutes} working minutes")
            )
            tone = "fail"
        elif clock.ended_at:
            text, tone = f"met: {clock.elapsed_minutes} of {clock.goal_minutes} working minutes", "pass"
        elif clock.paused:
            text, tone = f"paused while waiting on the reporter ({clock.left_minutes} working minutes left)", "skipped"
        else:
            text = f"{duration_words(timedelta(minutes=clock.left_minutes))} left, due {timezone.localtime(clock.due_at):%Y-%m-%d %H:%M}"
            tone = "warn" if clock.warn_at and clock.warn_at <= now else "pass"
        rows.append(
            {
                "goal": goal,
                "label": "First response" if goal == sla.RESPONSE else "Resolution",
                "cycle": clock.cycle,
                "text": text,
                "tone": tone,
                "goal_minutes": clock.goal_minutes,
            }
        )
    return rows


def duration_words(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not parts else []
    return " ".join(parts)
