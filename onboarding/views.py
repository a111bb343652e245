import base64
import threading
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling, push_url

from accounts.roles import Role, has_role, role_required
from hokusai_portal.handlers import waits_only_if
from hokusai_portal.htmx import HtmxHttpRequest
from organizations.selectors import membership_of

from . import environment as environment_reports
from . import health, selectors, services, signals, waiting
from .diagnosis import CAUSES
from .forms import ApiKeyForm, ConnectivityCheckForm, EnvironmentReportForm, RegistrationForm
from .keys import KeyFormatError

RUNS_PER_PAGE = 25
onboarding_role = role_required(Role.DEVELOPER, Role.SUPPORT)


@onboarding_role
def index(request: HttpRequest):
    state = selectors.onboarding_state(user=request.user)
    return redirect(f"onboarding:{state['current']}")


@onboarding_role
@require_http_methods(["GET", "POST"])
def key(request: HttpRequest):
    state = selectors.onboarding_state(user=request.user)
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        try:
            if form.is_valid():
                _, normalised = services.api_key_save(user=request.user, raw_key=form.cleaned_data["api_key"])
                for notice in normalised.notices:
                    messages.info(request, notice)
                messages.success(request, f"Saved your key {normalised.masked}. Next: run a connectivity check.")
                return redirect("onboarding:connectivity")
        except services.KeySubmissionRateLimited as error:
            form.add_error(None, str(error))
            response = render(request, "onboarding/key.html", {"form": form, **state, "current": "key"}, status=429)
            response["Retry-After"] = str(error.retry_after)
            return response
        except KeyFormatError as error:
            form.add_error("api_key", str(error))
        except services.EmailNotVerified as error:
            form.add_error(None, str(error))
            return render(request, "onboarding/key.html", {"form": form, **state, "current": "key"}, status=403)
    return render(request, "onboarding/key.html", {"form": form, **state, "current": "key"})


def _organization_owner(request: HttpRequest):
    """The organization's key pages: its owner only (a member 403, no organization 404)."""
    membership = membership_of(user=request.user)
    if membership is None:
        raise Http404("No organization")
    if not membership.is_owner:
        raise PermissionDenied
    return membership.organization


@onboarding_role
@require_http_methods(["GET", "POST"])
def organization_key(request: HttpRequest):
    """The owner saves, replaces or forgets the company's key; members run checks with it, never see it."""
    organization = _organization_owner(request)
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        try:
            if form.is_valid():
                _, normalised = services.organization_key_save(user=request.user, raw_key=form.cleaned_data["api_key"])
                for notice in normalised.notices:
                    messages.info(request, notice)
                messages.success(request, f"Saved {organization.name}'s key {normalised.masked}.")
                return redirect("onboarding:organization_key")
        except services.KeySubmissionRateLimited as error:
            form.add_error(None, str(error))
            status = 429
        except KeyFormatError as error:
            form.add_error("api_key", str(error))
        except services.EmailNotVerified as error:
            form.add_error(None, str(error))
            status = 403
    context = {
        "form": form,
        "organization": organization,
        "organization_key": selectors.organization_key_for(user=request.user),
    }
    return render(request, "onboarding/organization_key.html", context, status=status)


@onboarding_role
@require_POST
def organization_key_forget(request: HttpRequest):
    _organization_owner(request)
    if services.organization_key_forget(user=request.user):
        messages.success(request, "The organization's key was deleted from the portal.")
    return redirect("onboarding:organization_key")


@onboarding_role
@require_POST
def key_forget(request: HttpRequest):
    if services.api_key_forget(user=request.user):
        messages.success(request, "Your API key was deleted from the portal.")
    return redirect("onboarding:key")


