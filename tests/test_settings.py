"""Settings come from the environment; production settings pass Django's deploy checks."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.conftest import ROOT


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "PORTAL_ENV")
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


PRODUCTION_ENV = {
    "PORTAL_ENV": "production",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "portal.example.com",
}


def real_secrets() -> dict[str, str]:
    return {
        "SECRET_KEY": Fernet.generate_key().decode() + Fernet.generate_key().decode(),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }


def test_check_deploy_is_clean_in_production_mode_with_real_secrets(tmp_path):
    result = run_manage(
        "check", "--deploy", "--fail-level", "DEBUG", **PRODUCTION_ENV, **real_secrets(), PORTAL_VAR_DIR=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    "missing, message",
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"FIELD_ENCRYPTION_KEYS": ""}, "FIELD_ENCRYPTION_KEYS must be set"),
        ({"DATABASE_URL": ""}, "DATABASE_URL must name a PostgreSQL database"),
        ({"DATABASE_URL": "sqlite:///portal.sqlite3"}, "DATABASE_URL must name a PostgreSQL database"),
        ({"CELERY_BROKER_URL": ""}, "CELERY_BROKER_URL must name a Redis or RabbitMQ broker"),
        ({"CELERY_BROKER_URL": "filesystem://"}, "CELERY_BROKER_URL must name a Redis or RabbitMQ broker"),
    ],
)
def test_production_mode_refuses_embedded_defaults_and_missing_secrets_naming_each(tmp_path, missing, message):
    result = run_manage("check", **{**PRODUCTION_ENV, **real_secrets(), **missing}, PORTAL_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert f"PORTAL_ENV=production refuses to start: {message}" in result.stderr
    assert not list(tmp_path.glob("dev-*")), "production mode generated a secret instead of refusing"


def test_debug_is_off_unless_asked_for(tmp_path):
    code = "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
    development = run_manage("shell", "-c", code, PORTAL_VAR_DIR=str(tmp_path))
    assert development.stdout.split()[-3:] == ["False", "False", "False"], development.stderr
    production = run_manage("shell", "-c", code, **PRODUCTION_ENV, **real_secrets(), PORTAL_VAR_DIR=str(tmp_path))
    assert production.stdout.split()[-3:] == ["False", "True", "True"], production.stderr
    asked = run_manage("shell", "-c", code, DEBUG="1", PORTAL_VAR_DIR=str(tmp_path))
    assert asked.stdout.split()[-3] == "True", asked.stderr


def test_embedded_defaults_use_sqlite_and_the_filesystem_broker_under_var(tmp_path):
    code = "from django.conf import settings as s; print(s.DATABASES['default']['NAME']); print(s.CELERY_BROKER_URL); print(s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in']); print(s.CELERY_BROKER_TRANSPORT_OPTIONS['polling_interval'])"
    result = run_manage("shell", "-c", code, PORTAL_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    database, broker, folder, polling = result.stdout.split()[-4:]
    assert database == str(tmp_path / "portal.sqlite3")
    assert broker == "filesystem://"
    assert folder == str(tmp_path / "broker" / "in")
    assert float(polling) <= 0.1
