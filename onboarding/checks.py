"""The connectivity check engine, shared by the Celery task and `manage.py diagnose`.

key format -> DNS -> TCP -> TLS (https only) -> health -> identity/version -> authentication ->
registry read -> write permission. After the first failing step the rest are skipped, not run."""

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from hokusai_portal.redaction import redact, redact_value

from .diagnosis import (
    Diagnosis,
    StepStatus,
    diagnose_exception,
    diagnose_response,
    diagnosis,
    failed,
    looks_like_html,
    passed,
)
from .keys import KeyFormatError, key_normalise
from .registry_client import Deadline, DeadlineExceeded, RegistryClient, response_evidence

RUN_DEADLINE_SECONDS = 15
CERT_WARNING_DAYS = 14
VERSION_PATTERN = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass
class StepResult:
    name: str
    title: str
    status: str
    cause: str
    message: str
    remedy: str
    duration_ms: int
    evidence: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


STEPS: list[tuple[str, str]] = [
    ("key_format", "Key format"),
    ("dns", "DNS lookup"),
    ("tcp", "TCP connect"),
    ("tls", "TLS"),
    ("health", "Registry health"),
    ("identity", "Server identity and version"),
    ("auth", "Authentication"),
    ("registry_read", "Registry read"),
    ("write", "Write permission"),
]


