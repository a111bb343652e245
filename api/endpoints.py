"""The public API, `/api/v1/` (django-ninja): the same services and selectors as the pages, behind access
tokens (api/auth.py), every error a problem+json (RFC 9457) with a cause code. OpenAPI 3.1 at
/api/v1/openapi.json, readable docs at /api/v1/docs (Swagger UI from ninja's own static files: no CDN,
the Content-Security-Policy intact)."""

import asyncio
import threading
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, QueryDict
from django.urls import path, reverse
from django.views.generic import RedirectView
from ninja import NinjaAPI, Path, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.pagination import CursorPagination, paginate

from accounts.roles import Role, has_role
from dashboard.selectors import DashboardFilters, status_summary
from hokusai_portal import query as query_values
from hokusai_portal.problems import PROBLEM_JSON, problem_response
from onboarding import selectors as onboarding_selectors
from onboarding import services as onboarding_services
from onboarding import waiting
from onboarding.registration_input import RegistrationInputError, model_name_error, registration_validate
from triage import selectors as triage_selectors
from triage import services as triage_services
from triage.forms import TransitionForm
from triage.models import Investigation

from .auth import AccessTokenAuth, ApiProblem, require_scope
from .schemas import (
    CheckFilters,
    CheckIn,
    CheckOut,
    CheckStarted,
    CommentIn,
    CommentOut,
    DashboardFiltersIn,
    DashboardOut,
    InvestigationFilters,
    InvestigationOut,
    InvestigationRow,
    Problem,
    TransitionIn,
)

MAX_WAIT_SECONDS = 30
# On the sync path (WEB_SERVER=wsgi): long polls held at once per web process (each holds a thread), as many as
# the check page may hold; with none free the API answers at once and the client asks again. Under ASGI (the
# default) `?wait=` awaits the run's change notification as the check page does and holds no thread.
LONG_POLL_SLOTS = threading.BoundedSemaphore(settings.CHECK_LONG_POLL_SLOTS)
MAX_ID = 10**18 - 1  # an id any primary key can hold (and PostgreSQL compares without an error)


class PortalApi(NinjaAPI):
    """ninja's API, whose schema says what refusals really are: problem+json (RFC 9457), not plain JSON."""

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        for path_item in schema["paths"].values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    if int(status) >= 400 and "application/json" in response.get("content", {}):
                        response["content"] = {PROBLEM_JSON: response["content"].pop("application/json")}
        return schema

    def _get_urls(self):
        """ninja's root (/api/v1/) is a bare Django 404 page; here it sends a person to the docs."""
        docs = RedirectView.as_view(pattern_name=f"{self.urls_namespace}:openapi-view")
        return [
            path("", docs, name="api-root") if getattr(pattern, "name", "") == "api-root" else pattern
            for pattern in super()._get_urls()
        ]


api = PortalApi(
    title="Hokusai Portal API",
    version="1",
    description=(
        "Run the onboarding checks from CI, script the triage. Authenticate with "
        "`Authorization: Bearer hkp_…` (make a token at /account/tokens/); each operation names the scope it "
        "needs. Errors are `application/problem+json` (RFC 9457) with a stable `cause`."
    ),
    urls_namespace="api_v1",
    auth=AccessTokenAuth(),
)

REFUSALS = {
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    422: Problem,
    429: Problem,
}


# --- errors: every one a problem ----------------------------------------------------------------------------


