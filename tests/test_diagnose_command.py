"""`manage.py diagnose`: the same engine from a shell; key from HOKUSAI_API_KEY or stdin, never argv."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, SEED_KEY
from tests.fault_servers import ca_signed_context, http_server


def diagnose(
    *args: str, key: str | None = None, stdin: str | None = None, env_extra: dict | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HOKUSAI_API_KEY"} | (env_extra or {})
    if key is not None:
        env["HOKUSAI_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "manage.py", "diagnose", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_writer_key_from_the_environment_passes_with_exit_0(devstack, devstack_keys):
    result = diagnose("--registry", devstack.url, "--json", key=devstack_keys["writer"])
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    assert [step["status"] for step in payload["steps"]] == ["pass"] * 8
    assert set(payload["steps"][0]) == {"name", "status", "cause", "message", "remedy", "duration_ms"}
    assert devstack_keys["writer"] not in result.stdout + result.stderr


def test_reader_key_from_stdin_fails_with_exit_1_and_the_cause(devstack, devstack_keys):
    result = diagnose("--registry", devstack.url, stdin=devstack_keys["reader"] + "\n")
    assert result.returncode == 1
    assert "WRITE_PERMISSION_DENIED" in result.stdout
    assert "how to fix:" in result.stdout
    assert devstack_keys["reader"] not in result.stdout + result.stderr


def test_no_key_is_a_clear_error(devstack):
    result = diagnose("--registry", devstack.url, stdin="")
    assert result.returncode == 1
    assert "No API key: set HOKUSAI_API_KEY, or pipe the key on standard input" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_registry_url_is_refused():
    result = diagnose("--registry", "ftp://example.com", key="hk_test_" + "a" * 32)
    assert result.returncode != 0
    assert "--registry must be an http:// or https:// URL" in result.stderr


def test_a_certificate_expiring_soon_is_a_warning_and_the_check_goes_on(tmp_path):
    """A certificate from the CA the portal is told to trust, 5 days left: the TLS step warns
    (TLS_CERT_EXPIRING), and the HTTP steps trust the same CA and still run."""
    context, ca_file = ca_signed_context(tmp_path, days_valid=5)
    health = {"/health": (200, b"OK", {"Content-Type": "text/plain"})}
    with http_server(
        routes=health, status=404, body=b"{}", headers={"Content-Type": "application/json"}, tls_context=context
    ) as url:
        result = diagnose(
            "--registry",
            url,
            "--json",
            key=SEED_KEY,
            env_extra={"HOKUSAI_REGISTRY_CA_BUNDLE": ca_file},
        )
    steps = {step["name"]: step for step in json.loads(result.stdout)["steps"]}
    assert (steps["tls"]["status"], steps["tls"]["cause"]) == ("warn", "TLS_CERT_EXPIRING"), steps["tls"]
    assert "expires in 5 days" in steps["tls"]["message"]
    assert steps["health"]["status"] == "pass", steps  # a warning does not stop the check
    assert SEED_KEY not in result.stdout + result.stderr
