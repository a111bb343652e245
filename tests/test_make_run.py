"""`make run` on the embedded defaults: serves the login page, writes the demo credentials and
leaves no process behind after Ctrl-C (SIGINT to its process group, as a terminal sends it)."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from devstack.server import free_port
from tests.conftest import ROOT


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries `marker` (the run's private PORTAL_VAR_DIR)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_make_run_serves_the_portal_and_stops_cleanly_on_ctrl_c(tmp_path):
    var_dir = tmp_path / "var"
    portal_port, registry_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "HOKUSAI_REGISTRY_URL")
    }
    env.update(PORTAL_VAR_DIR=str(var_dir), PORTAL_PORT=str(portal_port), REGISTRY_PORT=str(registry_port))
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        make = subprocess.Popen(
            ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        statuses = {}
        while time.monotonic() < deadline and make.poll() is None:
            for url in (f"http://127.0.0.1:{portal_port}/accounts/login/", f"http://127.0.0.1:{registry_port}/health"):
                try:
                    statuses[url] = requests.get(url, timeout=2).status_code
                except requests.RequestException:
                    statuses[url] = None
            if set(statuses.values()) == {200}:
                break
            time.sleep(1)
        assert set(statuses.values()) == {200}, log_path.read_text()[-4000:]
        assert "Sign in" in requests.get(f"http://127.0.0.1:{portal_port}/accounts/login/", timeout=5).text

        credentials = json.loads((var_dir / "demo-credentials.json").read_text())
        assert credentials["portal_url"] == f"http://127.0.0.1:{portal_port}/"
        assert credentials["registry_url"] == f"http://127.0.0.1:{registry_port}"
        assert set(credentials["users"]) == {"developer", "support", "manager"}
        assert set(credentials["keys"]) == {"writer", "reader", "revoked", "admin"}
        # The demo writer key really works against the registry make run started.
        response = requests.get(
            f"{credentials['registry_url']}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "lscor-lead-scoring"},
            headers={"Authorization": f"Bearer {credentials['keys']['writer']}"},
            timeout=10,
        )
        assert response.status_code == 200
        # And the demo developer can sign in.
        session = requests.Session()
        login_url = f"http://127.0.0.1:{portal_port}/accounts/login/"
        session.get(login_url, timeout=5)
        developer = credentials["users"]["developer"]
        signed_in = session.post(
            login_url,
            data={
                "username": developer["username"],
                "password": developer["password"],
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login_url},
            timeout=10,
        )
        assert signed_in.url.endswith("/onboarding/key/")  # a new developer starts at the Key step
    finally:
        os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            raise
    deadline = time.monotonic() + 10
    while processes_with(f"PORTAL_VAR_DIR={var_dir}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(f"PORTAL_VAR_DIR={var_dir}") == [], "orphan processes after Ctrl-C"
