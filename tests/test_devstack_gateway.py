"""The devstack registry behaves like Hokusai's gateway, over real HTTP."""

import pytest
import requests

from tests.conftest import SEED_KEY

API = "/api/2.0/mlflow"


def headers(key: str, form: str = "bearer") -> dict:
    return {
        "bearer": {"Authorization": f"Bearer {key}"},
        "apikey": {"Authorization": f"ApiKey {key}"},
        "x-api-key": {"X-API-Key": key},
    }[form]


def read_experiment(url: str, key: str, form: str = "bearer") -> requests.Response:
    return requests.get(
        f"{url}{API}/experiments/get-by-name",
        params={"experiment_name": "lscor-lead-scoring"},
        headers=headers(key, form),
        timeout=10,
    )


@pytest.mark.parametrize("form", ["bearer", "apikey", "x-api-key"])
def test_it_accepts_the_three_header_forms(devstack, devstack_keys, form):
    response = read_experiment(devstack.url, devstack_keys["writer"], form)
    assert response.status_code == 200
    assert response.json()["experiment"]["name"] == "lscor-lead-scoring"


def test_writer_key_creates_a_model_version_from_the_seeded_run(devstack, devstack_keys):
    state = devstack.state()
    auth = headers(devstack_keys["writer"])
    name = "gateway-test-writer"
    created = requests.post(
        f"{devstack.url}{API}/registered-models/create", json={"name": name}, headers=auth, timeout=10
    )
    assert created.status_code == 200, created.text
    version = requests.post(
        f"{devstack.url}{API}/model-versions/create",
        json={
            "name": name,
            "source": f"models:/{state['logged_model_id']}",
            "run_id": state["run_id"],
            "model_id": state["logged_model_id"],
        },
        headers=auth,
        timeout=10,
    )
    assert version.status_code == 200, version.text
    assert version.json()["model_version"]["version"] == "1"


def test_seeded_run_has_the_accuracy_metric(devstack, devstack_keys):
    run_id = devstack.state()["run_id"]
    response = requests.get(
        f"{devstack.url}{API}/runs/get", params={"run_id": run_id}, headers=headers(devstack_keys["reader"]), timeout=10
    )
    run = response.json()["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {"key": "accuracy", "value": 0.93} in [
        {"key": m["key"], "value": m["value"]} for m in run["data"]["metrics"]
    ]


def test_reader_key_reads_but_gets_forbidden_on_a_write(devstack, devstack_keys):
    assert read_experiment(devstack.url, devstack_keys["reader"]).status_code == 200
    response = requests.post(
        f"{devstack.url}{API}/registered-models/create",
        json={"name": "reader-should-not-create"},
        headers=headers(devstack_keys["reader"], "x-api-key"),
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json()["error_code"] == "FORBIDDEN"


@pytest.mark.parametrize("key_name", ["revoked", "made-up"])
def test_revoked_and_unknown_keys_get_401_json(devstack, devstack_keys, key_name):
    key = devstack_keys.get(key_name, SEED_KEY)
    response = read_experiment(devstack.url, key)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error_code"] == "INVALID_API_KEY"


def test_registry_lock_refuses_non_admin_keys(locked_devstack, devstack_keys):
    response = read_experiment(locked_devstack.url, devstack_keys["writer"])
    assert response.status_code == 403
    assert response.json()["error_code"] == "REGISTRY_ADMIN_REQUIRED"
    assert read_experiment(locked_devstack.url, devstack_keys["admin"]).status_code == 200


def test_basic_auth_still_works_for_the_mlflow_admin(devstack):
    state = devstack.state()
    response = requests.get(
        f"{devstack.url}{API}/registered-models/search",
        auth=(state["admin_username"], state["admin_password"]),
        timeout=10,
    )
    assert response.status_code == 200
    wrong = requests.get(f"{devstack.url}{API}/registered-models/search", auth=("admin", "wrong-password"), timeout=10)
    assert wrong.status_code == 401


def test_keys_are_stored_hashed(devstack, devstack_keys):
    """Each key is stored as its SHA-256 (so the gateway can still find it), never in clear or encoded."""
    import base64
    import hashlib
    import json

    raw = (devstack.data_dir / "keys.json").read_text()
    stored = json.loads(raw)
    for role, key in devstack_keys.items():
        digest = hashlib.sha256(key.encode()).hexdigest()
        assert digest in stored, role  # found by its hash
        assert key not in raw and base64.b64encode(key.encode()).decode() not in raw and key[::-1] not in raw
    assert all(len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) for digest in stored)