@api.exception_handler(ApiProblem)
def _problem(request: HttpRequest, exc: ApiProblem):
    return problem_response(exc.status, exc.cause, exc.detail, headers=exc.headers, **exc.extra)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError):
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": error.get("type", ""),
        }
        for error in exc.errors
    ]
    return problem_response(
        422, "VALIDATION_FAILED", "Some fields are missing or not valid: see errors.", errors=errors
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError):
    return problem_response(401, "TOKEN_MISSING", "Send an access token: Authorization: Bearer hkp_…")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404):
    return problem_response(404, "NOT_FOUND", "No such object, or not one this token's user may see.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError):
    # ninja's own: a body that is not JSON ("Cannot parse request body"), a method not allowed, …
    cause = "REQUEST_MALFORMED" if exc.status_code == 400 else "REQUEST_REFUSED"
    return problem_response(exc.status_code, cause, str(exc))


class IdCursorPagination(CursorPagination):
    """ninja's cursor paging, newest first by id; a cursor whose position is not an id is a 422, not a 500."""

    def __init__(self, **kwargs):
        super().__init__(ordering=("-id",), page_size=25, max_page_size=100, **kwargs)

    def _find_position(self, queryset, cursor):
        if cursor.p is not None and query_values.object_id(cursor.p) is None:
            raise ValidationError([{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}])
        return super()._find_position(queryset, cursor)


def _absolute(request: HttpRequest, path: str) -> str:
    return request.build_absolute_uri(path)


def _query(filters) -> QueryDict:
    """A filter schema as the query string the pages' selectors read."""
    query = QueryDict(mutable=True)
    query.update({name: value for name, value in filters.dict().items() if value is not None})
    return query


# --- checks -------------------------------------------------------------------------------------------------


def _extra_tags_text(tags: dict[str, str]) -> str:
    """The registration form's `key=value` lines, from the API's object (a key that cannot be one line is refused)."""
    bad = [key for key, value in tags.items() if "=" in key or "\n" in key or "\n" in value or "\r" in key + value]
    if bad or any("\x00" in key + value for key, value in tags.items()):
        raise ApiProblem(
            422,
            "VALIDATION_FAILED",
            "A tag's key has no '=' or line break; its value no line break.",
            errors=[{"loc": ["body", "extra_tags"], "msg": "invalid tag", "type": "value_error"}],
        )
    return "\n".join(f"{key}={value}" for key, value in tags.items())


@api.post(
    "/checks",
    url_name="checks_start",
    response={202: CheckStarted, 409: Problem, **REFUSALS},
    summary="Start a connectivity check or a registration with your saved key",
)
def checks_start(request: HttpRequest, check: CheckIn):
    """Scope `checks:run` (connectivity) or `registrations:write` (registration). Answers 202 at once; read
    the verdict with `GET /checks/{id}?wait=30`. A registration opens once a connectivity check has passed, as
    on the page. 409 NO_API_KEY: save an API key in the portal first."""
    user = request.auth.user
    try:
        if check.kind == "connectivity":
            require_scope(request, "checks:run")
            name_error = model_name_error(check.model_name.strip()) if check.model_name.strip() else None
            if name_error:
                raise ApiProblem(
                    422,
                    "VALIDATION_FAILED",
                    name_error,
                    errors=[{"loc": ["body", "model_name"], "msg": name_error, "type": "value_error"}],
                )
            run = onboarding_services.connectivity_check_start(user=user, model_name=check.model_name)
        else:
            require_scope(request, "registrations:write")
            if not onboarding_selectors.onboarding_state(user=user)["connectivity_passed"]:
                raise ApiProblem(
                    409, "CONNECTIVITY_NOT_PASSED", "Registration opens once a connectivity check has passed."
                )
            try:
                registration_request = registration_validate(
                    model_uri=check.model_uri,
                    model_name=check.model_name,
                    token_id=check.token_id,
                    metric_name=check.metric_name,
                    baseline_value=check.baseline_value,
                    proposal_identifier=check.proposal_identifier,
                    extra_tags=_extra_tags_text(check.extra_tags),
                )
            except RegistrationInputError as error:
                raise ApiProblem(
                    422,
                    next(iter(error.causes.values()), "VALIDATION_FAILED"),
                    "Some registration fields are not valid: see errors.",
                    errors=[
                        {"loc": ["body", name], "msg": message, "type": error.causes.get(name, "value_error")}
                        for name, message in error.errors.items()
                    ],
                ) from None
            run = onboarding_services.registration_start(user=user, request=registration_request).check_run
    except onboarding_services.NoApiKey:
        raise ApiProblem(409, "NO_API_KEY", "Save your API key in the portal first (/onboarding/key/).") from None
    api_url = _absolute(request, reverse("api_v1:check", args=[run.pk]))
    return Status(
        202,
        {
            "id": run.pk,
            "status": run.status,
            "url": _absolute(request, reverse("onboarding:check_run", args=[run.pk])),
            "api_url": api_url,
        },
    )


@api.get(
    "/checks/{run_id}",
    url_name="check",
    response={200: CheckOut, **REFUSALS},
    auth=AccessTokenAuth("checks:read"),
    summary="A check: its steps, each with cause, message and remedy, and the verdict",
)
async def check(
    request: HttpRequest,
    run_id: int = Path(..., ge=1, le=MAX_ID),
    wait: int = Query(0, ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the verdict (at most 30)"),
):
    """Scope `checks:read`. With `wait`, answers as soon as the check is final, or after `wait` seconds with
    its state then (`finished` says which). Yours, or anyone's for support and managers (as the page)."""
    user = request.auth.user
    run = await sync_to_async(onboarding_selectors.check_run_get_for)(user=user, run_id=run_id)
    if wait and not run.is_finished:
        if isinstance(request, ASGIRequest):  # as the check page: an await on the run's change, no thread held
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            async with waiting.watching(run.pk) as watcher:
                state = onboarding_selectors.check_run_state_of(run=run, steps=[])  # only the status counts here
                while not onboarding_selectors.check_run_state_is_final(state) and (left := deadline - loop.time()) > 0:
                    state = await watcher.changed(seen=state, timeout=left)
            run = await sync_to_async(onboarding_selectors.check_run_get_for)(user=user, run_id=run_id)
        else:
            run = await sync_to_async(_check_waited_in_thread)(user, run, wait)
    return await sync_to_async(_check_out)(request, run)


def _check_waited_in_thread(user, run, wait: int):
    """The sync path (WEB_SERVER=wsgi): the wait holds this thread, so only while one of the slots is free."""
    if not LONG_POLL_SLOTS.acquire(blocking=False):
        return run
    try:  # the check page's long poll: woken by each state change (a step saved, the verdict)
        deadline = time.monotonic() + wait
        state = onboarding_selectors.check_run_state(run_id=run.pk)
        while not run.is_finished and (left := deadline - time.monotonic()) > 0:
            state = onboarding_selectors.check_run_wait(run_id=run.pk, seen=state, timeout=left)
            run = onboarding_selectors.check_run_get_for(user=user, run_id=run.pk)
    finally:
        LONG_POLL_SLOTS.release()
    return run


def _check_out(request: HttpRequest, run) -> CheckOut:
    """Read what the answer shows (its steps) here, in a thread: ninja serialises in the event loop."""
    return CheckOut.from_orm(run, context={"request": request})


@api.get(
    "/checks",
    url_name="checks",
    response={200: list[CheckOut], **REFUSALS},
    auth=AccessTokenAuth("checks:read"),
    summary="Checks, newest first (yours; everyone's for support and managers), cursor-paged",
)
@paginate(IdCursorPagination)
def checks(request: HttpRequest, filters: Query[CheckFilters]):
    """Scope `checks:read`. The history page's filters: `cause`, `since` (YYYY-MM-DD), `failed=1`."""
    runs = onboarding_selectors.check_run_list_for(user=request.auth.user).prefetch_related("steps")
    return onboarding_selectors.check_runs_filtered(runs, onboarding_selectors.history_filters(_query(filters)))


# --- investigations -----------------------------------------------------------------------------------------


def _investigation(request: HttpRequest, number: str) -> Investigation:
    """`INV-12` or `12`, as the token's user may see it (a reporter: what they reported), else 404."""
    pk = query_values.object_id(number.strip().upper().removeprefix("INV-"))
    if pk is None:
        raise Http404
    return triage_selectors.investigation_get_for(user=request.auth.user, pk=pk)


@api.get(
    "/investigations",
    url_name="investigations",
    response={200: list[InvestigationRow], **REFUSALS},
    auth=AccessTokenAuth("investigations:read"),
    summary="Investigations, newest first, with the list page's filters, cursor-paged",
)
@paginate(IdCursorPagination)
def investigations(request: HttpRequest, filters: Query[InvestigationFilters]):
    """Scope `investigations:read`. Support and managers: every investigation, as the list page; a developer:
    the ones they reported, as "My reports". Filters as the list page (`status=open`, `severity`, `owner=me`,
    `component`, `q`, `created_after`, …); a value that cannot be read is ignored, as there."""
    user = request.auth.user
    found = triage_selectors.investigation_list(
        filters=triage_selectors.investigation_filters(_query(filters)), user=user
    )
    if not has_role(user, Role.SUPPORT, Role.MANAGER):
        found = found.filter(pk__in=triage_selectors.reports_of(user=user).order_by().values("pk"))
    return found


@api.get(
    "/investigations/{number}",
    url_name="investigation",
    response={200: InvestigationOut, **REFUSALS},
    auth=AccessTokenAuth("investigations:read"),
    summary="An investigation by number (INV-12): findings and timeline as its page shows them to you",
)
def investigation(request: HttpRequest, number: str = Path(..., max_length=30, pattern=r"^[^\x00]*$")):
    """Scope `investigations:read`. A reporter reads the public fields and the public timeline; support and
    managers read internal notes and root causes too. 404 for one the token's user may not see."""
    return _investigation(request, number)


@api.post(
    "/investigations/{number}/comments",
    url_name="investigation_comments",
    response={201: CommentOut, **REFUSALS},
    auth=AccessTokenAuth("investigations:write"),
    summary="Reply to the reporters, or add an internal note (support)",
)
def investigation_comment(
    request: HttpRequest, comment: CommentIn, number: str = Path(..., max_length=30, pattern=r"^[^\x00]*$")
):
    """Scope `investigations:write` (support engineers). Keys and tokens in the body are masked before it is
    saved (`redactions` counts them), as on the page."""
    found = _investigation(request, number)
    try:
        event, redactions = triage_services.comment_add(
            investigation=found, actor=request.auth.user, body=comment.body, internal=comment.visibility == "internal"
        )
    except ValueError as error:
        raise ApiProblem(422, "COMMENT_EMPTY", str(error)) from None
    return Status(
        201,
        {
            "id": event.pk,
            "internal": event.internal,
            "created_at": event.created_at,
            "redactions": redactions.count,
        },
    )


@api.post(
    "/investigations/{number}/transitions",
    url_name="investigation_transitions",
    response={200: InvestigationOut, 409: Problem, **REFUSALS},
    auth=AccessTokenAuth("investigations:write"),
    summary="Move an investigation to another status (validated as on its page)",
)
def investigation_transition(
    request: HttpRequest, transition: TransitionIn, number: str = Path(..., max_length=30, pattern=r"^[^\x00]*$")
):
    """Scope `investigations:write` (support engineers). The page's rules: only the next steps from the current
    status (409 TRANSITION_INVALID says which are), a resolution when resolving, a duplicate names the
    investigation it duplicates (`duplicate_of`: INV-n)."""
    found = _investigation(request, number)
    form = TransitionForm(transition.dict())
    if not form.is_valid():
        raise ApiProblem(
            422,
            "VALIDATION_FAILED",
            " ".join(message for messages in form.errors.values() for message in messages),
            errors=[
                {"loc": ["body", name], "msg": " ".join(messages), "type": "value_error"}
                for name, messages in form.errors.items()
            ],
        )
    try:
        triage_services.investigation_transition(
            investigation=found,
            actor=request.auth.user,
            status=form.cleaned_data["status"],
            resolution=form.cleaned_data["resolution"],
            duplicate_of=form.cleaned_data["duplicate_of"],
        )
    except triage_services.TransitionError as error:
        raise ApiProblem(409, "TRANSITION_INVALID", str(error)) from None
    return _investigation(request, number)


# --- dashboard ----------------------------------------------------------------------------------------------


@api.get(
    "/dashboard",
    url_name="dashboard",
    response={200: DashboardOut, **REFUSALS},
    auth=AccessTokenAuth("dashboard:read"),
    summary="The dashboard's headline numbers (what /api/status answers)",
)
def dashboard(request: HttpRequest, filters: Query[DashboardFiltersIn]):
    """Scope `dashboard:read` (managers and support engineers). The dashboard's filters: `start`, `end`
    (YYYY-MM-DD), `severity`, `component` (an id)."""
    return status_summary(DashboardFilters.from_query(_query(filters)))
