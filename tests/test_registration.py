"""Model registration end to end: form -> broker -> real worker -> the devstack MLflow registry.
Tags are read back from MLflow itself, never from the portal's database."""

import os
import subprocess
import sys
import threading

import pytest
import requests
from django.urls import reverse

from onboarding import services
from onboarding.models import CheckRun, Registration
from onboarding.registration import RegistrationCheck
from onboarding.registration_input import IDEMPOTENCY_TAG, registration_validate
from onboarding.snippet import python_snippet
from tests.conftest import ROOT, key_appears_in_database, wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/2.0/mlflow"


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    return celery_worker


def mlflow_get(devstack, key, path, **params):
    return requests.get(
        f"{devstack.url}{API}/{path}", params=params, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def ready_to_register(user, devstack, key, settings):
    """A developer with a saved key and a passed connectivity check."""
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    services.api_key_save(user=user, raw_key=key)
    run = services.connectivity_check_start(user=user)
    wait_for_run(run.pk)


def form_data(devstack, **overrides):
    data = {
        "model_uri": f"runs:/{devstack.state()['run_id']}/model",
        "model_name": "LSCOR_Test_Model",
        "token_id": "lscor",
        "metric_name": "accuracy",
        "baseline_value": "0.92",
        "proposal_identifier": "",
        "extra_tags": "team=growth",
    }
    data.update(overrides)
    return data


def submit(client, user, data) -> CheckRun:
    client.force_login(user)
    response = client.post(reverse("onboarding:registration"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return wait_for_run(int(response["Location"].rstrip("/").rsplit("/", 1)[-1]), timeout=90)


def causes(run: CheckRun) -> dict[str, str]:
    return {step.name: step.cause for step in run.steps.all()}


def test_the_lscor_run_registers_with_exactly_hokusais_tags(client, alice, devstack, devstack_keys, settings):
    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    run = submit(client, alice, form_data(devstack, model_name="LSCOR_Registered"))
    assert run.status == CheckRun.Status.PASSED, causes(run)
    registration = run.registration
    state = devstack.state()
    assert registration.source == f"models:/{state['logged_model_id']}"  # runs:/ resolved to the logged model

    version = mlflow_get(
        devstack, devstack_keys["writer"], "model-versions/get", name="LSCOR_Registered", version=registration.version
    ).json()["model_version"]
    tags = {t["key"]: t["value"] for t in version["tags"]}
    assert tags.pop(IDEMPOTENCY_TAG)
    assert tags == {
        "hokusai_token_id": "LSCOR",
        "benchmark_metric": "accuracy",
        "benchmark_value": "0.92",
        "hokusai_status": "registered",
        "hokusai_proposal_identifier": "LSCOR",
        "mlflow_run_id": state["run_id"],
        "team": "growth",
    }
    assert version["status"] == "READY"
    assert version["source"] == f"models:/{state['logged_model_id']}"

    page = client.get(reverse("onboarding:check_run", args=[run.pk])).content.decode()
    assert f'data-testid="version">{registration.version}<' in page
    assert "os.environ[&quot;HOKUSAI_API_KEY&quot;]" in page
    assert devstack_keys["writer"] not in page
    assert key_appears_in_database(devstack_keys["writer"]) == []
    # The wizard is done.
    assert 'class="done"' in client.get(reverse("onboarding:registration")).content.decode()


def test_the_seeds_call_with_test123_is_run_not_found_naming_the_run(client, alice, devstack, devstack_keys, settings):
    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    run = submit(client, alice, form_data(devstack, model_uri="runs:/test123/model", model_name="LSCOR_Seed_Call"))
    assert run.cause == "RUN_NOT_FOUND"
    assert "test123" in run.steps.get(name="run").message
    assert (
        mlflow_get(devstack, devstack_keys["writer"], "registered-models/get", name="LSCOR_Seed_Call").status_code
        == 404
    )


def test_reader_key_is_denied_before_anything_is_written(client, alice, devstack, devstack_keys, settings):
    ready_to_register(alice, devstack, devstack_keys["reader"], settings)  # its connectivity check fails at write...
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])  # ...so pass it with the writer key once,
    wait_for_run(services.connectivity_check_start(user=alice).pk)
    services.api_key_save(user=alice, raw_key=devstack_keys["reader"])  # then register with the reader key
    run = submit(client, alice, form_data(devstack, model_name="LSCOR_Reader_Attempt"))
    assert run.cause == "WRITE_PERMISSION_DENIED"
    assert causes(run)["register"] == "SKIPPED"
    assert (
        mlflow_get(devstack, devstack_keys["writer"], "registered-models/get", name="LSCOR_Reader_Attempt").status_code
        == 404
    )


def test_a_run_without_a_model_is_model_artifact_missing(client, alice, devstack, devstack_keys, settings):
    headers = {"Authorization": f"Bearer {devstack_keys['writer']}"}
    experiment_id = devstack.state()["experiment_id"]
    created = requests.post(
        f"{devstack.url}{API}/runs/create", json={"experiment_id": experiment_id}, headers=headers, timeout=10
    ).json()
    run_id = created["run"]["info"]["run_id"]
    requests.post(
        f"{devstack.url}{API}/runs/log-metric",
        json={"run_id": run_id, "key": "accuracy", "value": 0.9, "timestamp": 0},
        headers=headers,
        timeout=10,
    )
    requests.post(
        f"{devstack.url}{API}/runs/update", json={"run_id": run_id, "status": "FINISHED"}, headers=headers, timeout=10
    )
    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    run = submit(client, alice, form_data(devstack, model_uri=f"runs:/{run_id}/model", model_name="LSCOR_No_Model"))
    assert run.cause == "MODEL_ARTIFACT_MISSING"
    assert "No MLmodel under" in run.steps.get(name="artifact").message


def test_a_missing_metric_is_metric_not_found(client, alice, devstack, devstack_keys, settings):
    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    run = submit(client, alice, form_data(devstack, metric_name="f1", model_name="LSCOR_F1"))
    assert run.cause == "METRIC_NOT_FOUND"
    assert "it has: accuracy" in run.steps.get(name="metric").message


def test_a_name_created_by_another_user_is_model_name_owned_by_other(client, alice, devstack, devstack_keys, settings):
    requests.post(
        f"{devstack.url}{API}/registered-models/create",
        json={"name": "LSCOR_Owned_Elsewhere"},
        headers={"Authorization": f"Bearer {devstack_keys['other']}"},
        timeout=10,
    )
    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    run = submit(client, alice, form_data(devstack, model_name="LSCOR_Owned_Elsewhere"))
    assert run.cause == "MODEL_NAME_OWNED_BY_OTHER"
    versions = mlflow_get(
        devstack, devstack_keys["other"], "model-versions/search", filter="name = 'LSCOR_Owned_Elsewhere'"
    ).json()
    assert versions.get("model_versions", []) == []


def test_two_concurrent_submissions_give_one_version(client, alice, devstack, devstack_keys, settings):
    from django.db import connection
    from django.test import Client

    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    data = form_data(devstack, model_name="LSCOR_Double_Click")
    locations = []

    def post():
        browser = Client()
        browser.force_login(alice)
        locations.append(browser.post(reverse("onboarding:registration"), data)["Location"])
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(locations)) == 1  # both clicks land on the same registration
    run = wait_for_run(int(locations[0].rstrip("/").rsplit("/", 1)[-1]), timeout=90)
    assert run.status == CheckRun.Status.PASSED
    assert Registration.objects.count() == 1
    versions = mlflow_get(
        devstack, devstack_keys["writer"], "model-versions/search", filter="name = 'LSCOR_Double_Click'"
    ).json()["model_versions"]
    assert len(versions) == 1


