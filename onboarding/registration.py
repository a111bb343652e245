"""Registering a model the way `register_tokenized_model` does, with every precondition checked
first and the result verified after: pure validation, the step engine, and the reproducible snippet."""

import hashlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

from .checks import API, StepRunner
from .diagnosis import Diagnosis, StepStatus, diagnosis, failed, passed
from .registry_client import response_evidence

TOKEN_ID_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$")
MODEL_NAME_FORBIDDEN = set("/\\:%?#\n\r\t")
RATE_METRICS = {
    "accuracy",
    "precision",
    "recall",
    "f1",
    "f1_score",
    "auc",
    "roc_auc",
    "pr_auc",
    "hit_rate",
    "conversion_rate",
}
URI_FORMS = (
    (re.compile(r"^runs:/(?P<run_id>[A-Za-z0-9]+)/(?P<path>[^\s]+)$"), "runs"),
    (re.compile(r"^models:/(?P<model_id>m-[0-9a-f]+)$"), "logged_model"),
    (re.compile(r"^models:/(?P<name>[^/\s]+)/(?P<version>\d+)$"), "model_version"),
    (re.compile(r"^mlflow-artifacts:/(?P<path>\S+)$"), "artifacts"),
)
READY_POLL_SECONDS = 20
IDEMPOTENCY_TAG = "hokusai_idempotency_key"