@onboarding_role
@require_http_methods(["GET", "POST"])
def connectivity(request: HttpRequest):
    form = ConnectivityCheckForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():  # the submit: the wizard's state is read only to show the form
        try:
            run = services.connectivity_check_start(user=request.user, model_name=form.cleaned_data["model_name"])
        except services.NoApiKey:
            messages.info(request, "Save your API key first.")
            return redirect("onboarding:key")
        return _landed_on_check_page(request, run)
    state = selectors.onboarding_state(user=request.user)
    if state["api_key"] is None:
        messages.info(request, "Save your API key first.")
        return redirect("onboarding:key")
    form.initial = {"model_name": getattr(state["latest_run"], "model_name", "")}
    return render(request, "onboarding/connectivity.html", {"form": form, **state, "current": "connectivity"})


def _landed_on_check_page(request: HtmxHttpRequest, run) -> HttpResponse:
    """Where a form that starts a check lands: its page. The form is boosted (htmx posts it and swaps in the
    body): it is answered with the page itself, its URL pushed, one request instead of a redirect and a GET
    (a request's chain and its session, user and role queries: ~6 ms of web and database CPU per check,
    issue 27). Without JavaScript the form posts as usual and is redirected (a reload never submits twice)."""
    if request.htmx.boosted:
        # The run its owner just started: no need to read it back to know they may see it.
        page = _check_run_render(request, run, long_poll=True, steps=[])  # and it has no steps yet
        return push_url(page, reverse("onboarding:check_run", args=[run.pk]))
    return redirect("onboarding:check_run", run_id=run.pk)


# The sync path (WEB_SERVER=wsgi): long polls held at once per web process, each holding a thread. Past
# this, a page polls every 500 ms. The ASGI path (the default) waits on a notification, holding no thread.
LONG_POLL_SLOTS = threading.BoundedSemaphore(settings.CHECK_LONG_POLL_SLOTS)
LONG_POLL_SECONDS = 20
# An ASGI wait holds no thread: it may last longer (under the 60 s a proxy commonly allows an idle answer),
# so 1,000 pages re-ask ~20 times a second, not 50.
ASGI_LONG_POLL_SECONDS = 45
check_run_roles = (Role.DEVELOPER, Role.SUPPORT, Role.MANAGER)  # read-only for others: the forms are the owner's


def _waits(request: HttpRequest) -> bool:
    """Whether a request for the check page may wait: its htmx long poll (read before any middleware)."""
    return request.headers.get("HX-Request") == "true" and "seen" in request.GET


def check_run_now(request: HtmxHttpRequest, run_id: int):
    """The check page answered at once: the page itself, a partial without `seen` (hokusai_portal/handlers.py
    answers these through the sync chain: no thread hops)."""
    return _check_run_page(request, run_id, long_poll=True)


async def check_run_watch(request: HttpRequest, run_id: int) -> HttpResponse | None:
    """The long poll under the portal's ASGI handler (hokusai_portal/handlers.py), on the event loop before any
    middleware: with the token its page's render signed (waiting.watch_token: this session may watch this
    run), it waits for the run to change; 204 when the wait runs out with nothing new. None: the sync chain
    answers (check_run_now, authorising as any request), once the run changed or at once when the token does
    not hold (a page of the version before, a hand-written URL, another run, another session), with a render
    whose poll carries a fresh token."""
    if not waiting.watch_token_valid(request, run_id):
        return None
    return await _wait_on_loop(request, run_id, request.GET.get("seen", "")[:60])


async def _wait_on_loop(request: HttpRequest, run_id: int, seen: str) -> HttpResponse | None:
    """The wait on the run's change notification: 204 when it runs out with nothing new, None once changed."""
    async with waiting.watching(run_id) as watcher:
        state = await watcher.changed(seen=seen, timeout=ASGI_LONG_POLL_SECONDS)
        if state == seen:
            return HttpResponse(status=204)  # nothing new: the page asks again (portal.js)
        await _steps_together(watcher, state, rendered_at=request.GET.get("at"))
    return None


