"""Log lines an operator can use: each carries the request, user, check run and trace it belongs to, and
never a secret.

- `LOG_FORMAT=json` (python-json-logger): one JSON object per line with `time`, `level`, `logger`,
  `message`, `request_id`, `user_id`, `run_id`, `trace_id` (and `process`, the supervisor's program name).
- Otherwise readable lines; `make run` prefixes each with its process's name (hokusai_portal/lifeline.py).
- The ids come from context variables: RequestContext (a request: `X-Request-ID` or a new one, answered
  in the same header; the signed-in user; a `<run_id>` in the URL), and Celery's task signals (the task's
  `run_id` argument; the request id of the web request that queued it, carried in the task's headers).
- Refusals a user is expected to meet (403, 404, 405, 429) are one line, never a traceback.
- Every line is passed through the key and token redaction (hokusai_portal/redaction.py) before it is
  written: a safety net, as nothing should log a secret in the first place."""

import contextvars
import logging
import os
import re
import uuid

from asgiref.sync import sync_to_async
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from hokusai_portal.async_middleware import SyncAndAsync
from hokusai_portal.redaction import redact

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
user_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("user_id", default="")
run_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("run_id", default="")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}")


def new_request_id(given: str = "") -> str:
    """The caller's id when it looks like one (a proxy's), else a new one: never echo arbitrary text."""
    return given if _REQUEST_ID.fullmatch(given or "") else uuid.uuid4().hex


def trace_id() -> str:
    """The current OpenTelemetry trace id (32 hex digits), or "" outside a recorded span."""
    try:
        from opentelemetry import trace
    except ImportError:
        return ""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def mask(text: str) -> str:
    return _WEBHOOK_SECRET.sub("whsec_…", redact(text)[0])


class ContextFilter(logging.Filter):
    """Adds the ids to every record (a handler's filter, so records of every logger get them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", "") or request_id_var.get()
        record.user_id = getattr(record, "user_id", "") or user_id_var.get()
        record.run_id = getattr(record, "run_id", "") or run_id_var.get()
        record.trace_id = trace_id()
        record.process_name = os.getenv("PORTAL_PROCESS", "")
        return True


class RedactSecrets(logging.Filter):
    """Masks API keys, bearer tokens and webhook secrets in the message and in a traceback's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = mask(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


class ExpectedRefusalsOneLine(logging.Filter):
    """A 4xx answer (a permission refusal, a missing object, a bad or suspicious request) is logged as one line:
    Django passes the exception as exc_info, and its traceback says nothing the status and path do not, while
    it drowns the real errors. A 5xx keeps its traceback. The exception's class stays in the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and 400 <= status < 500:
            error = record.exc_info[1]
            if error is not None and not str(record.msg).endswith("]"):
                record.msg = f"{record.msg} [{type(error).__name__}]"
            record.exc_info, record.exc_text = None, None
        return True


class JsonFormatter(_JsonFormatter):
    """One object per line, the field names fixed (a log pipeline's parser depends on them)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "rename_fields", {"asctime": "time", "levelname": "level", "name": "logger", "process_name": "process"}
        )
        kwargs.setdefault("timestamp", False)
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s %(run_id)s "
            "%(trace_id)s %(process_name)s",
            *args,
            **kwargs,
        )

    def formatTime(self, record, datefmt=None) -> str:  # noqa: N802 - logging's name
        from datetime import UTC, datetime

        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        # python-json-logger formats the exception again from exc_info: mask that text too.
        return mask(super().formatException(ei))

    def add_fields(self, log_record, record, message_dict) -> None:
        super().add_fields(log_record, record, message_dict)
        for noise in ("request", "server_time"):  # django.request's extras: an object, and a duplicate time
            log_record.pop(noise, None)


class RequestContext(SyncAndAsync):
    """Sets the ids for everything logged while a request is answered, and answers its X-Request-ID."""

    def sync_call(self, request):
        request_id = self._start(request, _user_id(request))
        response = self.get_response(request)
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        return response

    async def __acall__(self, request):
        # The user is read in a thread (a query), the ids are set here: a context variable set in a thread
        # would not come back to this coroutine.
        request_id = self._start(request, await sync_to_async(_user_id)(request))
        response = await self.get_response(request)
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        return response

    @staticmethod
    def _start(request, user_id: str) -> str:
        request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        request.request_id = request_id
        request_id_var.set(request_id)
        user_id_var.set(user_id)
        run_id_var.set("")
        return request_id

    def process_view(self, request, view_func, view_args, view_kwargs):
        if "run_id" in view_kwargs:
            run_id_var.set(str(view_kwargs["run_id"]))
        return None


def _user_id(request) -> str:
    user = getattr(request, "user", None)
    return str(user.pk) if user is not None and user.is_authenticated else ""


REQUEST_ID_TASK_HEADER = "portal_request_id"


def task_published(headers=None, **kwargs) -> None:
    """Celery's before_task_publish: the web request's id travels with the task it queued."""
    if headers is not None and request_id_var.get():
        headers.setdefault(REQUEST_ID_TASK_HEADER, request_id_var.get())


def task_started(task=None, args=None, kwargs=None, **extra) -> None:
    """Celery's task_prerun: the ids for what this task logs (its run id argument; the request that queued it)."""
    request = getattr(task, "request", None)
    request_id_var.set(str(getattr(request, REQUEST_ID_TASK_HEADER, "") or "") if request else "")
    user_id_var.set("")
    run_id = (kwargs or {}).get("run_id")
    if run_id is None and args and getattr(task, "name", "") == "onboarding.check_run":
        run_id = args[0]
    run_id_var.set("" if run_id is None else str(run_id))


def task_ended(**kwargs) -> None:
    request_id_var.set("")
    run_id_var.set("")


def logging_config(log_format: str, level: str) -> dict:
    """settings.LOGGING for `plain` (readable) or `json` lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "hokusai_portal.logs.ContextFilter"},
            "redact": {"()": "hokusai_portal.logs.RedactSecrets"},
            "refusals": {"()": "hokusai_portal.logs.ExpectedRefusalsOneLine"},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "hokusai_portal.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["refusals", "context", "redact"],
            }
        },
        # On django.request itself too, so every handler (and a test's caplog) sees the refusal as one line.
        "loggers": {"django.request": {"filters": ["refusals"]}},
        "root": {"handlers": ["console"], "level": level},
    }
