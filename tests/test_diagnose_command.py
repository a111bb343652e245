"""`manage.py diagnose`: the same engine from a shell; key from HOKUSAI_API_KEY or stdin, never argv."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def diagnose(*args: str, key: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HOKUSAI_API_KEY"}
    if key is not None:
        env["HOKUSAI_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "manage.py", "diagnose", *args],
        cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


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