def test_a_retried_registration_reuses_the_version_it_made(devstack, devstack_keys):
    """A worker killed after creating the version, retried: the idempotency tag finds it."""
    request = registration_validate(
        model_uri=f"runs:/{devstack.state()['run_id']}/model",
        model_name="LSCOR_Retried",
        token_id="LSCOR",
        metric_name="accuracy",
        baseline_value="0.92",
    )
    first = RegistrationCheck(devstack.url, devstack_keys["writer"], request, idempotency_key="retry-test-1")
    first.run()
    again = RegistrationCheck(devstack.url, devstack_keys["writer"], request, idempotency_key="retry-test-1")
    results = again.run()
    assert again.version == first.version == "1"
    assert "found from an earlier attempt" in next(r for r in results if r.name == "register").message
    versions = mlflow_get(
        devstack, devstack_keys["writer"], "model-versions/search", filter="name = 'LSCOR_Retried'"
    ).json()["model_versions"]
    assert len(versions) == 1


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("model_uri", "s3://bucket/model", "mlflow-artifacts:/&lt;path&gt;"),
        ("model_name", "team/model", "cannot contain"),
        ("token_id", "-LSCOR", "does not start or end with a hyphen"),
        ("token_id", "L" * 65, "at most 64"),
        ("baseline_value", "nan", "finite number"),
        ("baseline_value", "inf", "finite number"),
        ("baseline_value", "abc", "finite number"),
        ("extra_tags", "hokusai_status=hacked", "set by the registration itself"),
    ],
)
def test_bad_input_gets_a_message_and_nothing_is_saved(
    client, alice, devstack, devstack_keys, settings, field, value, says
):
    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    client.force_login(alice)
    response = client.post(reverse("onboarding:registration"), form_data(devstack, **{field: value}))
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not Registration.objects.exists()


