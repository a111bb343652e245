"""docs/ci/hokusai_check.py, the README's CI recipe, run as CI would: a separate Python process with only the
portal's address and a token, against the live portal (a real HTTP server), a real worker and the devstack."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from onboarding import services as onboarding_services
from tests.test_api import token_for

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "ci" / "hokusai_check.py"
pytestmark = pytest.mark.django_db(transaction=True)


def run_script(portal_url: str, token: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOKUSAI_PORTAL_URL": portal_url, "HOKUSAI_PORTAL_TOKEN": token}
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def test_the_ci_script_passes_fails_with_cause_and_remedy_and_refuses(
    live_server, live_worker, alice, dave, devstack_keys, registry_url
):
    onboarding_services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    passed = run_script(live_server.url, token_for(alice, "checks:run", "checks:read"))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Check passed (OK)" in passed.stdout
    onboarding_services.api_key_save(user=dave, raw_key=devstack_keys["reader"])
    failed = run_script(live_server.url, token_for(dave, "checks:run", "checks:read"))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "WRITE_PERMISSION_DENIED" in failed.stdout and "How to fix:" in failed.stdout
    refused = run_script(live_server.url, token_for(dave, "checks:read"))
    assert refused.returncode == 2 and "403 SCOPE_MISSING" in refused.stderr and "checks:run" in refused.stderr
    for secret in (devstack_keys["writer"], devstack_keys["reader"]):
        assert secret not in passed.stdout + failed.stdout