@waits_only_if(_waits, otherwise=check_run_now, before_chain=check_run_watch)
async def check_run(request: HtmxHttpRequest, run_id: int):
    """A check's page. Its htmx partial is long-polled: `?seen=<state>` is answered as soon as the run's
    state differs (a step saved, the verdict), or with 204 when the wait runs out with nothing new (nothing
    rendered; static/js/portal.js asks again at once). Under ASGI the wait is an await on the run's change
    notification (onboarding/waiting.py), ASGI_LONG_POLL_SECONDS (the portal's handler waits in
    check_run_watch, before any middleware; this view waits under other ASGI handlers); under WSGI it holds a
    thread, one of CHECK_LONG_POLL_SLOTS, for LONG_POLL_SECONDS, and with none free it answers at once and the page polls
    every 500 ms. With JavaScript off the page refreshes itself until the verdict; a plain reload shows the
    same."""
    long_poll = True
    seen = request.GET.get("seen") if request.htmx else None
    if seen is not None and await sync_to_async(_check_run_waitable)(request, run_id):
        seen = seen[:60]
        if isinstance(request, ASGIRequest):
            if (unchanged := await _wait_on_loop(request, run_id, seen)) is not None:
                return unchanged
        else:
            state = await sync_to_async(_check_run_wait_in_thread)(run_id, seen)
            long_poll = state is not None
            if state == seen:
                return HttpResponse(status=204)
    return await sync_to_async(_check_run_page)(request, run_id, long_poll=long_poll)


async def _steps_together(watcher: waiting.Watcher, state: str, *, rendered_at: str | None) -> None:
    """Steps saved in quick succession reach a watching page in one render, not one each: a running check's
    page is answered no sooner than CHECK_STEP_RENDER_MS after the render it asks from (`at`, the epoch ms
    of that render). The verdict is not held back: it ends the pause as soon as it is saved. Each render a
    page does not need is ~15 ms of web CPU; on a loaded machine, where steps come ~150 ms apart, pages were
    rendered once a step (issue 27)."""
    interval = settings.CHECK_STEP_RENDER_MS / 1000
    try:
        deadline = int((rendered_at or "")[:16]) / 1000 + interval  # 16 digits: a float, never an OverflowError
    except ValueError:
        return  # no render to pace from (a page of an older version, a hand-written URL): answer now
    while not selectors.check_run_state_is_final(state):
        left = min(deadline - time.time(), interval)  # `at` comes from the client: never more than one interval
        if left <= 0:
            return
        state = await watcher.changed(seen=state, timeout=left)


def _check_run_waitable(request: HttpRequest, run_id: int) -> bool:
    """Only a visitor who may see the run waits on it (anyone else is answered by _check_run_page)."""
    if not request.user.is_authenticated or not has_role(request.user, *check_run_roles):
        return False
    return not selectors.check_run_get_for(user=request.user, run_id=run_id).is_finished


def _check_run_wait_in_thread(run_id: int, seen: str) -> str | None:
    """The state after the wait; None when every slot is taken (answer now, the page polls in 500 ms)."""
    if not LONG_POLL_SLOTS.acquire(blocking=False):
        return None
    try:
        return selectors.check_run_wait(run_id=run_id, seen=seen, timeout=LONG_POLL_SECONDS)
    finally:
        LONG_POLL_SLOTS.release()


@role_required(*check_run_roles)
def _check_run_page(request: HtmxHttpRequest, run_id: int, *, long_poll: bool):
    run = selectors.check_run_get_for(user=request.user, run_id=run_id)
    return _check_run_render(request, run, long_poll=long_poll)