class RegistrationInputError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class RegistrationRequest:
    model_uri: str
    model_name: str
    token_id: str
    metric_name: str
    baseline_value: float
    proposal_identifier: str = ""
    extra_tags: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    STORED_FIELDS = (
        "model_uri",
        "model_name",
        "token_id",
        "metric_name",
        "baseline_value",
        "proposal_identifier",
        "extra_tags",
    )

    def stored_fields(self) -> dict:
        """What a Registration row keeps of the request (the warnings are shown once, not kept)."""
        return {name: getattr(self, name) for name in self.STORED_FIELDS}

    def version_tags(self, run_id: str | None) -> dict[str, str]:
        """Exactly the tags `register_tokenized_model` sets, plus the user's extra tags."""
        tags = dict(self.extra_tags)
        tags.update(
            hokusai_token_id=self.token_id,
            benchmark_metric=self.metric_name,
            benchmark_value=format_baseline(self.baseline_value),
            hokusai_status="registered",
            hokusai_proposal_identifier=self.proposal_identifier or self.token_id,
        )
        if run_id:
            tags["mlflow_run_id"] = run_id
        return tags

    def idempotency_key(self, user_id: int) -> str:
        payload = json.dumps([user_id, asdict(self) | {"warnings": []}], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def format_baseline(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(float(value))


def parse_model_uri(uri: str) -> tuple[str, dict]:
    for pattern, kind in URI_FORMS:
        match = pattern.match(uri)
        if match:
            return kind, match.groupdict()
    raise ValueError(uri)


def registration_validate(
    *, model_uri: str, model_name: str, token_id: str, metric_name: str, baseline_value: str,
    proposal_identifier: str = "", extra_tags: str = "",
) -> RegistrationRequest:  # fmt: skip
    """Check every field; raise RegistrationInputError with a message per bad field."""
    errors: dict[str, str] = {}
    warnings: list[str] = []
    model_uri = (model_uri or "").strip()
    try:
        parse_model_uri(model_uri)
    except ValueError:
        errors["model_uri"] = (
            "Use runs:/<run_id>/<path> (e.g. runs:/4b8f…/model), models:/<name>/<version>, "
            "models:/m-<id> or mlflow-artifacts:/<path>."
        )
    model_name = (model_name or "").strip()
    if not model_name:
        errors["model_name"] = "Give the registered model a name, e.g. LSCOR_Test_Model."
    elif len(model_name) > 256:
        errors["model_name"] = "A model name has at most 256 characters."
    elif MODEL_NAME_FORBIDDEN & set(model_name):
        errors["model_name"] = "A model name cannot contain / \\ : % ? # or line breaks."
    token_id = (token_id or "").strip()
    if not TOKEN_ID_PATTERN.match(token_id):
        errors["token_id"] = (
            "A token id has 1 to 64 letters, digits and hyphens, and does not start or end with a hyphen (e.g. LSCOR)."
        )
    metric_name = (metric_name or "").strip()
    if not metric_name or len(metric_name) > 250:
        errors["metric_name"] = "Name the metric the baseline is measured on, e.g. accuracy."
    baseline: float | None = None
    try:
        baseline = float(str(baseline_value).strip())
        if not math.isfinite(baseline):
            raise ValueError
    except (TypeError, ValueError):
        errors["baseline_value"] = "The baseline is a finite number, e.g. 0.92."
        baseline = None
    if baseline is not None and metric_name.lower() in RATE_METRICS and not 0 <= baseline <= 1:
        warnings.append(f"{metric_name} is usually a rate between 0 and 1; {baseline} is outside that range.")
    proposal_identifier = (proposal_identifier or "").strip()
    if len(proposal_identifier) > 250:
        errors["proposal_identifier"] = "At most 250 characters."
    tags: dict[str, str] = {}
    for number, line in enumerate((extra_tags or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            errors["extra_tags"] = f"Line {number}: write one tag per line as key=value."
            break
        if key.strip() in ("hokusai_token_id", "benchmark_metric", "benchmark_value", "hokusai_status",
                           "hokusai_proposal_identifier", "mlflow_run_id", IDEMPOTENCY_TAG):  # fmt: skip
            errors["extra_tags"] = f"Line {number}: {key.strip()} is set by the registration itself."
            break
        tags[key.strip()] = value.strip()
    if errors:
        raise RegistrationInputError(errors)
    return RegistrationRequest(
        model_uri=model_uri,
        model_name=model_name,
        token_id=token_id.upper(),
        metric_name=metric_name,
        baseline_value=baseline,
        proposal_identifier=proposal_identifier,
        extra_tags=tags,
        warnings=warnings,
    )


REGISTRATION_STEPS = [
    ("run", "Run exists and finished"),
    ("artifact", "Model artifact (MLmodel)"),
    ("metric", "Benchmark metric"),
    ("model_name", "Model name"),
    ("token_id", "Token id"),
    ("write", "Write permission"),
    ("register", "Register the version"),
    ("verify", "Verify what was registered"),
]


class RegistrationCheck(StepRunner):
    STEPS = REGISTRATION_STEPS
    DEADLINE_SECONDS = 60

    def __init__(self, registry_url: str, api_key: str, request: RegistrationRequest, *, idempotency_key: str):
        super().__init__(registry_url, api_key)
        self.request = request
        self.idempotency_key = idempotency_key
        self.kind, self.uri_parts = parse_model_uri(request.model_uri)
        self.run_id: str | None = None
        self.run_data: dict = {}
        self.experiment_id: str | None = None
        self.source = request.model_uri
        self.model_id: str | None = None
        self.write_proven = False
        self.version: str | None = None
        self.tags: dict[str, str] = {}

    def _json(self, response) -> dict:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    # --- pre-checks ------------------------------------------------------------------------
    def step_run(self) -> Diagnosis:
        if self.kind == "runs":
            self.run_id = self.uri_parts["run_id"]
        elif self.kind == "logged_model":
            response = self.client.get(f"{API}/logged-models/{self.uri_parts['model_id']}")
            if response.status_code == 404:
                return failed(
                    "MODEL_ARTIFACT_MISSING",
                    f"There is no logged model {self.uri_parts['model_id']}.",
                    response_evidence(response),
                )
            failure = self._http_failure(response)
            if failure:
                return failure
            info = self._json(response).get("model", {}).get("info", {})
            self.model_id, self.source, self.run_id = (
                info.get("model_id"),
                self.request.model_uri,
                info.get("source_run_id"),
            )
        elif self.kind == "model_version":
            response = self.client.get(
                f"{API}/model-versions/get", name=self.uri_parts["name"], version=self.uri_parts["version"]
            )
            if response.status_code == 404:
                return failed(
                    "MODEL_ARTIFACT_MISSING",
                    f"There is no version {self.uri_parts['version']} of {self.uri_parts['name']}.",
                )
            failure = self._http_failure(response)
            if failure:
                return failure
            version = self._json(response).get("model_version", {})
            self.run_id, self.source, self.model_id = (
                version.get("run_id") or None,
                version.get("source"),
                version.get("model_id") or None,
            )
        if not self.run_id:
            return passed("This model URI has no run behind it; the metric is not checked against a run.")
        response = self.client.get(f"{API}/runs/get", run_id=self.run_id)
        # MLflow's auth plugin answers a plain 403 when the run (so its experiment) does not exist.
        mlflow_denied = response.status_code == 403 and not response.text.lstrip().startswith("{")
        if response.status_code in (400, 404) or mlflow_denied:
            return failed(
                "RUN_NOT_FOUND",
                f"Run “{self.run_id}” does not exist in this registry, or this key cannot see it (HTTP {response.status_code}).",
                response_evidence(response),
                remedy=f"Copy the run id from the run you logged the model in (mlflow.active_run().info.run_id); “{self.run_id}” is not one.",
            )
        failure = self._http_failure(response)
        if failure:
            return failure
        run = self._json(response).get("run", {})
        self.run_data = run.get("data", {})
        self.experiment_id = run.get("info", {}).get("experiment_id")
        status = run.get("info", {}).get("status")
        if status != "FINISHED":
            return failed(
                "RUN_NOT_FOUND",
                f"Run “{self.run_id}” is {status}, not FINISHED.",
                remedy="End the run (mlflow.end_run()) before registering.",
            )
        return passed(f"Run “{self.run_id}” exists and finished.")

    def _logged_model_has_mlmodel(self, model_id: str) -> bool:
        response = self.client.get(
            f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/directories", artifact_directory_path=""
        )
        return response.ok and any(f.get("path") == "MLmodel" for f in self._json(response).get("files", []))

    def step_artifact(self) -> Diagnosis:
        if self.kind == "logged_model" or (self.kind == "model_version" and self.model_id):
            if self._logged_model_has_mlmodel(self.model_id):
                return passed(f"The logged model {self.model_id} has an MLmodel.")
            return failed("MODEL_ARTIFACT_MISSING", f"The logged model {self.model_id} has no MLmodel file.")
        if self.kind != "runs":
            return passed("The source is taken as given (MLmodel is checked after registration).")
        path = self.uri_parts["path"].strip("/")
        # MLflow 3 keeps log_model() output in a logged model, not under the run's artifacts: look there first.
        search = self.client.post(
            f"{API}/logged-models/search",
            {"experiment_ids": [self.experiment_id], "filter": f"source_run_id = '{self.run_id}'", "max_results": 50},
        )
        candidates = [m.get("info", {}) for m in self._json(search).get("models", [])] if search.ok else []
        for info in [m for m in candidates if m.get("name") == path]:
            if self._logged_model_has_mlmodel(info["model_id"]):
                self.model_id = info["model_id"]
                self.source = f"models:/{self.model_id}"
                return passed(
                    f"runs:/{self.run_id}/{path} is the run's logged model {self.model_id} (MLflow 3), which has an MLmodel; "
                    "the version is created from it so it loads.",
                    {"resolved_source": self.source},
                )
        listing = self.client.get(f"{API}/artifacts/list", run_id=self.run_id, path=path)
        failure = self._http_failure(listing)
        if failure:
            return failure
        if any(f.get("path", "").rsplit("/", 1)[-1] == "MLmodel" for f in self._json(listing).get("files", [])):
            return passed(f"runs:/{self.run_id}/{path} has an MLmodel.")
        return failed(
            "MODEL_ARTIFACT_MISSING",
            f"No MLmodel under runs:/{self.run_id}/{path}, and the run logged no model named “{path}”.",
            {"logged_models_of_run": [m.get("name") for m in candidates]},
        )

    def step_metric(self) -> Diagnosis:
        if not self.run_id:
            return passed("No run to read the metric from.")
        metrics = {m["key"]: m["value"] for m in self.run_data.get("metrics", [])}
        name = self.request.metric_name
        if name not in metrics:
            available = ", ".join(sorted(metrics)) or "none"
            return failed("METRIC_NOT_FOUND", f"Run “{self.run_id}” has no metric “{name}” (it has: {available}).")
        value = metrics[name]
        detail = f"{name} = {value} on the run; your baseline is {self.request.baseline_value}."
        return passed(detail, {"run_value": value, "baseline": self.request.baseline_value})

    def step_model_name(self) -> Diagnosis:
        name = self.request.model_name
        response = self.client.get(f"{API}/registered-models/get", name=name)
        if response.status_code == 404:
            return passed(f"“{name}” is a new name; the registration will create it.")
        failure = self._http_failure(response)
        if failure:
            return failure
        probe = self._probe_tag_write(name)
        if probe.status == StepStatus.FAIL and probe.cause == "WRITE_PERMISSION_DENIED":
            gateway_scope = probe.evidence.get("body", "").lstrip().startswith("{")
            if not gateway_scope:  # MLflow itself refused: the model belongs to another user
                return failed(
                    "MODEL_NAME_OWNED_BY_OTHER",
                    f"“{name}” already exists and belongs to another user.",
                    probe.evidence,
                )
        if probe.ok:
            self.write_proven = True
            return passed(f"“{name}” exists and this key can write it.")
        return probe

    def step_write(self) -> Diagnosis:
        """Proven on an existing model by the name step; for a new name, creating the registered model
        is the proof: a refused create writes nothing, and the model is needed anyway."""
        if self.write_proven:
            return passed("Proven on the existing model.")
        name = self.request.model_name
        created = self.client.post(f"{API}/registered-models/create", {"name": name})
        if created.status_code == 200 or "RESOURCE_ALREADY_EXISTS" in created.text:
            return passed(f"The key created the registered model “{name}”.")
        failure = self._http_failure(created, write=True)
        return failure or failed("UNEXPECTED_RESPONSE", f"(HTTP {created.status_code})", response_evidence(created))

    def step_token_id(self) -> Diagnosis:
        token = self.request.token_id
        response = self.client.get(
            f"{API}/model-versions/search", filter=f"tags.hokusai_token_id = '{token}'", max_results=20
        )
        if not response.ok:
            return diagnosis(
                StepStatus.WARN, "OK", f"Could not check whether {token} is already used (HTTP {response.status_code})."
            )
        others = sorted(
            {
                v["name"]
                for v in self._json(response).get("model_versions", [])
                if v.get("name") != self.request.model_name
            }
        )
        if others:
            return diagnosis(
                StepStatus.WARN, "OK",
                f"Token id {token} is already registered to another model ({', '.join(others)}). "
                "Registering continues; check this is intended.",
            )  # fmt: skip
        return passed(f"Token id {token} is not used by another model.")

    # --- the write and the verification ----------------------------------------------------
    def _existing_version(self) -> dict | None:
        response = self.client.get(
            f"{API}/model-versions/search",
            filter=f"name = '{self.request.model_name}' and tags.{IDEMPOTENCY_TAG} = '{self.idempotency_key}'",
        )
        versions = self._json(response).get("model_versions", []) if response.ok else []
        return versions[0] if versions else None

    def step_register(self) -> Diagnosis:
        name = self.request.model_name
        self.tags = self.request.version_tags(self.run_id)
        version = self._existing_version()  # a retry after a crash, or a double submit: reuse
        reused = version is not None
        if version is None:
            tags = [{"key": IDEMPOTENCY_TAG, "value": self.idempotency_key}]
            tags += [{"key": key, "value": value} for key, value in self.tags.items()]
            payload = {"name": name, "source": self.source, "tags": tags}
            if self.run_id:
                payload["run_id"] = self.run_id
            if self.model_id:
                payload["model_id"] = self.model_id
            response = self.client.post(f"{API}/model-versions/create", payload)
            failure = self._http_failure(response, write=True)
            if failure:
                return failure
            version = self._json(response).get("model_version", {})
        self.version = str(version.get("version"))
        waited = time.monotonic() + READY_POLL_SECONDS
        status = version.get("status")
        while status != "READY":
            if status == "FAILED_REGISTRATION" or time.monotonic() > waited:
                return failed(
                    "REGISTRATION_TIMEOUT", f"Version {self.version} is {status} after {READY_POLL_SECONDS} s."
                )
            time.sleep(0.5)
            status = (
                self._json(self.client.get(f"{API}/model-versions/get", name=name, version=self.version))
                .get("model_version", {})
                .get("status")
            )
        if reused:  # an earlier attempt may have died before its tags were complete
            stored = {t["key"]: t["value"] for t in version.get("tags", [])}
            for key, value in self.tags.items():
                if stored.get(key) != value:
                    response = self.client.post(
                        f"{API}/model-versions/set-tag",
                        {"name": name, "version": self.version, "key": key, "value": value},
                    )
                    failure = self._http_failure(response, write=True)
                    if failure:
                        return failure
        how = "found from an earlier attempt (no duplicate created)" if reused else "created"
        return passed(
            f"Version {self.version} of “{name}” {how}, READY, with {len(self.tags)} tags.",
            {"version": self.version, "source": self.source},
        )

    def step_verify(self) -> Diagnosis:
        name = self.request.model_name
        response = self.client.get(f"{API}/model-versions/get", name=name, version=self.version)
        failure = self._http_failure(response)
        if failure:
            return failure
        version = self._json(response).get("model_version", {})
        stored = {t["key"]: t["value"] for t in version.get("tags", [])}
        wrong = {k: (v, stored.get(k)) for k, v in self.tags.items() if stored.get(k) != v}
        if wrong:
            return failed("UNEXPECTED_RESPONSE", f"Tags read back differ: {wrong}.")
        mlmodel = self._fetch_mlmodel(name)
        if mlmodel is None:
            return failed(
                "MODEL_ARTIFACT_MISSING",
                f"Version {self.version} registered, but its MLmodel cannot be fetched: it will not load.",
            )
        return passed(
            f"Read back version {self.version}: all {len(self.tags)} tags match and its MLmodel loads through the registry.",
            {"tags": stored, "mlmodel_head": mlmodel[:200]},
        )

    def _fetch_mlmodel(self, name: str) -> str | None:
        uri = self._json(
            self.client.get(f"{API}/model-versions/get-download-uri", name=name, version=self.version)
        ).get("artifact_uri", "")
        if uri.startswith("mlflow-artifacts:/"):
            path = uri[len("mlflow-artifacts:/") :].strip("/")
            response = self.client.get(f"/api/2.0/mlflow-artifacts/artifacts/{quote(path)}/MLmodel")
            if response.ok and "flavors" in response.text:
                return response.text
        if self.model_id:
            response = self.client.get(
                f"/ajax-api/2.0/mlflow/logged-models/{self.model_id}/artifacts/files", artifact_file_path="MLmodel"
            )
            if response.ok and "flavors" in response.text:
                return response.text
        return None


def python_snippet(
    *, registry_url: str, request: RegistrationRequest, source: str, run_id: str | None, model_id: str | None
) -> str:
    """The exact Python that reproduces this registration with bare MLflow; the key comes from the
    environment (HOKUSAI_API_KEY) and is never written into the snippet."""
    tags = request.version_tags(run_id)
    lines = [
        "import os",
        "",
        "from mlflow import MlflowClient",
        "",
        "# Your key stays in the environment: export HOKUSAI_API_KEY=hk_... before running this.",
        'os.environ["MLFLOW_TRACKING_TOKEN"] = os.environ["HOKUSAI_API_KEY"]',
        f"client = MlflowClient(tracking_uri={registry_url!r}, registry_uri={registry_url!r})",
        f"name = {request.model_name!r}",
        "if not client.search_registered_models(filter_string=f\"name = '{name}'\"):",
        "    client.create_registered_model(name)",
        "version = client.create_model_version(",
        "    name=name,",
        f"    source={source!r},",
    ]
    if run_id:
        lines.append(f"    run_id={run_id!r},")
    if model_id:
        lines.append(f"    model_id={model_id!r},")
    lines += [")", f"tags = {json.dumps(tags, indent=4, sort_keys=False)}", "for key, value in tags.items():"]
    lines += [
        "    client.set_model_version_tag(name, version.version, key, value)",
        'print(f"registered {name} version {version.version}")',
    ]
    return "\n".join(lines) + "\n"
