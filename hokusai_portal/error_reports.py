"""Error reports to Sentry (sentry-sdk), on only when SENTRY_DSN is set: without it sentry_sdk is not even
imported. settings.py calls setup() with the SENTRY_* values, so every process that loads the settings reports:
each gunicorn worker (it loads the application after the fork), the Celery worker and its prefork children
(Celery's Django set-up loads the settings before any task runs; the SDK's sending thread starts again in a
forked child by itself), beat and management commands.

Nothing secret leaves the process. Before an event is sent:
- sentry-sdk's EventScrubber, its denylist extended by the portal's own field and variable names
  (SCRUBBED_NAMES), replaces those keys wherever they appear as keys: request data, headers, cookies, extra,
  breadcrumb data, a frame's local variables (recursively);
- before_send then walks every string of the event (exception messages, local variables, breadcrumbs, log
  messages and their arguments, request data, extra, tags) through the same masking as the log lines
  (hokusai_portal/logs.py `mask`: API keys, hkp_ access tokens, bearer tokens, webhook secrets), and replaces
  the text a person typed into a key or note field of this request (see `_typed_secrets`) wherever it
  appears, e.g. quoted in an exception's message;
- the request keeps its method, URL and harmless headers: its cookies, its Authorization, Cookie, X-Api-Key
  headers and the body of any form that carries a key, a note or a password are dropped;
- no user e-mail, name or address: the SDK's default-PII switch stays off, and before_send keeps only the
  user's id if an integration set one.

Performance traces stay with OpenTelemetry (hokusai_portal/tracing.py): SENTRY_TRACES_SAMPLE_RATE defaults to 0,
and no Sentry trace header is added to the portal's outgoing requests (the registry, webhook receivers)."""

import contextvars
import warnings

from hokusai_portal.logs import mask

FILTERED = "[Filtered]"

# Form fields (and API body fields) whose value is a secret or a person's free text, by app:
# onboarding/forms.py: the API key page, the doctor report, "Report a problem"'s pasted environment;
# triage (triage/views.py report_problem, triage/forms.py): a problem report's note, a comment (also the API's),
# a finding's reason and root cause, an imported plan, an investigation's steps to reproduce;
# accounts (django-allauth): passwords, one-time codes, the sign-in name.
SECRET_FIELDS = {"api_key", "organization_api_key", "password", "password1", "password2", "oldpassword", "code"}
NOTE_FIELDS = {
    "note",
    "body",
    "reason",
    "root_cause",
    "text",
    "report",
    "environment_text",
    "reproduction_steps",
}
PERSONAL_FIELDS = {"login", "email"}
SENSITIVE_FIELDS = SECRET_FIELDS | NOTE_FIELDS | PERSONAL_FIELDS
# Local variables that hold a key or token in the clear (onboarding/services.py, api/services.py, api/auth.py),
# and the CSRF form field: replaced by name; their values are also caught by the patterns.
SECRET_VARIABLES = {"raw_key", "plain", "normalised", "presented", "csrfmiddlewaretoken"}
SCRUBBED_NAMES = sorted(SENSITIVE_FIELDS | SECRET_VARIABLES)
# Request headers never sent (compared lower-case, "-" or "_").
DROPPED_HEADERS = {"authorization", "proxy_authorization", "cookie", "set_cookie", "x_api_key", "x_csrftoken"}
# A typed value shorter than this is not searched for in the rest of the event (it would match ordinary words).
MIN_TYPED_LENGTH = 8

_typed = contextvars.ContextVar("error_reports_typed", default=())
_configured = False


def setup(*, dsn: str, environment: str, traces_sample_rate: float, role: str = "") -> bool:
    """Start sentry-sdk in this process when `dsn` is set (once). Returns whether reports are on."""
    global _configured
    if not dsn:
        return False
    if _configured:
        return True
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import ignore_logger

    with warnings.catch_warnings():
        # sentry-sdk 2.x deprecates send_default_pii for data_collection, which would turn the EventScrubber
        # off; it is kept explicit so that 3.0 (which removes it and collects more by default) fails here, at
        # start, instead of sending more: read its data_collection docs before moving to it.
        warnings.filterwarnings("ignore", message=".*send_default_pii", category=DeprecationWarning)
        sentry_sdk.init(
            dsn=dsn,
            environment=environment,
            # release: SENTRY_RELEASE, else the git commit of the checkout (the SDK's own default).
            traces_sample_rate=traces_sample_rate,
            trace_propagation_targets=[],
            send_default_pii=False,
            event_scrubber=event_scrubber(),
            before_send=scrub_event,
            before_send_transaction=scrub_event,
            before_breadcrumb=scrub_breadcrumb,
            integrations=[DjangoIntegration(), CeleryIntegration()],
        )
    # django.request's lines about 5xx answers: an exception behind one is reported by the Django integration
    # already; without one it is a 503 the portal chose (/healthz during a fault, polled every few seconds).
    ignore_logger("django.request")
    if role:
        sentry_sdk.get_global_scope().set_tag("hokusai.process", role)  # every event of this process, any thread
    _configured = True
    return True


