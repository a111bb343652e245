from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import Role, has_role, role_required
from hokusai_portal.htmx import HtmxHttpRequest
from onboarding import environment as environment_reports
from onboarding import selectors as onboarding_selectors
from onboarding.forms import ProblemEnvironmentForm

from . import reports, selectors, services
from .forms import CommentForm, FindingStatusForm, ImportForm, InvestigationForm, TransitionForm
from .markdown_io import PlanError, export_plan
from .models import ActionItem, Finding, Investigation, Report

PER_PAGE = 50
TIMELINE_PER_PAGE = 50


class CountedPaginator(Paginator):
    """Counts without the list's ORDER BY, and a search at most `cap` + 1 matches: a search that
    matches 16,000 investigations is not worth counting exactly (20 ms of rechecking text at 100k),
    and its later pages are better reached by narrowing it."""

    def __init__(self, object_list, per_page, *, cap: int | None = None):
        super().__init__(object_list, per_page)
        self.cap, self.capped = cap, False

    @cached_property
    def count(self) -> int:
        if self.cap is None:
            return self.object_list.order_by().count()
        found = self.object_list.order_by()[: self.cap + 1].count()
        self.capped = found > self.cap
        return min(found, self.cap)


support_only = role_required(Role.SUPPORT)
# Managers read the lists and investigations the dashboard links to; only support engineers change them.
staff_read = role_required(Role.SUPPORT, Role.MANAGER)


def _tell_redactions(request, redactions) -> None:
    if redactions.count:
        messages.warning(request, redactions.message)


@staff_read
def index(request: HtmxHttpRequest, queue: bool = False):
    filters = selectors.investigation_filters(request.GET)
    if queue:
        filters.update(owner="me", status=filters.get("status") or "open")
    investigations = selectors.investigation_list(filters=filters, user=request.user)
    # Page over ids only (an index walk even on a deep page), then load just that page's rows.
    paginator = CountedPaginator(
        investigations.values_list("pk", flat=True),
        PER_PAGE,
        cap=selectors.SEARCH_COUNT_CAP if (filters.get("q") or "").strip() else None,
    )
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = selectors.list_rows(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "page_summary": (
            f"more than {paginator.count} investigations match: narrow the search to see them all"
            if paginator.capped
            else f"{paginator.count} investigations"
        ),
        "filters": filters,
        "filters_on": selectors.filters_described(filters),
        "query": query.urlencode(),
        "queue": queue,
        "detail_prefix": reverse("triage:detail", args=[0]).removesuffix("0/"),  # one reverse(), not two a row
        **selectors.filter_choices(),
        # The owner's SLA warnings (75 % of a goal, or breached) head their queue.
        "sla_warnings": list(selectors.sla_owner_warnings(user=request.user)[:20]) if queue else [],
        "now": timezone.now(),
    }
    template = "triage/index.html#results" if request.htmx else "triage/index.html"
    return render(request, template, context)


@staff_read
def findings(request: HttpRequest):
    """Findings across investigations, one row each: where the dashboard's finding numbers lead."""
    filters = selectors.investigation_filters(request.GET)
    paginator = Paginator(selectors.finding_list(filters=filters, user=request.user), PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "query": query.urlencode(),
        "filters_on": selectors.filters_described(filters),
        "page_summary": f"{paginator.count} finding{'s' if paginator.count != 1 else ''}",
    }
    return render(request, "triage/findings.html", context)


@support_only
def queue(request: HttpRequest):
    return index(request, queue=True)


@support_only
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest):
    form = InvestigationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if not k.startswith("env_") and k != "components"}
        data["environment"] = form.environment()
        investigation, redactions = services.investigation_create(
            actor=request.user, data=data, component_names=[c.name for c in form.cleaned_data["components"]]
        )
        _tell_redactions(request, redactions)
        messages.success(request, f"{investigation.number} created.")
        return redirect("triage:detail", pk=investigation.pk)
    return render(request, "triage/form.html", {"form": form})


@support_only
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, pk: int):
    investigation = get_object_or_404(Investigation, pk=pk)
    form = InvestigationForm(
        request.POST if request.method == "POST" else None, instance=Investigation.objects.get(pk=pk)
    )
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if not k.startswith("env_") and k != "components"}
        data["environment"] = form.environment()
        redactions = services.investigation_update(investigation=investigation, actor=request.user, **data)
        services.investigation_set_components(
            investigation=investigation, actor=request.user, components=form.cleaned_data["components"]
        )
        _tell_redactions(request, redactions)
        messages.success(request, f"{investigation.number} saved.")
        return redirect("triage:detail", pk=pk)
    return render(request, "triage/form.html", {"form": form, "investigation": investigation})