def test_a_rate_metric_outside_0_1_is_a_warning_not_an_error():
    request = registration_validate(
        model_uri="runs:/abc/model", model_name="M", token_id="t-1", metric_name="accuracy", baseline_value="92"
    )
    assert request.token_id == "T-1"
    assert "outside that range" in request.warnings[0]


def test_registration_waits_for_a_passed_connectivity_check(client, alice):
    client.force_login(alice)
    assert client.get(reverse("onboarding:registration"))["Location"] == reverse("onboarding:key")


@pytest.mark.parametrize("source_kind", ["runs", "logged_model", "model_version"])
def test_every_snippet_the_portal_renders_runs_against_the_devstack(devstack, devstack_keys, source_kind):
    """The snippet is built from what the engine resolved for each kind of model URI (as the result page
    builds it), then run with bare MLflow: it registers a version with the same tags."""
    state = devstack.state()
    uri = {
        "runs": f"runs:/{state['run_id']}/model",
        "logged_model": f"models:/{state['logged_model_id']}",
        "model_version": "models:/Snippet_base/1",
    }[source_kind]
    if source_kind == "model_version":  # a version to point at
        base = registration_validate(
            model_uri=f"models:/{state['logged_model_id']}",
            model_name="Snippet_base",
            token_id="LSCOR",
            metric_name="accuracy",
            baseline_value="0.92",
        )
        RegistrationCheck(devstack.url, devstack_keys["writer"], base, idempotency_key="snippet-base").run()
    request = registration_validate(
        model_uri=uri,
        model_name=f"Portal_{source_kind}",
        token_id="LSCOR",
        metric_name="accuracy",
        baseline_value="0.92",
    )
    engine = RegistrationCheck(devstack.url, devstack_keys["writer"], request, idempotency_key=f"snip-{source_kind}")
    results = engine.run()
    assert {r.name: r.status for r in results}["verify"] == "pass", [r.evidence for r in results if r.status == "fail"]
    name = f"Snippet_{source_kind}"
    snippet = python_snippet(
        registry_url=devstack.url,
        request=registration_validate(
            model_uri=uri, model_name=name, token_id="LSCOR", metric_name="accuracy", baseline_value="0.92"
        ),
        source=engine.source,
        run_id=engine.run_id,
        model_id=engine.model_id,
    )
    assert f"source={engine.source!r}" in snippet
    assert ("run_id=" in snippet) == bool(engine.run_id) and ("model_id=" in snippet) == bool(engine.model_id)
    assert devstack_keys["writer"] not in snippet
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(HOKUSAI_API_KEY=devstack_keys["writer"], MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    result = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"registered {name} version 1" in result.stdout
    version = mlflow_get(devstack, devstack_keys["writer"], "model-versions/get", name=name, version="1").json()[
        "model_version"
    ]
    assert {t["key"]: t["value"] for t in version["tags"]} == request.version_tags(engine.run_id)
    assert version["source"] == engine.source


def test_register_command_registers_and_prints_json(devstack, devstack_keys):
    import json

    env = {k: v for k, v in os.environ.items() if k != "HOKUSAI_API_KEY"}
    env["HOKUSAI_API_KEY"] = devstack_keys["writer"]
    args = [
        sys.executable,
        "manage.py",
        "register",
        "--registry",
        devstack.url,
        "--json",
        "--model-uri",
        f"runs:/{devstack.state()['run_id']}/model",
        "--model-name",
        "LSCOR_CLI",
        "--token-id",
        "LSCOR",
        "--metric",
        "accuracy",
        "--baseline",
        "0.92",
    ]
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    assert payload["result"]["version"] == "1"
    assert [s["name"] for s in payload["steps"]][-2:] == ["register", "verify"]
    assert devstack_keys["writer"] not in result.stdout + result.stderr
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["result"]["version"] == "1"  # idempotent


def test_a_token_id_already_on_another_model_is_its_own_warning(devstack, devstack_keys):
    """Was status WARN with cause OK (so nothing could group or count it); it names no other model."""

    def register(name):
        request = registration_validate(
            model_uri=f"runs:/{devstack.state()['run_id']}/model",
            model_name=name,
            token_id="SHARED-TOKEN",
            metric_name="accuracy",
            baseline_value="0.92",
        )
        return {
            r.name: r
            for r in RegistrationCheck(
                devstack.url, devstack_keys["writer"], request, idempotency_key=f"token-{name}"
            ).run()
        }

    assert register("Token_First")["token_id"].cause == "OK"
    second = register("Token_Second")
    assert (second["token_id"].status, second["token_id"].cause) == ("warn", "TOKEN_ID_IN_USE")
    assert "Token_First" not in second["token_id"].message + str(second["token_id"].evidence)
    assert second["register"].status == "pass"  # a warning does not stop the registration


def test_an_invalid_token_id_carries_its_cause_code(client, alice, devstack, devstack_keys, settings):
    ready_to_register(alice, devstack, devstack_keys["writer"], settings)
    client.force_login(alice)
    page = client.post(reverse("onboarding:registration"), form_data(devstack, token_id="-bad")).content.decode()
    assert 'data-field="token_id" data-cause="TOKEN_ID_INVALID"' in page
    assert 'data-cause="required"' not in client.post(reverse("onboarding:registration"), {}).content.decode()


def test_the_run_picker_lists_what_the_key_sees_with_metrics_and_logged_model(
    client, alice, devstack, devstack_keys, settings
):
    """Seen: the run id was nowhere in the portal; a newcomer had to call the registry's REST API."""
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    client.force_login(alice)
    no_key = client.get(reverse("onboarding:run_picker"), headers={"HX-Request": "true"}).content.decode()
    assert "No API key is saved" in no_key
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    state = devstack.state()
    html = client.get(reverse("onboarding:run_picker"), headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in html and state["run_id"] in html and "lscor-baseline" in html
    assert (
        f'data-fill-model-uri="models:/{state["logged_model_id"]}" data-fill-metric="accuracy" data-fill-value="0.93"'
        in html
    )
    searched = client.get(reverse("onboarding:run_picker") + "?q=no-such-run", headers={"HX-Request": "true"})
    assert "No finished run matches “no-such-run”" in searched.content.decode()
    by_id = client.get(reverse("onboarding:run_picker") + f"?q={state['run_id']}").content.decode()
    assert state["run_id"] in by_id and "<html" in by_id  # without htmx: a page of its own
    hostile = client.get(reverse("onboarding:run_picker") + "?q=' OR 1=1 --&page_token=not-a-token")
    assert hostile.status_code == 200 and 'role="alert"' in hostile.content.decode()  # said, not a 500
    services.api_key_save(user=alice, raw_key=devstack_keys["revoked"])
    revoked = client.get(reverse("onboarding:run_picker"), headers={"HX-Request": "true"}).content.decode()
    assert 'data-cause="AUTH_KEY_REJECTED"' in revoked
