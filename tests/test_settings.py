"""Settings come from the environment; production settings pass Django's deploy checks."""

import os
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.conftest import ROOT


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_debug_off_and_real_secrets(tmp_path):
    result = run_manage(
        "check", "--deploy", "--fail-level", "DEBUG",
        DEBUG="0",
        SECRET_KEY=Fernet.generate_key().decode() + Fernet.generate_key().decode(),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="portal.example.com",
        PORTAL_VAR_DIR=str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_debug_off_without_a_secret_key_refuses_to_start(tmp_path):
    result = run_manage("check", DEBUG="0", SECRET_KEY="", PORTAL_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_embedded_defaults_use_sqlite_and_the_filesystem_broker_under_var(tmp_path):
    code = "from django.conf import settings as s; print(s.DATABASES['default']['NAME']); print(s.CELERY_BROKER_URL); print(s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in']); print(s.CELERY_BROKER_TRANSPORT_OPTIONS['polling_interval'])"
    result = run_manage("shell", "-c", code, PORTAL_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    database, broker, folder, polling = result.stdout.split()[-4:]
    assert database == str(tmp_path / "portal.sqlite3")
    assert broker == "filesystem://"
    assert folder == str(tmp_path / "broker" / "in")
    assert float(polling) <= 0.1