def _check_run_render(request: HtmxHttpRequest, run, *, long_poll: bool, steps: list | None = None):
    """The check page (or its partial) of a run the visitor may see (`steps`: when known without reading them;
    a step saved meanwhile makes the next long poll answer at once, as the page's state token says none)."""
    steps = list(run.steps.all()) if steps is None else steps
    context = {
        "run": run,
        "steps": steps,
        # The token of exactly what is shown: anything saved since differs from it, so the next long
        # poll returns at once instead of missing it.
        "state": selectors.check_run_state_of(run=run, steps=steps),
        "long_poll": long_poll,
        "rendered_at": int(time.time() * 1000),  # the next long poll's `at` (_steps_together)
        # The next long poll's `w`: it may wait before any middleware (check_run_watch).
        "watch": waiting.watch_token(request, run.pk),
        "announcement": selectors.check_run_announcement(run=run, steps=steps),
        "queued_ahead": selectors.check_run_queued_ahead(run=run) if run.status == run.Status.QUEUED else 0,
        "run_cause": CAUSES.get(run.cause, ("", "")),
        **selectors.registration_result(run=run),
        # Offered for attaching to a problem report: only on the final state of the owner's failed run.
        "latest_environment": (
            selectors.environment_reports_for(user=request.user).first()
            if run.user_id == request.user.pk and run.status in run.UNSUCCESSFUL
            else None
        ),
    }
    # From the apps above: a known issue the failure matches (triage), a degraded component (status).
    partial = bool(request.htmx) and not request.htmx.boosted  # boosted: a form that lands here (the whole page)
    context["partial"] = partial  # the partial also announces the new state (an out-of-band swap)
    context |= signals.check_page_context_for(run=run, user=request.user, full_page=not partial)
    if partial:
        response = render(request, "onboarding/check_run.html#run", context)
        if run.is_finished:  # 286: htmx stops polling (and still swaps in the final state)
            response.status_code = HttpResponseStopPolling.status_code
        return response
    wizard = selectors.wizard_of(user=request.user)
    current = "registration" if run.kind == run.Kind.REGISTRATION else "connectivity"
    if current == "registration" and run.status == run.Status.PASSED:
        current = "done"
    return render(request, "onboarding/check_run.html", {**wizard, **context, "current": current})


@onboarding_role
@require_POST
def check_run_retry(request: HttpRequest, run_id: int):
    run = selectors.check_run_owned_by(user=request.user, run_id=run_id)
    try:
        new_run = services.check_run_retry(run=run)
    except services.NoApiKey:
        messages.error(request, "Save your API key first.")
        return redirect("onboarding:key")
    return _landed_on_check_page(request, new_run)


@role_required(Role.DEVELOPER, Role.SUPPORT, Role.MANAGER)  # managers follow the dashboard's cause counts here
def history(request: HttpRequest):
    runs = selectors.check_run_list_for(user=request.user)
    filters = selectors.history_filters(request.GET)
    runs = selectors.check_runs_filtered(runs, filters)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "onboarding/history.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            # who ran each: for staff, and for a member reading their organization's runs
            "show_user": has_role(request.user, Role.SUPPORT, Role.MANAGER)
            or membership_of(user=request.user) is not None,
        },
    )


@onboarding_role
@require_http_methods(["GET", "POST"])
def registration(request: HttpRequest):
    state = selectors.onboarding_state(user=request.user)
    if not state["connectivity_passed"]:
        messages.info(request, "Registration opens once a connectivity check has passed.")
        return redirect("onboarding:connectivity" if state["api_key"] else "onboarding:key")
    form = RegistrationForm(
        request.POST if request.method == "POST" else None, initial=selectors.registration_initial(user=request.user)
    )
    if request.method == "POST" and form.is_valid():
        for warning in form.registration_request.warnings:
            messages.warning(request, warning)
        registration = services.registration_start(user=request.user, request=form.registration_request)
        return redirect("onboarding:check_run", run_id=registration.check_run_id)
    return render(request, "onboarding/registration.html", {**state, "form": form, "current": "registration"})


@onboarding_role
def run_picker(request: HtmxHttpRequest):
    """The runs the saved key can see, to pick from instead of typing a run id (a partial for htmx)."""
    page = services.run_picker_page(
        user=request.user, query=request.GET.get("q", ""), page_token=request.GET.get("page_token", "")
    )
    template = "onboarding/run_picker.html#picker" if request.htmx else "onboarding/run_picker.html"
    return render(request, template, {"picker": page})