class StepRunner:
    """Runs named steps in order against one registry with one key; after the first failure the
    rest are skipped. Subclasses define STEPS and a `step_<name>` method for each."""

    STEPS: list[tuple[str, str]] = []
    DEADLINE_SECONDS: float = RUN_DEADLINE_SECONDS

    def __init__(self, registry_url: str, api_key: str, *, deadline_seconds: float | None = None):
        self.registry_url = registry_url
        self.api_key = api_key
        self.deadline_seconds = deadline_seconds or self.DEADLINE_SECONDS
        self.deadline = Deadline(self.deadline_seconds)
        self.client = RegistryClient(registry_url, api_key, deadline=self.deadline)
        self.titles = dict(self.STEPS)

    def step_names(self) -> list[str]:
        return [name for name, _ in self.STEPS]

    def run(self, on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
        results: list[StepResult] = []
        blocked_by: StepResult | None = None
        try:
            for name in self.step_names():
                if blocked_by is not None:
                    result = self._skipped(name, blocked_by)
                else:
                    result = self._run_step(name)
                    if result.status == StepStatus.FAIL:
                        blocked_by = result
                results.append(result)
                if on_step:
                    on_step(result)
        finally:
            self.client.close()
        return results

    def _skipped(self, name: str, blocked_by: StepResult) -> StepResult:
        verdict = diagnosis(
            StepStatus.SKIPPED, "SKIPPED", f"Not run: “{blocked_by.title}” failed first ({blocked_by.cause})."
        )
        return StepResult(
            name, self.titles[name], verdict.status, verdict.cause, verdict.message, verdict.remedy, 0, {}
        )

    def _run_step(self, name: str) -> StepResult:
        started = time.perf_counter()
        try:
            verdict = getattr(self, f"step_{name}")()
        except DeadlineExceeded:
            verdict = failed("DEADLINE_EXCEEDED", f"(the whole run may take {self.deadline_seconds:.0f} s)")
        except Exception as exc:  # one broken step must not end the run or leak a traceback with the key
            verdict = diagnose_exception(exc)
        duration_ms = round((time.perf_counter() - started) * 1000)
        return StepResult(
            name=name,
            title=self.titles[name],
            status=verdict.status,
            cause=verdict.cause,
            message=redact(verdict.message, self.api_key)[0],
            remedy=verdict.remedy,
            duration_ms=duration_ms,
            evidence=self._redact_evidence(verdict.evidence),
        )

    def _redact_evidence(self, evidence: dict) -> dict:
        return redact_value(evidence, self.api_key)[0]

    def _http_failure(self, response: requests.Response, **kwargs) -> Diagnosis | None:
        verdict = diagnose_response(response, **kwargs)
        if verdict is not None:
            verdict.evidence = response_evidence(response)
        return verdict

    def _probe_tag_write(self, name: str) -> Diagnosis:
        """Write access to an existing model: set a probe tag, then delete it (nothing left behind)."""
        tag = f"hokusai_portal_probe_{secrets.token_hex(4)}"
        response = self.client.set_registered_model_tag(name, tag, "1")
        failure = self._http_failure(response, write=True)
        if failure:
            failure.message += f" The key cannot write the existing model “{name}”."
            return failure
        self.client.delete_registered_model_tag(name, tag)
        return passed(f"The key can write the model “{name}” (a probe tag was set and removed).")

    def _probe_create_delete(self, intended_name: str = "") -> Diagnosis:
        """Write access in general: create a throw-away model, then delete it."""
        name = f"hokusai-portal-probe-{secrets.token_hex(6)}"
        response = self.client.create_registered_model(name)
        failure = self._http_failure(response, write=True)
        if failure:
            return failure
        deleted = self.client.delete_registered_model(name)
        detail = f"The key can create models{' (for “' + intended_name + '”, which does not exist yet)' if intended_name else ''}."
        if not deleted.ok:
            return diagnosis(
                StepStatus.WARN,
                "PROBE_NOT_DELETED",
                f"{detail} {name} is left (HTTP {deleted.status_code} on delete).",
                evidence=response_evidence(deleted),
            )
        return passed(detail + " The probe model was deleted.")


class ConnectivityCheck(StepRunner):
    """key format -> DNS -> TCP -> TLS (https only) -> health -> identity -> auth -> read -> write."""

    STEPS = STEPS

    def __init__(self, registry_url: str, api_key: str, *, model_name: str = "", deadline_seconds: float | None = None):
        super().__init__(registry_url, api_key, deadline_seconds=deadline_seconds)
        self.model_name = model_name.strip()
        self.addresses: list[str] = []

    def step_names(self) -> list[str]:
        return [name for name, _ in self.STEPS if name != "tls" or self.client.scheme == "https"]

    # --- the steps -------------------------------------------------------------------------
    def step_key_format(self) -> Diagnosis:
        try:
            normalised = key_normalise(self.api_key)
        except KeyFormatError as error:
            return failed("KEY_FORMAT_INVALID", str(error))
        self.api_key = normalised.key
        self.client.use_key(normalised.key)  # trimmed: a pasted newline must not reach an HTTP header
        return passed(f"{normalised.masked} is a well-formed {normalised.key_tier} key.")

    def step_dns(self) -> Diagnosis:
        self.addresses = self.client.resolve()
        return passed(f"{self.client.host} resolves to {', '.join(self.addresses[:3])}.", {"addresses": self.addresses})

    def step_tcp(self) -> Diagnosis:
        elapsed = self.client.tcp_connect(self.addresses[0])
        return passed(f"Connected to {self.addresses[0]}:{self.client.port} in {elapsed:.0f} ms.")

    def step_tls(self) -> Diagnosis:
        info = self.client.tls_handshake(self.addresses[0])
        days_left = (info["expires"] - datetime.now(UTC)) / timedelta(days=1)
        evidence = {"protocol": info["protocol"], "expires": info["expires"].isoformat(), "issuer": info["issuer"]}
        if days_left < CERT_WARNING_DAYS:
            return diagnosis(
                StepStatus.WARN, "TLS_CERT_EXPIRING", f"It expires in {days_left:.0f} days.", evidence=evidence
            )
        return passed(f"{info['protocol']}, certificate valid for {days_left:.0f} more days.", evidence)

    def step_health(self) -> Diagnosis:
        response = self.client.health()
        failure = self._http_failure(response, authenticated=False)
        if failure:
            return failure
        if looks_like_html(response):
            return failed("NOT_A_REGISTRY", "(/health answered with an HTML page)", response_evidence(response))
        return passed(f"/health answered {response.status_code} in {response.elapsed.total_seconds() * 1000:.0f} ms.")

    def step_identity(self) -> Diagnosis:
        version_response = self.client.version()
        version_match = None
        if version_response.ok and not looks_like_html(version_response):
            version_match = VERSION_PATTERN.match(version_response.text)
        evidence = {"version_status": version_response.status_code}
        if version_match:
            major = int(version_match.group(1))
            version = version_match.group(0).strip()
            evidence["version"] = version
            if major < 2:
                return failed("SERVER_VERSION_UNSUPPORTED", f"(MLflow {version})", evidence)
            if major == 2:
                return diagnosis(
                    StepStatus.WARN,
                    "SERVER_VERSION_UNSUPPORTED",
                    f"MLflow {version}: registering from runs works, logged models (MLflow 3) do not.",
                    evidence=evidence,
                )
            return passed(f"MLflow {version}.", evidence)
        # /version is behind authentication on some servers; server-info is public on MLflow 3.
        info = self.client.server_info()
        evidence["server_info_status"] = info.status_code
        if info.ok and not looks_like_html(info):
            try:
                is_mlflow = "store_type" in info.json()
            except ValueError:
                is_mlflow = False
            if is_mlflow:
                return passed("MLflow 3 (the exact version is only shown to authenticated clients).", evidence)
        failure = self._http_failure(version_response, authenticated=True)
        if failure and failure.cause != "NOT_A_REGISTRY" and not looks_like_html(info):
            return failure
        return failed("NOT_A_REGISTRY", evidence=response_evidence(info))

    def step_auth(self) -> Diagnosis:
        response = self.client.search_experiments(max_results=1)
        failure = self._http_failure(response)
        if failure:
            return failure
        return passed("The registry accepted the key.")

    def step_registry_read(self) -> Diagnosis:
        response = self.client.search_registered_models(max_results=1)
        failure = self._http_failure(response)
        if failure:
            return failure
        try:
            models = response.json().get("registered_models", [])
        except (ValueError, AttributeError):  # not JSON, or not an object: not MLflow answering
            models = None
        if not isinstance(models, list):
            return failed("NOT_A_REGISTRY", evidence=response_evidence(response))
        # No model is named: the list holds other developers' models, and a step's text is copied into
        # problem reports that other people read.
        return passed("The registry's model list is readable with this key.")

    def step_write(self) -> Diagnosis:
        if self.model_name:
            existing = self.client.get_registered_model(self.model_name)
            if existing.status_code == 200:
                return self._probe_tag_write(self.model_name)
            if existing.status_code != 404:
                failure = self._http_failure(existing)
                if failure:
                    return failure
        return self._probe_create_delete(self.model_name)
