"""Triage reads: lists with filters, ownership checks in one place."""

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.roles import Role, has_role

from .models import Component, Investigation, Severity

SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "updated": ("-updated_at", "-id"),
    "severity": ("severity_rank", "-created_at", "-id"),
}
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


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
        queryset = queryset.filter(components__id=component)
    queryset = _date_filters(queryset, filters)
    if finding_status := filters.get("finding_status"):
        queryset = queryset.filter(findings__status=finding_status).distinct()
    if text := (filters.get("q") or "").strip():
        query = Q(title__icontains=text) | Q(summary__icontains=text)
        if text.upper().startswith("INV-") and text[4:].isdigit():
            query |= Q(pk=int(text[4:]))
        queryset = queryset.filter(query)
    sort = SORTS.get(filters.get("sort") or "newest", SORTS["newest"])
    if sort[0] == "severity_rank":
        queryset = queryset.annotate(
            severity_rank=Case(
                *(When(severity=s, then=Value(r)) for s, r in SEVERITY_RANK.items()), output_field=IntegerField()
            )
        )
    return queryset.order_by(*sort)


def investigation_get_for(*, user, pk: int) -> Investigation:
    """Support engineers see every investigation; a reporter only the ones they reported (404 otherwise)."""
    queryset = Investigation.objects.select_related("owner", "reporter", "duplicate_of")
    if not has_role(user, Role.SUPPORT, Role.MANAGER):
        queryset = queryset.filter(Q(reporter=user) | Q(reports__reporter=user)).distinct()
    try:
        return queryset.get(pk=pk)
    except Investigation.DoesNotExist:
        raise Http404("No such investigation") from None


def reports_of(*, user) -> QuerySet[Investigation]:
    return Investigation.objects.filter(Q(reporter=user) | Q(reports__reporter=user)).distinct().order_by("-created_at")


def filter_choices() -> dict:
    support = get_user_model().objects.filter(groups__name=Role.SUPPORT.value).order_by("username")
    return {
        "statuses": [("open", "Open (any)")] + list(Investigation.Status.choices),
        "severities": Severity.choices,
        "owners": support,
        "components": Component.objects.all(),
        "sorts": [
            ("newest", "Newest"),
            ("oldest", "Oldest"),
            ("updated", "Recently updated"),
            ("severity", "Severity"),
        ],
    }


def _parse_date(value):
    from datetime import date

    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None  # a bad date in a URL is ignored, never a 500


def _date_filters(queryset, filters: dict):
    """The dashboard's links: date ranges, overdue reviews, critical ones without an update for 24 h."""
    from datetime import timedelta

    from django.utils import timezone

    for key, lookup in (
        ("created_after", "created_at__date__gte"), ("created_before", "created_at__date__lte"),
        ("resolved_after", "resolved_at__date__gte"), ("resolved_before", "resolved_at__date__lte"),
    ):  # fmt: skip
        if value := _parse_date(filters.get(key)):
            queryset = queryset.filter(**{lookup: value})
    if filters.get("overdue") == "1":
        queryset = queryset.filter(status__in=Investigation.OPEN_STATUSES, next_review__lt=timezone.localdate())
    if filters.get("stale_critical") == "1":
        queryset = queryset.filter(
            status__in=Investigation.OPEN_STATUSES,
            severity=Severity.CRITICAL,
            updated_at__lt=timezone.now() - timedelta(hours=24),
        )
    return queryset