def _detail_context(request, investigation) -> dict:
    support = has_role(request.user, Role.SUPPORT)
    staff = has_role(request.user, Role.SUPPORT, Role.MANAGER)
    timeline = investigation.timeline.select_related("actor")
    if not staff:
        timeline = timeline.filter(internal=False)
    # The latest events first, a page at a time (a long-running investigation gathers hundreds), each
    # page shown in time order.
    timeline_page = Paginator(timeline.order_by("-created_at", "-id"), TIMELINE_PER_PAGE).get_page(
        request.GET.get("timeline")
    )
    return {
        "investigation": investigation,
        "findings": investigation.findings.all(),
        "action_items": investigation.action_items.select_related("assignee"),
        "timeline": list(reversed(timeline_page.object_list)),
        "timeline_page": timeline_page,
        "support": support,
        "staff": staff,
        "transition_form": TransitionForm(
            initial={
                "status": investigation.status,
                "resolution": investigation.resolution,
                "duplicate_of": investigation.duplicate_of.number if investigation.duplicate_of else "",
            }
        ),
        "comment_form": CommentForm(),
        "finding_statuses": Finding.Status.choices,
        # Staff read every report; a developer reads only their own (their note, check and evidence).
        "reports": investigation.reports.select_related(
            "reporter", "check_run", "check_run__organization", "doctor_report"
        ).prefetch_related("doctor_report__checks")
        if staff
        else [],
        "my_report": None
        if staff
        else investigation.reports.filter(reporter=request.user).select_related("doctor_report").first(),
        "affected_count": investigation.reports.count(),
        "affected_organizations": investigation.reports.filter(check_run__organization__isnull=False)
        .values("check_run__organization")
        .distinct()
        .count(),
        "sla_rows": selectors.sla_view(investigation) if staff else None,
    }


@role_required(Role.SUPPORT, Role.MANAGER, Role.DEVELOPER)
def detail(request: HttpRequest, pk: int):
    investigation = selectors.investigation_get_for(user=request.user, pk=pk)
    return render(request, "triage/detail.html", _detail_context(request, investigation))


@support_only
@require_POST
def awaiting(request: HttpRequest, pk: int):
    """Waiting on the reporter (the SLA clocks pause), or no longer."""
    investigation = get_object_or_404(Investigation, pk=pk)
    wanted = request.POST.get("awaiting") == "1"
    try:
        if services.investigation_set_awaiting(investigation=investigation, actor=request.user, awaiting=wanted):
            messages.success(
                request,
                "Waiting on the reporter: the SLA clocks are paused."
                if wanted
                else "No longer waiting on the reporter: the SLA clocks run again.",
            )
    except services.TransitionError as error:
        messages.error(request, str(error))
    return redirect("triage:detail", pk=pk)


@support_only
@require_POST
def transition(request: HttpRequest, pk: int):
    investigation = get_object_or_404(Investigation, pk=pk)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("triage:detail", pk=pk)
    had_owner = investigation.owner_id is not None
    try:
        services.investigation_transition(
            investigation=investigation,
            actor=request.user,
            status=form.cleaned_data["status"],
            resolution=form.cleaned_data["resolution"],
            duplicate_of=form.cleaned_data["duplicate_of"],
        )
        messages.success(
            request,
            f"{investigation.number} is now {investigation.get_status_display()}"
            + (f" ({investigation.get_resolution_display()})" if investigation.resolution else "")
            + ("; you are its owner now." if not had_owner and investigation.owner_id else "."),
        )
    except services.TransitionError as error:
        messages.error(request, str(error))
    return redirect("triage:detail", pk=pk)


@support_only
@require_POST
def finding_status(request: HtmxHttpRequest, pk: int):
    finding = get_object_or_404(Finding.objects.select_related("investigation"), pk=pk)
    form = FindingStatusForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.finding_set_status(
                finding=finding,
                actor=request.user,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
                root_cause=form.cleaned_data["root_cause"],
            )
        except services.TransitionError as exc:
            error = str(exc)
    else:
        error = "Pick a status."
    finding.refresh_from_db()
    if request.htmx:
        response = render(
            request,
            "triage/detail.html#finding",
            {
                "finding": finding,
                "finding_error": error,
                "finding_statuses": Finding.Status.choices,
                "support": True,
                "staff": True,
            },
        )
        return response
    if error:
        messages.error(request, error)
    return redirect("triage:detail", pk=finding.investigation_id)


@support_only
@require_POST
def action_toggle(request: HtmxHttpRequest, pk: int):
    item = get_object_or_404(ActionItem.objects.select_related("investigation"), pk=pk)
    services.action_item_toggle(item=item, actor=request.user)
    if request.htmx:
        return render(request, "triage/detail.html#action_item", {"item": item, "support": True})
    return redirect("triage:detail", pk=item.investigation_id)


