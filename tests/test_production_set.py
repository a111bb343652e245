"""`make production`: gunicorn (2 workers) + 2 Celery worker processes + beat on PostgreSQL, with Redis
or RabbitMQ as the broker, used over HTTP as a developer would. A worker process is SIGKILLed in the
middle of a check: the run is taken over and passes on its second attempt, never left running.

Needs the services this machine kind runs (PostgreSQL on 5432, Redis on 6379, RabbitMQ on 5672);
each test skips, naming the one that does not answer."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

import psycopg
import pytest
import redis
import requests
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from devstack.server import free_port
from tests.conftest import ROOT
from tests.fault_servers import slow_proxy
from tests.otlp_receiver import otlp_receiver
from tests.portal_processes import POSTGRES, PortalUser, ProcessSet, production_env, wait_healthy, wait_probed

BROKERS = {"redis": 6379, "rabbitmq": 5672}
METRICS_TOKEN = "production-set-metrics-token-0123456789"


def passed_checks(base: str) -> float:
    """hokusai_checks_total of passed connectivity checks, as one scrape of /metrics says."""
    response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text[:500]
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "hokusai_checks_total"
        and sample.labels == {"kind": "connectivity", "status": "passed", "cause": "OK"}
    )


def private_broker_url(broker: str) -> str:
    """A broker of this test's own: a Redis database that is empty and is not the suite's (a session worker
    consuming the same one would take this set's tasks), or RabbitMQ's default vhost (the suite never uses it)."""
    if broker == "rabbitmq":
        return "amqp://guest:guest@127.0.0.1:5672//"
    suite = settings.CELERY_BROKER_URL
    # The suite's base database and one per test process (conftest): a process whose worker has not started yet
    # has an empty one too.
    processes = int(os.getenv("PYTEST_XDIST_WORKER_COUNT", "1"))
    taken = {str(db) for db in range(0, 2 + processes)} if suite.startswith("redis://") else set()
    for db in range(15, 0, -1):
        if str(db) not in taken and redis.Redis(host="127.0.0.1", port=6379, db=db).dbsize() == 0:
            return f"redis://127.0.0.1:6379/{db}"
    pytest.skip("every Redis database here holds data: none is free for the production set")


@pytest.fixture
def broker_url(broker):
    if not _answers(BROKERS[broker]):
        pytest.skip(f"{broker} is not answering on 127.0.0.1:{BROKERS[broker]}")
    url = private_broker_url(broker)
    yield url
    if url.startswith("redis://"):  # free again for the next run
        redis.Redis.from_url(url).flushdb()


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
    broker, broker_url, tmp_path, production_database, devstack, devstack_keys
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with slow_proxy(devstack.url, 0.25) as registry, otlp_receiver() as collector:
        portal = ProcessSet(
            tmp_path,
            ["make", "production"],
            {
                **production_env(production_database, broker_url, port, registry),
                "STATUS_PROBE_API_KEY": devstack_keys["reader"],
                "STATUS_PROBE_SECONDS": "2",
                "STATUS_CACHE_SECONDS": "0",
                "METRICS_TOKEN": METRICS_TOKEN,
                "LOG_FORMAT": "json",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_BSP_SCHEDULE_DELAY": "200",
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
            address = f"dev-{uuid.uuid4().hex[:6]}@example.com"
            developer.sign_up(address, "a long enough passphrase 42")
            with psycopg.connect(production_database) as db:  # the emailed link is proved in test_signup.py
                db.execute("UPDATE account_emailaddress SET verified = true WHERE email = %s", [address])
            developer.save_key(devstack_keys["writer"])
            first = developer.start_check()
            assert developer.wait_for_state(first, {"passed", "failed", "lost"}, 30)[:2] == ("passed", "OK")
            # A worker process counted it; whichever gunicorn worker answers the scrape adds every process up.
            scrapes = [passed_checks(base) for _ in range(6)]
            assert scrapes == [1] * 6, scrapes
            assert_one_trace(collector, broker)

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
            secrets = [
                devstack_keys["writer"],
                devstack_keys["reader"],
                METRICS_TOKEN,
                *(portal.env[name] for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")),
            ]
            assert_json_log_lines(portal.log, run_ids={first, interrupted}, secrets=secrets, broker=broker)
        finally:
            portal.kill_everything()


def assert_one_trace(collector, broker: str) -> None:
    """The check's POST, its Celery task and the worker's registry calls share one trace id."""
    deadline = time.monotonic() + 20
    while True:
        posts = [s for s in collector.spans if s["name"] == "POST /onboarding/connectivity/"]
        trace = [s for s in collector.spans if posts and s["trace_id"] == posts[0]["trace_id"]]
        services = {s["service"] for s in trace}
        registry_calls = [s for s in trace if s["scope"].endswith("requests") and s["service"].endswith("worker")]
        if posts and {"hokusai-portal-web", "hokusai-portal-worker"} <= services and registry_calls:
            break
        assert time.monotonic() < deadline, f"no whole trace: {[(s['service'], s['name']) for s in trace]}"
        time.sleep(0.3)
    names = {s["name"] for s in trace}
    assert "apply_async/onboarding.check_run" in names and "run/onboarding.check_run" in names, names
    print(f"{broker}: one trace {posts[0]['trace_id']}: {len(trace)} spans, {len(registry_calls)} registry calls")


SUPERVISOR_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARN|CRIT|ERRO) ")


def assert_json_log_lines(log: str, *, run_ids: set[int], secrets: list[str], broker: str) -> None:
    """LOG_FORMAT=json: every line of the portal's processes is a JSON object with the ids; lines about a
    check carry its run id; no key or token in any line, JSON or not."""
    records, other = [], []
    for line in log.splitlines():
        for secret in secrets:
            assert secret not in line, f"a secret in the log: {line[:200]}"
        if line.startswith("{"):
            records.append(json.loads(line))
        elif line.strip() and not SUPERVISOR_LINE.match(line):
            other.append(line)
    fields = {"time", "level", "logger", "message", "request_id", "user_id", "run_id", "trace_id", "process"}
    assert records and all(fields <= set(record) for record in records)
    logged_runs = {record["run_id"] for record in records if record["run_id"]}
    assert {str(run_id) for run_id in run_ids} <= logged_runs, logged_runs
    # The worker's lines about a check carry the id of the web request that queued it (the task's headers).
    worker_runs = [r for r in records if r["process"] == "worker" and r["run_id"] == str(min(run_ids))]
    assert worker_runs and all(r["request_id"] for r in worker_runs), worker_runs[:3]
    assert any(r["trace_id"] for r in worker_runs), worker_runs[:3]  # OpenTelemetry is on in this set
    assert {record["process"] for record in records} >= {"web", "worker"}  # beat logs at WARNING: quiet
    access = [r for r in records if r["logger"] in ("gunicorn.access", "uvicorn.access")]  # WSGI or ASGI workers
    assert access and all(r["process"] == "web" for r in access)
    # Not JSON: make's own lines, migrate's progress, Celery's banners and Python's warnings printed before
    # logging is set up; never a traceback.
    assert not [line for line in other if "Traceback" in line], other[:20]
    print(f"{broker}: {len(records)} JSON log lines, {len(other)} other lines (banners), runs {sorted(logged_runs)}")


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
