"""Pure diagnosis: (step, HTTP response or exception) -> Diagnosis(status, cause, message, remedy).

Cause codes are a stable contract (UI `data-cause`, JSON, logs, grouping): add codes, never rename."""

import socket
import ssl
from dataclasses import dataclass, field

import requests


class StepStatus:
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"
    CHOICES = [(PASS, "Pass"), (WARN, "Warning"), (FAIL, "Fail"), (SKIPPED, "Skipped")]


# Causes that are the portal's own failure, not the developer's or the registry's: kept out of the
# dashboard's failure causes (they say nothing about where onboarding fails).
PORTAL_CAUSES = frozenset({"WORKER_LOST", "WORKERS_UNAVAILABLE", "STORAGE_UNAVAILABLE"})

# code -> (one-line message, concrete remedy)
CAUSES: dict[str, tuple[str, str]] = {
    "OK": ("All good.", ""),
    "SKIPPED": ("Not run.", "Fix the first failing step, then run the check again."),
    "KEY_FORMAT_INVALID": (
        "This is not a valid Hokusai API key.",
        "Copy the key again from your Hokusai account settings: it starts with hk_live_, hk_test_ or hk_dev_.",
    ),
    "DNS_UNRESOLVED": (
        "The registry's host name does not resolve.",
        "Check the registry URL for typos and that your network's DNS can resolve it (try `nslookup <host>`).",
    ),
    "CONNECT_REFUSED": (
        "The registry host refused the connection: nothing is listening on that port.",
        "Check the port in the registry URL; if it is right, the registry is down: tell Hokusai support.",
    ),
    "CONNECT_TIMEOUT": (
        "The connection to the registry timed out.",
        "A firewall or proxy may be dropping traffic: check outbound HTTPS is allowed from where you run.",
    ),
    "TLS_CERT_INVALID": (
        "The registry's TLS certificate could not be verified.",
        "Do not disable verification. If you are behind a TLS-inspecting proxy, point REQUESTS_CA_BUNDLE at its CA; "
        "otherwise tell Hokusai support the certificate is invalid.",
    ),
    "TLS_CERT_EXPIRING": (
        "The registry's TLS certificate expires soon.",
        "Nothing to do on your side yet; Hokusai support has been told to renew it.",
    ),
    "TLS_PROTOCOL_MISMATCH": (
        "The TLS handshake failed: the server does not speak TLS on this port, or no protocol version matches.",
        "Check the scheme of the registry URL (https:// versus http://) and the port.",
    ),
    "REGISTRY_TIMEOUT": (
        "The registry accepted the connection but did not answer in time.",
        "The registry is hung or overloaded: retry in a few minutes; if it persists, tell Hokusai support.",
    ),
    "REGISTRY_UNAVAILABLE": (
        "The registry answered with a server error (5xx).",
        "This is on the platform side: retry later, and report it if it persists.",
    ),
    "AUTH_SERVICE_UNAVAILABLE": (
        "The gateway's authentication service is unavailable (503).",
        "Your key was not checked: retry in a few minutes. Nothing is wrong with your setup.",
    ),
    "AUTH_KEY_REJECTED": (
        "The registry rejected the API key (401): it is unknown, revoked or expired.",
        "Create a new key in your Hokusai account settings and save it here.",
    ),
    "AUTH_SCHEME_MISMATCH": (
        "This registry expects a username and password, not an API key.",
        "A token in MLFLOW_TRACKING_TOKEN will not work here: set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD, or use the Hokusai gateway URL that accepts API keys.",
    ),
    "REGISTRY_ADMIN_REQUIRED": (
        "Registry access is currently limited to admin keys (403 REGISTRY_ADMIN_REQUIRED).",
        "Your key is valid. Ask Hokusai support to grant registry access to your key or account.",
    ),
    "WRITE_PERMISSION_DENIED": (
        "The key can read the registry but cannot write to it (403).",
        "Ask for a key with the model:write scope, or for write access to this model.",
    ),
    "PERMISSION_DENIED": (
        "The key is not allowed to do this (403).",
        "Ask Hokusai support which permissions your key has.",
    ),
    "RATE_LIMITED": (
        "The registry is rate limiting this key (429).",
        "Wait for the time the registry gave (Retry-After), then run the check again.",
    ),
    "SERVER_VERSION_UNSUPPORTED": (
        "The registry runs an MLflow version the Hokusai tools do not support.",
        "Tell Hokusai support; MLflow 2.x or newer is required (3.x for logged models).",
    ),
    "NOT_A_REGISTRY": (
        "Something answered, but it is not an MLflow registry (an HTML page where JSON was expected).",
        "Check the registry URL: it may point at a website, a login portal or a proxy error page.",
    ),
    "RUN_NOT_FOUND": ("The run does not exist or has not finished.", "Check the run id in the model URI."),
    "MODEL_ARTIFACT_MISSING": (
        "No MLmodel file at the model URI.",
        "Log the model with mlflow.<flavor>.log_model and use the URI it returns.",
    ),
    "METRIC_NOT_FOUND": ("The run has no such metric.", "Log the metric on the run, or pick one it has."),
    "TOKEN_ID_INVALID": ("The token id is not valid.", "Use letters, digits and inner hyphens, at most 64."),
    "TOKEN_ID_IN_USE": (
        "This token id is already on another model's versions.",
        "Registering continues. If the token is not meant to be shared, pick another token id.",
    ),
    "TOKEN_ID_UNCHECKED": (
        "Whether the token id is already used could not be checked.",
        "Registering continues; search the registry for tags.hokusai_token_id if it matters.",
    ),
    "PROBE_NOT_DELETED": (
        "The key can write, but the throw-away probe model could not be deleted.",
        "Nothing is wrong with your key. Tell Hokusai support the probe model's name so they remove it.",
    ),
    "MODEL_NAME_OWNED_BY_OTHER": (
        "A model with this name belongs to someone else.",
        "Pick another model name, or ask its owner to give you access.",
    ),
    "REGISTRATION_TIMEOUT": ("The model version did not become READY in time.", "Retry; report it if it persists."),
    "WORKER_LOST": (
        "The check stopped before it finished: the worker running it went away, twice.",
        "Run the check again. If it happens again, tell Hokusai support.",
    ),
    "WORKERS_UNAVAILABLE": (
        "No worker of the portal took the check in time: the portal's workers are stopped, or busy with a backlog.",
        "Run the check again in a minute. The portal's /healthz reports its workers as down meanwhile.",
    ),
    "CONNECTION_CLOSED": (
        "The registry accepted the connection, then closed it without answering.",
        "A proxy or load balancer between you and the registry may be dropping the request, or the registry "
        "restarted: retry in a minute, and tell Hokusai support the time if it keeps happening.",
    ),
    "STORAGE_UNAVAILABLE": (
        "The portal could not save this check's results: its storage refused the write (read-only or full).",
        "Nothing is wrong on your side. Run the check again in a few minutes; the portal's operators see it on /healthz.",
    ),
    "DEADLINE_EXCEEDED": (
        "The check ran out of time before this step.",
        "The registry is slow: retry later, and report it if it persists.",
    ),
    "UNEXPECTED_RESPONSE": (
        "The registry gave an answer the portal does not understand.",
        "Report it to Hokusai support with the evidence below.",
    ),
}


