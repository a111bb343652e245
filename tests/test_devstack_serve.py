"""`python -m devstack serve` (the registry under `make run`) stops at once when asked, even during
MLflow's start-up (it used to wait for the start to finish), and leaves no MLflow process behind."""

import os
import signal
import subprocess
import sys
import time

import pytest

from devstack.server import free_port
from tests.conftest import ROOT
from tests.portal_processes import processes_with


@pytest.mark.slow
def test_a_stop_during_start_up_is_answered_at_once_and_leaves_nothing(tmp_path):
    data = tmp_path / "devstack"
    env = {**os.environ, "PORTAL_TEST_MARKER": str(data)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "devstack", "serve", "--port", str(free_port()), "--data", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = f"PORTAL_TEST_MARKER={data}"
    deadline = time.monotonic() + 30
    while len(processes_with(marker)) < 2:  # the wrapper and MLflow's server are up, not yet answering
        assert time.monotonic() < deadline, "MLflow's server did not start"
        time.sleep(0.05)
    asked = time.monotonic()
    serve.send_signal(signal.SIGTERM)
    serve.wait(15)
    stopped_in = time.monotonic() - asked
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == []
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop during start-up"
