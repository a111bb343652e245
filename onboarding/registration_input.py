"""A registration request: the form's (or the CLI's) fields validated into a `RegistrationRequest`, with
one message per bad field, and the tags it will set. Pure: no registry, no database.

The engine that carries a request out is `onboarding.registration`; the snippet that reproduces it with
bare MLflow is `onboarding.snippet`."""

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field

from hokusai_portal.query import key_values

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
IDEMPOTENCY_TAG = "hokusai_idempotency_key"
RESERVED_TAGS = (
    "hokusai_token_id",
    "benchmark_metric",
    "benchmark_value",
    "hokusai_status",
    "hokusai_proposal_identifier",
    "mlflow_run_id",
    IDEMPOTENCY_TAG,
)


# Input errors with a cause code of the diagnosis contract (shown as data-cause, printed by the CLI).
INPUT_CAUSES = {"token_id": "TOKEN_ID_INVALID"}


class RegistrationInputError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.causes = {name: INPUT_CAUSES[name] for name in errors if name in INPUT_CAUSES}


def model_name_error(name: str) -> str | None:
    """The one rule for a registered model's name (the connectivity form and the registration share it)."""
    if len(name) > 256:
        return "A model name has at most 256 characters."
    if MODEL_NAME_FORBIDDEN & set(name):
        return "A model name cannot contain / \\ : % ? # or line breaks."
    return None


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
    *,
    model_uri: str,
    model_name: str,
    token_id: str,
    metric_name: str,
    baseline_value: str,
    proposal_identifier: str = "",
    extra_tags: str = "",
) -> RegistrationRequest:
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
    elif model_name_error(model_name):
        errors["model_name"] = model_name_error(model_name)
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
    try:
        tags = key_values(extra_tags, reserved=RESERVED_TAGS)
    except ValueError as error:
        errors["extra_tags"] = str(error)
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