@dataclass
class Diagnosis:
    status: str
    cause: str
    message: str = ""
    remedy: str = ""
    evidence: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (StepStatus.PASS, StepStatus.WARN)


def diagnosis(
    status: str, cause: str, detail: str = "", *, evidence: dict | None = None, remedy: str = ""
) -> Diagnosis:
    message, default_remedy = CAUSES[cause]
    if detail:
        message = detail if status in (StepStatus.PASS, StepStatus.SKIPPED) else f"{message} {detail}"
    return Diagnosis(status, cause, message, remedy or default_remedy, evidence or {})


def passed(detail: str, evidence: dict | None = None) -> Diagnosis:
    return diagnosis(StepStatus.PASS, "OK", detail, evidence=evidence)


def failed(cause: str, detail: str = "", evidence: dict | None = None, remedy: str = "") -> Diagnosis:
    return diagnosis(StepStatus.FAIL, cause, detail, evidence=evidence, remedy=remedy)


def _root_causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = (
            exc.__cause__
            or exc.__context__
            or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
        )


def diagnose_exception(exc: BaseException) -> Diagnosis:
    """Map a network exception (socket, ssl, requests) to its cause; the real cause often hides in __context__."""
    chain = list(_root_causes(exc))
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    evidence = {"error": text[:500]}
    for error in chain:
        if isinstance(error, socket.gaierror):
            return failed("DNS_UNRESOLVED", evidence=evidence)
        if isinstance(error, ssl.SSLCertVerificationError):
            return failed("TLS_CERT_INVALID", f"({error.verify_message})", evidence)
        if isinstance(error, ssl.SSLError):
            return failed("TLS_PROTOCOL_MISMATCH", evidence=evidence)
        if isinstance(error, ConnectionRefusedError):
            return failed("CONNECT_REFUSED", evidence=evidence)
    for error in chain:
        if isinstance(error, requests.exceptions.ReadTimeout):
            return failed("REGISTRY_TIMEOUT", evidence=evidence)
        if isinstance(error, requests.exceptions.ConnectTimeout | socket.timeout | TimeoutError):
            return failed("CONNECT_TIMEOUT", evidence=evidence)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return failed("DNS_UNRESOLVED", evidence=evidence)
    if "Connection refused" in text:
        return failed("CONNECT_REFUSED", evidence=evidence)
    if "timed out" in text.lower():
        return failed("REGISTRY_TIMEOUT", evidence=evidence)
    if "Connection aborted" in text or "RemoteDisconnected" in text or "Connection reset" in text:
        return failed("CONNECTION_CLOSED", evidence=evidence)
    return failed("UNEXPECTED_RESPONSE", evidence=evidence)


