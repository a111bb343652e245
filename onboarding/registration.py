"""The registration engine: a `RegistrationRequest` carried out the way `register_tokenized_model` does,
every precondition checked first (run, artifact, metric, name, token id, write permission), then the
version created (idempotently) and read back. Each kind of model URI has its own resolver.

Input rules live in `onboarding.registration_input`, the reproducible snippet in `onboarding.snippet`."""

import time

from .checks import StepRunner
from .diagnosis import Diagnosis, StepStatus, diagnosis, failed, passed
from .registration_input import IDEMPOTENCY_TAG, RegistrationRequest, parse_model_uri
from .registry_client import json_body, response_evidence, version_tags

READY_POLL_SECONDS = 20
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

    # --- pre-checks ------------------------------------------------------------------------
    # One resolver per kind of model URI: each finds the run (if any), the source to register and the
    # logged model, or answers with the failure. "artifacts" URIs are taken as given.
    def _resolve_runs(self) -> Diagnosis | None:
        self.run_id = self.uri_parts["run_id"]
        return None

    def _resolve_logged_model(self) -> Diagnosis | None:
        model_id = self.uri_parts["model_id"]
        response = self.client.get_logged_model(model_id)
        if response.status_code == 404:
            return failed(
                "MODEL_ARTIFACT_MISSING", f"There is no logged model {model_id}.", response_evidence(response)
            )
        failure = self._http_failure(response)
        if failure:
            return failure
        info = json_body(response).get("model", {}).get("info", {})
        self.model_id, self.run_id = info.get("model_id"), info.get("source_run_id")
        return None

    def _resolve_model_version(self) -> Diagnosis | None:
        name, number = self.uri_parts["name"], self.uri_parts["version"]
        response = self.client.get_model_version(name, number)
        if response.status_code == 404:
            return failed("MODEL_ARTIFACT_MISSING", f"There is no version {number} of {name}.")
        failure = self._http_failure(response)
        if failure:
            return failure
        version = json_body(response).get("model_version", {})
        self.run_id, self.source = version.get("run_id") or None, version.get("source")
        self.model_id = version.get("model_id") or None
        if not self.model_id and (self.source or "").startswith("models:/m-"):
            # MLflow 3 answers a version made from a logged model with source models:/m-… and no model_id;
            # creating a version from that source without the id is refused (400 INVALID_PARAMETER_VALUE).
            self.model_id = self.source.removeprefix("models:/")
        return None

    def step_run(self) -> Diagnosis:
        resolver = {
            "runs": self._resolve_runs,
            "logged_model": self._resolve_logged_model,
            "model_version": self._resolve_model_version,
        }.get(self.kind)
        failure = resolver() if resolver else None
        if failure:
            return failure
        if not self.run_id:
            return passed("This model URI has no run behind it; the metric is not checked against a run.")
        response = self.client.get_run(self.run_id)
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
        run = json_body(response).get("run", {})
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
        response = self.client.logged_model_files(model_id)
        return response.ok and any(f.get("path") == "MLmodel" for f in json_body(response).get("files", []))

    def step_artifact(self) -> Diagnosis:
        if self.kind == "logged_model" or (self.kind == "model_version" and self.model_id):
            if self._logged_model_has_mlmodel(self.model_id):
                return passed(f"The logged model {self.model_id} has an MLmodel.")
            return failed("MODEL_ARTIFACT_MISSING", f"The logged model {self.model_id} has no MLmodel file.")
        if self.kind != "runs":
            return passed("The source is taken as given (MLmodel is checked after registration).")
        path = self.uri_parts["path"].strip("/")
        # MLflow 3 keeps log_model() output in a logged model, not under the run's artifacts: look there first.
        search = self.client.search_logged_models(experiment_ids=[self.experiment_id], run_id=self.run_id)
        candidates = [m.get("info", {}) for m in json_body(search).get("models", [])] if search.ok else []
        for info in [m for m in candidates if m.get("name") == path]:
            if self._logged_model_has_mlmodel(info["model_id"]):
                self.model_id = info["model_id"]
                self.source = f"models:/{self.model_id}"
                return passed(
                    f"runs:/{self.run_id}/{path} is the run's logged model {self.model_id} (MLflow 3), which has an MLmodel; "
                    "the version is created from it so it loads.",
                    {"resolved_source": self.source},
                )
        listing = self.client.list_artifacts(self.run_id, path)
        failure = self._http_failure(listing)
        if failure:
            return failure
        if any(f.get("path", "").rsplit("/", 1)[-1] == "MLmodel" for f in json_body(listing).get("files", [])):
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
        response = self.client.get_registered_model(name)
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
        created = self.client.create_registered_model(name)
        if created.status_code == 200 or "RESOURCE_ALREADY_EXISTS" in created.text:
            return passed(f"The key created the registered model “{name}”.")
        failure = self._http_failure(created, write=True)
        return failure or failed("UNEXPECTED_RESPONSE", f"(HTTP {created.status_code})", response_evidence(created))

    def step_token_id(self) -> Diagnosis:
        token = self.request.token_id
        response = self.client.search_model_versions(f"tags.hokusai_token_id = '{token}'", max_results=20)
        if not response.ok:
            return diagnosis(
                StepStatus.WARN, "TOKEN_ID_UNCHECKED", f"(HTTP {response.status_code} when searching for {token}.)"
            )
        others = sorted(
            {
                v["name"]
                for v in json_body(response).get("model_versions", [])
                if v.get("name") != self.request.model_name
            }
        )
        if others:
            return diagnosis(
                StepStatus.WARN,
                "TOKEN_ID_IN_USE",
                f"{token} is on versions of {len(others)} other model(s).",
                evidence={"other_models": len(others)},  # a count: their names are other developers'
            )
        return passed(f"Token id {token} is not used by another model.")

    # --- the write and the verification ----------------------------------------------------
    def _existing_version(self) -> dict | None:
        response = self.client.search_model_versions(
            f"name = '{self.request.model_name}' and tags.{IDEMPOTENCY_TAG} = '{self.idempotency_key}'"
        )
        versions = json_body(response).get("model_versions", []) if response.ok else []
        return versions[0] if versions else None

    def step_register(self) -> Diagnosis:
        name = self.request.model_name
        self.tags = self.request.version_tags(self.run_id)
        version = self._existing_version()  # a retry after a crash, or a double submit: reuse
        reused = version is not None
        if version is None:
            response = self.client.create_model_version(
                name=name,
                source=self.source,
                tags={IDEMPOTENCY_TAG: self.idempotency_key, **self.tags},
                run_id=self.run_id,
                model_id=self.model_id,
            )
            failure = self._http_failure(response, write=True)
            if failure:
                return failure
            version = json_body(response).get("model_version", {})
        self.version = str(version.get("version"))
        waited = time.monotonic() + READY_POLL_SECONDS
        status = version.get("status")
        while status != "READY":
            if status == "FAILED_REGISTRATION" or time.monotonic() > waited:
                return failed(
                    "REGISTRATION_TIMEOUT", f"Version {self.version} is {status} after {READY_POLL_SECONDS} s."
                )
            time.sleep(0.5)
            status = json_body(self.client.get_model_version(name, self.version)).get("model_version", {}).get("status")
        if reused:  # an earlier attempt may have died before its tags were complete
            stored = version_tags(version)
            for key, value in self.tags.items():
                if stored.get(key) != value:
                    response = self.client.set_model_version_tag(name, self.version, key, value)
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
        response = self.client.get_model_version(name, self.version)
        failure = self._http_failure(response)
        if failure:
            return failure
        stored = version_tags(json_body(response).get("model_version", {}))
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
        uri = json_body(self.client.get_download_uri(name, self.version)).get("artifact_uri", "")
        if uri.startswith("mlflow-artifacts:/"):
            path = uri[len("mlflow-artifacts:/") :].strip("/")
            response = self.client.artifact_file(f"{path}/MLmodel")
            if response.ok and "flavors" in response.text:
                return response.text
        if self.model_id:
            response = self.client.logged_model_file(self.model_id, "MLmodel")
            if response.ok and "flavors" in response.text:
                return response.text
        return None
