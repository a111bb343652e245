"""`make production`: gunicorn (2 workers) + 2 Celery worker processes + beat on PostgreSQL, with Redis
or RabbitMQ as the broker, used over HTTP as a developer would. A worker process is SIGKILLed in the
middle of a check: the run is taken over and passes on its second attempt, never left running.

Needs the services this machine kind runs (PostgreSQL on 5432, Redis on 6379, RabbitMQ on 5672);
each test skips, naming the one that does not answer."""

import os
import signal
import socket
import subprocess
import time
import uuid

import psycopg
import pytest
import requests

from devstack.server import free_port
from tests.conftest import ROOT
from tests.fault_servers import slow_proxy
from tests.portal_processes import POSTGRES, PortalUser, ProcessSet, production_env, wait_healthy, wait_probed

BROKERS = {"redis": ("redis://127.0.0.1:6379/7", 6379), "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672)}
pytestmark = pytest.mark.slow


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def production_database():
    if not _answers(5432):
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    name = f"portal_production_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_worker_pid(database_url: str, run_id: int) -> int:
    with psycopg.connect(database_url) as db:
        (worker,) = db.execute("SELECT worker FROM onboarding_checkrun WHERE id = %s", (run_id,)).fetchone()
    return int(worker.rsplit(":", 1)[1])


@pytest.mark.parametrize("broker", list(BROKERS))
def test_the_production_set_serves_checks_and_survives_a_killed_worker(
    broker, tmp_path, production_database, devstack, devstack_keys
):
    broker_url, broker_port = BROKERS[broker]
    if not _answers(broker_port):
        pytest.skip(f"{broker} is not answering on 127.0.0.1:{broker_port}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with slow_proxy(devstack.url, 0.25) as registry:
        portal = ProcessSet(
            tmp_path,
            ["make", "production"],
            {
                **production_env(production_database, broker_url, port, registry),
                "STATUS_PROBE_API_KEY": devstack_keys["reader"],
                "STATUS_PROBE_SECONDS": "2",
                "STATUS_CACHE_SECONDS": "0",
            },
        )
        try:
            started = time.monotonic()
            health = wait_healthy(base, timeout=180, workers=2)
            print(
                f"{broker}: production set healthy {time.monotonic() - started:.1f} s after start: {health['checks']}"
            )
            assert len(portal.pids("gunicorn")) == 3  # the master and its 2 workers
            assert len(portal.pids("celery -A hokusai_portal worker")) == 2
            assert len(portal.pids("celery -A hokusai_portal beat")) == 1
            # Static files are collected and served with hashed names under DEBUG off.
            login = requests.get(f"{base}/accounts/login/", timeout=10)
            assert login.status_code == 200 and "portal." in login.text and ".css" in login.text

            # Beat sends the status probes; a worker runs them with the operator's service key.
            probed = wait_probed(base, timeout=60)
            assert probed["status"]["indicator"] == "none", probed["status"]

            developer = PortalUser(base)
            developer.sign_up(f"dev-{uuid.uuid4().hex[:6]}@example.com", "a long enough passphrase 42")
            developer.save_key(devstack_keys["writer"])
            first = developer.start_check()
            assert developer.wait_for_state(first, {"passed", "failed", "lost"}, 30)[:2] == ("passed", "OK")

            interrupted = developer.start_check()
            developer.wait_for_state(interrupted, {"running"}, 20)
            time.sleep(0.75)  # a few steps in
            os.kill(run_worker_pid(production_database, interrupted), signal.SIGKILL)
            killed_at = time.monotonic()
            status, cause, _ = developer.wait_for_state(interrupted, {"passed", "failed", "lost"}, 45)
            assert (status, cause) == ("passed", "OK")
            print(
                f"{broker}: SIGKILLed worker's check passed on another attempt {time.monotonic() - killed_at:.1f} s later"
            )
            with psycopg.connect(production_database) as db:
                (attempt,) = db.execute(
                    "SELECT attempt FROM onboarding_checkrun WHERE id = %s", (interrupted,)
                ).fetchone()
            assert attempt == 2
            assert "exited: worker-" in portal.log and "(terminated by SIGKILL; not expected)" in portal.log
            wait_healthy(base, timeout=30, workers=2)  # the killed one was restarted

            os.kill(portal.supervisor_pid(), signal.SIGKILL)
            portal.wait_gone(timeout=30)
        finally:
            portal.kill_everything()


def test_make_production_refuses_the_embedded_defaults_naming_what_is_missing(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS")
    }
    env["PORTAL_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(["make", "production"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    for missing in (
        "SECRET_KEY must be set",
        "FIELD_ENCRYPTION_KEYS must be set",
        "DATABASE_URL must name",
        "CELERY_BROKER_URL must name",
    ):
        assert missing in result.stderr, result.stderr[-2000:]