@onboarding_role
def done(request: HttpRequest):
    """The wizard's last step: what was registered, how to reproduce it, what to do next."""
    state = selectors.onboarding_state(user=request.user)
    if not state["registered"]:
        return redirect(f"onboarding:{state['current']}")
    registrations = selectors.registrations_done(user=request.user)
    latest = registrations.first()
    context = {
        **state,
        "current": "done",
        "latest": latest,
        "snippet": selectors.registration_snippet(registration=latest),
        "earlier": registrations[1:11],
    }
    return render(request, "onboarding/done.html", context)


@onboarding_role
def registered_version(request: HttpRequest, registration_id: int):
    """A registered version read back live from the registry with the owner's key."""
    registration = selectors.registration_owned_by(user=request.user, registration_id=registration_id)
    read = services.registered_version_read(registration=registration)
    state = selectors.onboarding_state(user=request.user)
    keys = list(read.tags) + [key for key in registration.tags if key not in read.tags]
    tag_rows = [(key, read.tags.get(key), registration.tags.get(key)) for key in keys]
    context = {**state, "current": "done", "registration": registration, "read": read, "tag_rows": tag_rows}
    return render(request, "onboarding/registered_version.html", context)


@require_http_methods(["GET", "HEAD"])
def doctor_script(request: HttpRequest):
    """The environment doctor, for download: public (a `curl` in a terminal has no session), and exactly the
    bytes `manage.py doctor_script` prints, with their sha256 in the page and in Repr-Digest."""
    script = environment_reports.doctor_script()
    response = HttpResponse(script.content, content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{script.filename}"'
    response["ETag"] = f'"{script.sha256}"'
    response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(script.sha256)).decode()}:"
    response["Cache-Control"] = "no-cache"  # the SDK build it expects can change with the portal's settings
    return response


@onboarding_role
@require_http_methods(["GET", "POST"])
def environment(request: HttpRequest):
    """The optional "Your environment" step: download the doctor, paste or upload its report."""
    state = selectors.onboarding_state(user=request.user)
    form = EnvironmentReportForm(
        request.POST if request.method == "POST" else None, request.FILES if request.method == "POST" else None
    )
    if request.method == "POST" and form.is_valid():
        try:
            text = environment_reports.report_text_from(
                pasted=form.cleaned_data["report"], upload=form.cleaned_data["report_file"]
            )
            report = environment_reports.environment_report_save(user=request.user, text=text)
        except environment_reports.ReportInvalid as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Read your environment report #{report.pk}.")
            return redirect("onboarding:environment_report", report_id=report.pk)
    reports = (
        selectors.environment_reports_for(user=request.user)
        .annotate(
            failed=Count("checks", filter=Q(checks__status="fail")),
            warned=Count("checks", filter=Q(checks__status="warn")),
        )
        .order_by("-created_at", "-id")
    )
    script = environment_reports.doctor_script()
    context = {
        **state,
        "current": "environment",
        "form": form,
        "script": script,
        "script_kib": round(len(script.content) / 1024, 1),
        "download_url": request.build_absolute_uri(reverse("onboarding:doctor_script")),
        "page": Paginator(reports, 10).get_page(request.GET.get("page")),
    }
    return render(request, "onboarding/environment.html", context)


@role_required(Role.DEVELOPER, Role.SUPPORT, Role.MANAGER)  # its author, and staff reading it as evidence
def environment_report(request: HttpRequest, report_id: int):
    report = selectors.environment_report_visible_to(user=request.user, report_id=report_id)
    own = report.user_id == request.user.pk
    state = selectors.onboarding_state(user=request.user) if own else {}
    checks = list(report.checks.all())
    saved = state["api_key"] if own else None
    return render(
        request,
        "onboarding/environment_report.html",
        {
            **state,
            "current": "environment",
            "report": report,
            "checks": checks,
            "failed": sum(c.status == "fail" for c in checks),
            "warned": sum(c.status == "warn" for c in checks),
            "saved_key": saved,
            "own": own,
        },
    )


@never_cache
@require_GET
def healthz(request: HttpRequest):
    report = health.health_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)