@support_only
@require_POST
def comment(request: HttpRequest, pk: int):
    investigation = get_object_or_404(Investigation, pk=pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            _, redactions = services.comment_add(
                investigation=investigation,
                actor=request.user,
                body=form.cleaned_data["body"],
                internal=form.internal,
            )
            _tell_redactions(request, redactions)
            messages.success(
                request,
                "Internal note added (support and managers only)."
                if form.internal
                else "Reply sent: the reporters see it.",
            )
        except ValueError as error:
            messages.error(request, str(error))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect(reverse("triage:detail", args=[pk]) + "#timeline")


def _shortened_message(shortened: list[str]) -> str:
    named = "; ".join(shortened[:5]) + (f"; and {len(shortened) - 5} more" if len(shortened) > 5 else "")
    return f"{len(shortened)} value{'s were' if len(shortened) != 1 else ' was'} too long and shortened: {named}."


@support_only
@require_http_methods(["GET", "POST"])
def import_plan(request: HttpRequest):
    existing = None
    form = ImportForm(request.POST if request.method == "POST" else None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            investigation, redactions, plan = services.investigation_import(
                actor=request.user, raw=form.cleaned_data["raw"], again=form.cleaned_data["again"]
            )
        except services.AlreadyImported as error:
            form.add_error(None, str(error))
            existing = error.existing
        except PlanError as error:
            form.add_error(None, str(error))
        else:
            _tell_redactions(request, redactions)
            if plan.shortened:
                messages.warning(request, _shortened_message(plan.shortened))
            messages.success(
                request,
                f"Imported {investigation.number}: {len(plan.findings)} findings, {len(plan.action_items)} action items"
                + (f", {len(plan.notes)} sections kept as notes" if plan.notes else "")
                + ".",
            )
            return redirect("triage:detail", pk=investigation.pk)
    return render(request, "triage/import.html", {"form": form, "existing": existing})


@support_only
def export(request: HttpRequest, pk: int):
    investigation = get_object_or_404(Investigation, pk=pk)
    response = HttpResponse(
        export_plan(services.investigation_plan(investigation)), content_type="text/markdown; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{investigation.number}.md"'
    return response


@role_required(Role.DEVELOPER, Role.SUPPORT)
def my_reports(request: HttpRequest):
    page = Paginator(selectors.reports_of(user=request.user), PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "triage/my_reports.html", {"page": page})


@support_only
@require_POST
def rerun(request: HttpRequest, pk: int):
    report = get_object_or_404(Report.objects.select_related("investigation", "reporter", "check_run"), pk=pk)
    try:
        run = reports.problem_report_rerun(report=report, actor=request.user)
    except reports.ReportError as error:
        messages.error(request, str(error))
        return redirect("triage:detail", pk=report.investigation_id)
    messages.success(request, f"Re-running the check for {report.reporter.get_username()}.")
    return redirect("onboarding:check_run", run_id=run.pk)


@role_required(Role.DEVELOPER, Role.SUPPORT)
@require_POST
def report_problem(request: HttpRequest, run_id: int):
    """'Tell Hokusai support' from a failed check's page (onboarding's template posts here: the report is triage's)."""
    run = onboarding_selectors.check_run_owned_by(user=request.user, run_id=run_id)
    form = ProblemEnvironmentForm(request.POST, request.FILES, user=request.user)
    try:
        with transaction.atomic():  # a refused environment report refuses the whole problem report
            environment_report = _problem_environment(request, form)
            investigation, created = reports.problem_report(
                run=run,
                reporter=request.user,
                consent_rerun=request.POST.get("consent_rerun") == "on",
                note=request.POST.get("note", "")[:5000],
                doctor_report=environment_report,
            )
    except (reports.ReportError, environment_reports.ReportInvalid) as error:
        messages.error(request, f"Nothing was sent: {error}")
        return redirect("onboarding:check_run", run_id=run_id)
    if created:
        messages.success(
            request, f"Reported as {investigation.number}. Support will look at it; follow it under My reports."
        )
    else:
        messages.success(request, f"Others hit this too: your report was added to {investigation.number}.")
    return redirect("triage:detail", pk=investigation.pk)


def _problem_environment(request: HttpRequest, form: ProblemEnvironmentForm):
    """The environment report to attach to a problem report: a pasted or uploaded one (saved now), or one
    of the reporter's own saved reports, or none. Raises ReportInvalid."""
    if not form.is_valid():
        raise environment_reports.ReportInvalid(
            " ".join(message for errors in form.errors.values() for message in errors)
        )
    data = form.cleaned_data
    if (data["environment_text"] or "").strip() or data["environment_file"] is not None:
        text = environment_reports.report_text_from(pasted=data["environment_text"], upload=data["environment_file"])
        return environment_reports.environment_report_save(user=request.user, text=text)
    return data["attach_environment"]