def looks_like_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    head = response.content[:200].lstrip().lower()
    return "text/html" in content_type and (head.startswith(b"<!doctype") or head.startswith(b"<html") or b"<" in head)


def error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error_code", "")) if isinstance(body, dict) else ""


def diagnose_response(
    response: requests.Response, *, authenticated: bool = True, write: bool = False, expect_json: bool = True
) -> Diagnosis | None:
    """The failure an HTTP answer means, or None when it is a success for the caller to interpret.

    `authenticated`: the request carried the key through the gateway, after the registry itself
    answered its health check, so a 503 there comes from the gateway's auth service."""
    status = response.status_code
    code = error_code(response)
    if status == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("basic"):
            return failed("AUTH_SCHEME_MISMATCH")
        return failed("AUTH_KEY_REJECTED", f"({code})" if code else "")
    if status == 403:
        if code == "REGISTRY_ADMIN_REQUIRED":
            return failed("REGISTRY_ADMIN_REQUIRED")
        if write:
            return failed("WRITE_PERMISSION_DENIED", f"({code})" if code else "")
        return failed("PERMISSION_DENIED", f"({code})" if code else "")
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        return failed("RATE_LIMITED", f"Retry after {retry_after} s." if retry_after else "")
    if status == 503 and authenticated:
        return failed("AUTH_SERVICE_UNAVAILABLE")
    if status >= 500:
        return failed("REGISTRY_UNAVAILABLE", f"(HTTP {status})")
    if expect_json and looks_like_html(response):
        return failed("NOT_A_REGISTRY", f"(HTTP {status}, text/html)")
    if status >= 400:
        return failed("UNEXPECTED_RESPONSE", f"(HTTP {status}{', ' + code if code else ''})")
    return None
