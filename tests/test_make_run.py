"""`make run` on the embedded defaults, used as a person would: the banner means ready, a killed
worker is restarted while the portal keeps answering (and its check is run again, not lost), and
Ctrl-C with a check running lets the check finish against a registry that is stopped last.

The registry is reached through a proxy that adds 0.25 s to every request, so a check takes a few
seconds: long enough to kill a worker, or press Ctrl-C, in the middle of one."""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
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
            # One terminal, five processes: each line of theirs names its process.
            for name in ("registry", "worker", "beat", "web", "ready"):
                assert re.search(rf"^{name} +\| \S", portal.log, re.M), f"no line prefixed {name!r}"
            assert re.search(r"^worker +\| .*celery@\S+ ready\.", portal.log, re.M)
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
            # The worker's warm shutdown lines reached the terminal after the stop began (the relay drains them).
            assert re.search(r"^worker +\| .*(worker: Warm shutdown|Stopping)", log, re.M), log[-3000:]
            print(f"make run: Ctrl-C with a check running: check passed, everything stopped in {stopped_in:.1f} s")
        finally:
            portal.kill_everything()


def test_killing_the_supervisor_leaves_nothing_behind(tmp_path):
    """Every program of both process sets is started through lifeline, and a process started so dies with its
    parent even when the parent is SIGKILLed (nothing is left holding a port). The parent here is a small
    Python process, not a whole `make run`: lifeline, not the programs, is what this proves."""
    from hokusai_portal import supervise

    for mode in ("development", "production"):
        commands = [line for line in supervise.config(mode, tmp_path).splitlines() if line.startswith("command=")]
        assert commands and all("-m hokusai_portal.lifeline " in line for line in commands), mode
    port = free_port()
    child = f"import socket, time; s = socket.create_server(('127.0.0.1', {port})); time.sleep(120)"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            f"subprocess.Popen([sys.executable, '-m', 'hokusai_portal.lifeline', sys.executable, '-c', {child!r}]); "
            "time.sleep(120)",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 20
        while not _answers(port):
            assert time.monotonic() < deadline, "the child never listened"
            time.sleep(0.05)
        parent.kill()
        parent.wait(5)
        deadline = time.monotonic() + 5
        while _answers(port):
            assert time.monotonic() < deadline, "the child outlived its SIGKILLed parent"
            time.sleep(0.05)
    finally:
        parent.kill()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