def event_scrubber():
    """sentry-sdk's EventScrubber with the portal's names added to its denylist, applied at any depth; it also
    notes what was typed into this request's key and note fields (before the denylist replaces them there) so
    that before_send finds it again elsewhere, e.g. quoted in an exception's message."""
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber

    class PortalEventScrubber(EventScrubber):
        def scrub_request(self, event) -> None:
            _typed.set(_typed_secrets(event))
            super().scrub_request(event)

    return PortalEventScrubber(
        denylist=DEFAULT_DENYLIST + SCRUBBED_NAMES, pii_denylist=list(DEFAULT_PII_DENYLIST), recursive=True
    )


def _typed_secrets(event: dict) -> tuple[str, ...]:
    """What was typed into this request's key, password and note fields (form or JSON body), as it may show
    elsewhere in the event: whole, line by line (a message or a local variable may quote part of a note), and
    as repr() writes it once or twice (an exception quoting a note, held in a local variable of a frame)."""
    data = (event.get("request") or {}).get("data")
    if not isinstance(data, dict):
        return ()
    found = set()
    for name, value in data.items():
        if not (isinstance(name, str) and _normal(name) in SENSITIVE_FIELDS):
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, str):
                continue
            for part in [item, *item.splitlines()]:
                part = part.strip()
                if len(part) < MIN_TYPED_LENGTH:
                    continue
                # As typed, and for free text as masked first too (a note that quotes a key: the text is masked
                # before the typed values are looked for). A typed key stays readable as its masked form.
                for form in {part, mask(part)} if _normal(name) not in SECRET_FIELDS else {part}:
                    once = repr(form)[1:-1]
                    found.update((form, once, repr(once)[1:-1]))
    return tuple(sorted(found, key=len, reverse=True))  # the longest first: a whole note before its lines


def _normal(name: str) -> str:
    return name.lower().replace("-", "_")


def scrub_text(text: str, typed: tuple[str, ...] = ()) -> str:
    """A string of an event, masked as log lines are, with what was typed into key and note fields removed."""
    text = mask(text)
    for value in typed:
        if value in text:
            text = text.replace(value, FILTERED)
    return text


def _walk(value, typed: tuple[str, ...]):
    if isinstance(value, str):
        return scrub_text(value, typed)
    if isinstance(value, dict):
        return {(_walk(k, typed) if isinstance(k, str) else k): _walk(v, typed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(item, typed) for item in value]
    return value


def _scrub_request(request: dict) -> dict:
    request.pop("cookies", None)
    request.pop("env", None)  # REMOTE_ADDR and the server's port: the address is personal data
    headers = request.get("headers")
    if isinstance(headers, dict):
        request["headers"] = {k: v for k, v in headers.items() if _normal(str(k)) not in DROPPED_HEADERS}
    data = request.get("data")
    if isinstance(data, dict) and any(isinstance(k, str) and _normal(k) in SENSITIVE_FIELDS for k in data):
        request["data"] = FILTERED  # the key page, a note or report form, a sign-in: the whole body goes
    elif isinstance(data, str) and data:
        request["data"] = FILTERED  # a raw body the SDK could not parse: nothing to tell fields apart by
    return request


def scrub_event(event: dict, hint: dict | None = None) -> dict | None:
    """sentry-sdk's before_send (and before_send_transaction): see the module's docstring."""
    typed = _typed.get()
    _typed.set(())
    if _not_a_bug((hint or {}).get("exc_info")):
        return None
    if isinstance(event.get("request"), dict):
        event["request"] = _scrub_request(event["request"])
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if user.get("id") is not None else {}
        if not event["user"]:
            event.pop("user")
    return _walk(event, typed)


def _not_a_bug(exc_info) -> bool:
    """Django's ASGI handler refuses the lifespan scope uvicorn's workers try at start (uvicorn goes on without
    it and says so in its log): the SDK's ASGI middleware would report it from every web process started."""
    error = exc_info[1] if exc_info else None
    return isinstance(error, ValueError) and str(error).startswith("Django can only handle ASGI/HTTP connections")


def scrub_breadcrumb(crumb: dict, hint: dict | None = None) -> dict:
    """before_breadcrumb: log messages and HTTP breadcrumbs masked as they are recorded (before_send does it
    again on the whole event)."""
    return _walk(crumb, ())
