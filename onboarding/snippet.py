"""The exact Python that reproduces a registration with bare MLflow (`MlflowClient`), shown on the result
page and tested by running it against the devstack."""

import json

from .registration_input import RegistrationRequest


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
