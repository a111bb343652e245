import csv
import hmac
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Prefetch
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.roles import Role, has_role, role_required
from triage.models import Component, Report, Severity
from triage.selectors import investigation_filters, investigation_list

from .charts import funnel_svg, weekly_bars_svg
from .selectors import DashboardFilters, dashboard_numbers, deflection, sla_attainment, status_summary

dashboard_role = role_required(Role.MANAGER, Role.SUPPORT)


@dashboard_role
def index(request: HttpRequest):
    filters = DashboardFilters.from_query(request.GET)
    numbers = dashboard_numbers(filters, organizations_page=request.GET.get("org_page"))
    base = filters.as_list_query()
    for week in numbers["trend"]:  # each bar's numbers link to the investigations they count
        last_day = week["week"] + timedelta(days=6)
        created_after = max(week["week"], filters.start) if filters.start else week["week"]
        created_before = min(last_day, filters.end) if filters.end else last_day
        week["created_query"] = urlencode(
            {**base, "created_after": created_after.isoformat(), "created_before": created_before.isoformat()}
        )
        week["resolved_query"] = urlencode(
            {**base, "resolved_after": week["week"].isoformat(), "resolved_before": last_day.isoformat()}
        )
    context = {
        **numbers,
        "filters": filters,
        "severities": Severity.choices,
        "components": Component.objects.all(),
        "list_query": urlencode(base),
        "list_url": reverse("triage:index"),
        "findings_url": reverse("triage:findings"),
        "history_url": reverse("onboarding:history"),  # reversed once: the page links some 40 numbers to it
        "trend_svg": weekly_bars_svg(numbers["trend"]),
        "funnel_svg": funnel_svg(numbers["funnel"]["steps"]),
        "csv_query": request.GET.urlencode(),
        # the organizations' pages keep the dashboard's filters
        "org_query": urlencode([(k, v) for k, v in request.GET.items() if k != "org_page"]),
        "sla": sla_attainment(),
        "deflection": deflection(),
    }
    return render(request, "dashboard/index.html", context)


class _Echo:
    def write(self, value):
        return value


@dashboard_role
@require_GET
def investigations_csv(request: HttpRequest):
    """The investigations the dashboard's filters select, streamed (no size limit in memory)."""
    filters = DashboardFilters.from_query(request.GET)
    rows = investigation_list(
        filters={
            **filters.as_list_query(),
            **{k: v for k, v in request.GET.items() if k in ("status", "q")},
            **{k: v for k, v in investigation_filters(request.GET).items() if k == "organization"},
        }
    )
    writer = csv.writer(_Echo())
    header = [
        "number",
        "title",
        "severity",
        "status",
        "resolution",
        "owner",
        "created_at",
        "resolved_at",
        "next_review",
        "organizations",  # the reporters' organizations (the customers affected), by name
    ]
    reports = Prefetch("reports", queryset=Report.objects.select_related("check_run__organization"))

    def stream():
        yield writer.writerow(header)
        for inv in rows.select_related("owner").prefetch_related(reports).iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    inv.number,
                    inv.title,
                    inv.severity,
                    inv.status,
                    inv.resolution,
                    inv.owner.get_username() if inv.owner else inv.owner_label,
                    inv.created_at.isoformat(),
                    inv.resolved_at.isoformat() if inv.resolved_at else "",
                    inv.next_review.isoformat() if inv.next_review else "",
                    "; ".join(
                        sorted(
                            {
                                r.check_run.organization.name
                                for r in inv.reports.all()
                                if r.check_run and r.check_run.organization
                            }
                        )
                    ),
                ]
            )

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="investigations.csv"'
    return response


def _token_ok(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a header of "Bearer é" was a 500).
    presented = token.strip().encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(presented, allowed.encode()) for allowed in settings.STATUS_API_TOKENS)


@never_cache
@require_GET
def api_status(request: HttpRequest):
    """Headline numbers for other tools. Session (manager or support) or `Authorization: Bearer <token>`."""
    if not _token_ok(request):
        if not request.user.is_authenticated:
            return JsonResponse(
                {"error": "authentication required (session, or Authorization: Bearer <token>)"}, status=401
            )
        if not has_role(request.user, Role.MANAGER, Role.SUPPORT):
            return JsonResponse({"error": "managers and support engineers only"}, status=403)
    return JsonResponse(status_summary(DashboardFilters.from_query(request.GET)))
