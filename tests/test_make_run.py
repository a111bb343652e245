"""`make run` on the embedded defaults, used as a person would: the banner means ready, a killed
worker is restarted while the portal keeps answering (and its check is run again, not lost), and
Ctrl-C with a check running lets the check finish against a registry that is stopped last.

The registry is reached through a proxy that adds 0.25 s to every request, so a check takes a few
seconds: long enough to kill a worker, or press Ctrl-C, in the middle of one."""

import json
import os
import signal
import sqlite3
import time

import pytest
import requests

from devstack.server import free_port
from onboarding import lifecycle
from tests.conftest import ROOT
from tests.fault_servers import slow_proxy
from tests.portal_processes import PortalUser, ProcessSet, wait_probed

REGISTRY_DELAY_SECONDS = 0.25


def run_row(var_dir, run_id: int) -> dict:
    with sqlite3.connect(var_dir / "portal.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM onboarding_checkrun WHERE id = ?", (run_id,)).fetchone())


@pytest.mark.slow
def test_make_run_is_ready_survives_a_killed_worker_and_stops_in_order(tmp_path):
    portal_port, registry_port = free_port(), free_port()
    with slow_proxy(f"http://127.0.0.1:{registry_port}", REGISTRY_DELAY_SECONDS) as registry_via_proxy:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "HOKUSAI_REGISTRY_URL", "DEBUG", "PORTAL_ENV")
        }
        env.update(
            PORTAL_PORT=str(portal_port),
            REGISTRY_PORT=str(registry_port),
            HOKUSAI_REGISTRY_URL=registry_via_proxy,
            STATUS_PROBE_SECONDS="2",
            STATUS_CACHE_SECONDS="0",
        )
        portal = ProcessSet(tmp_path, ["make", "run"], env)
        base = f"http://127.0.0.1:{portal_port}"
        try:
            # Ready means ready: when the banner shows, every part answers.
            ready_after = portal.wait_for_log("Ready in", timeout=300)
            health = requests.get(f"{base}/healthz", timeout=10)
            assert health.status_code == 200, health.text
            assert health.json()["checks"]["workers"]["alive"] >= 1
            assert requests.get(f"http://127.0.0.1:{registry_port}/health", timeout=5).status_code == 200
            banner = portal.log[portal.log.index("Ready in") :]
            assert f"Hokusai Portal: {base}/" in banner and "sign in as developer" in banner
            assert portal.log.count("spawned: 'registry'") == 1, "the registry was started more than once"
            print(f"make run: banner {ready_after:.1f} s after start")

            # Beat sends the status probes; the worker runs them with the devstack's reader key.
            assert wait_probed(base, timeout=60)["status"]["indicator"] == "none"

            credentials = json.loads((portal.var_dir / "demo-credentials.json").read_text())
            assert set(credentials["keys"]) == {"writer", "reader", "revoked", "admin"}
            developer = PortalUser(base)
            developer.sign_in(**credentials["users"]["developer"])
            developer.save_key(credentials["keys"]["writer"])
            first = developer.start_check()
            assert developer.wait_for_state(first, {"passed", "failed", "lost"}, 30)[:2] == ("passed", "OK")

            # SIGKILL the worker in the middle of a check: the portal keeps answering, a new worker
            # is started, and the check is run again from the start instead of being lost.
            interrupted = developer.start_check()
            developer.wait_for_state(interrupted, {"running"}, 20)
            time.sleep(REGISTRY_DELAY_SECONDS * 3)  # a few steps in
            (worker,) = portal.pids("celery -A hokusai_portal worker")
            os.kill(worker, signal.SIGKILL)
            killed_at = time.monotonic()
            answered = []
            # The page says "Running" for a worker that is dead until the lease goes stale and the sweep
            # queues the check again: bounded by the lease plus a sweep, far inside the run's own deadline.
            while developer.run_state(interrupted)[0] == "running" and developer.run_attempt(interrupted) < 2:
                answered.append(requests.get(f"{base}/accounts/login/", timeout=5).status_code)
                assert time.monotonic() - killed_at < 30, "the dead worker's check still shows Running"
            untrue_for = time.monotonic() - killed_at
            assert untrue_for <= lifecycle.LEASE_SECONDS + 2, (
                f"'Running' shown {untrue_for:.1f} s after the worker died"
            )
            assert answered and set(answered) == {200}  # the portal kept answering meanwhile
            status, cause, _ = developer.wait_for_state(interrupted, {"passed", "failed", "lost"}, 45)
            recovered_after = time.monotonic() - killed_at
            assert (status, cause) == ("passed", "OK")
            assert run_row(portal.var_dir, interrupted)["attempt"] == 2
            assert "exited: worker (terminated by SIGKILL; not expected)" in portal.log
            (new_worker,) = portal.pids("celery -A hokusai_portal worker")
            assert new_worker != worker
            print(
                f"make run: after the worker's SIGKILL the page showed Running {untrue_for:.1f} s; the check "
                f"passed on its second attempt {recovered_after:.1f} s after the kill"
            )

            # Ctrl-C with a check running: web first, the worker finishes the check, the registry stops last.
            last = developer.start_check()
            developer.wait_for_state(last, {"running"}, 20)
            stopped_in = portal.stop(signal.SIGINT, timeout=90)
            row = run_row(portal.var_dir, last)
            assert (row["status"], row["cause"]) == ("passed", "OK"), row
            log = portal.log
            assert log.index("stopped: web") < log.index("stopped: worker") < log.index("stopped: registry")
            print(f"make run: Ctrl-C with a check running: check passed, everything stopped in {stopped_in:.1f} s")
        finally:
            portal.kill_everything()


@pytest.mark.slow
def test_killing_the_supervisor_leaves_nothing_behind(tmp_path):
    portal_port, registry_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "HOKUSAI_REGISTRY_URL")
    }
    env.update(PORTAL_PORT=str(portal_port), REGISTRY_PORT=str(registry_port), PYTHONPATH=str(ROOT))
    portal = ProcessSet(tmp_path, ["make", "run"], env)
    try:
        portal.wait_for_log("Ready in", timeout=300)
        assert len(portal.pids("")) >= 6  # supervisord, registry + MLflow + uvicorn, worker, beat, gunicorn
        os.kill(portal.supervisor_pid(), signal.SIGKILL)
        portal.wait_gone(timeout=30)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{registry_port}/health", timeout=2)
    finally:
        portal.kill_everything()
