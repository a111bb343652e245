"""Shared fixtures: a real devstack registry, a real Celery worker, users of each role.

Everything here is real: the MLflow server is started once per session on a free port, the
worker is a `celery worker` process consuming the same broker as the tests (filesystem or Redis)."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from accounts.roles import Role
from accounts.services import user_create
from devstack.server import Devstack, free_port
from onboarding import environment as doctor_environment
from tests.doctor_machine import Machine

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
SEED_PLAN = Path(__file__).parent / "fixtures" / "lscor-investigation-plan.md"
# The live-looking (made-up) key the seed plan carries: tests read it from the fixture, never spell it.
SEED_KEY = re.search(r"hk_live_[A-Za-z0-9]+", SEED_PLAN.read_text()).group(0)


@pytest.fixture(scope="session")
def devstack(tmp_path_factory):
    """The seeded devstack registry (writer, reader, revoked, other and admin keys; the LSCOR run)."""
    stack = Devstack(tmp_path_factory.mktemp("devstack"), port=free_port())
    stack.start()
    try:
        stack.seed()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def devstack_keys(devstack) -> dict[str, str]:
    return devstack.state()["keys"]


@pytest.fixture(scope="session")
def locked_devstack(devstack):
    """A second server on the same data, started with the registry lock on."""
    stack = Devstack(devstack.data_dir, port=free_port(), registry_lock=True)
    stack.start()
    yield stack
    stack.stop()


def database_url_for_worker() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, devstack, tmp_path_factory):
    """A real `celery worker` process (threads pool) on the test database and the test broker."""
    from hokusai_portal.celery import app

    with django_db_blocker.unblock():
        app.control.purge()  # nothing left over from an earlier run
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_worker(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        HOKUSAI_REGISTRY_URL=devstack.url,
        PORTAL_VAR_DIR=str(settings.VAR_DIR),
        PYTHONUNBUFFERED="1",
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hokusai_portal",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while b" ready." not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    process.log_path = log_path
    yield process
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def live_worker(celery_worker, transactional_db):
    """The worker, once its heartbeat is in the database (a transactional test's flush removes the row;
    the worker writes it again within a second)."""
    from onboarding.models import WorkerHeartbeat

    deadline = time.monotonic() + 15
    while not WorkerHeartbeat.objects.exclude(pid=0).exists():
        assert time.monotonic() < deadline, "the worker wrote no heartbeat within 15 s"
        time.sleep(0.1)
    return celery_worker


@pytest.fixture
def registry_url(settings, devstack):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    return devstack.url


def _make_user(username: str, role: Role | None):
    if role is None:
        from django.contrib.auth import get_user_model

        return get_user_model().objects.create_user(username=username, password=PASSWORD)
    return user_create(username=username, email=f"{username}@example.com", password=PASSWORD, role=role)


@pytest.fixture
def alice(db):
    """A third-party developer."""
    return _make_user("alice", Role.DEVELOPER)


@pytest.fixture
def bob(db):
    """A support engineer."""
    return _make_user("bob", Role.SUPPORT)


@pytest.fixture
def charlie(db):
    """A manager."""
    return _make_user("charlie", Role.MANAGER)


@pytest.fixture
def outsider(db):
    """Signed in, but in no role group."""
    return _make_user("mallory", None)


@pytest.fixture(scope="session")
def basic_auth_registry(tmp_path_factory):
    """MLflow's own basic-auth app with no gateway: it wants a username and password, not a key."""
    stack = Devstack(tmp_path_factory.mktemp("basic-auth-registry"), port=free_port(), gateway=False)
    stack.start()
    yield stack
    stack.stop()


def wait_for_run(run_id: int, timeout: float = 30):
    """Poll the database until the worker has finished the run."""
    from onboarding.models import CheckRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = CheckRun.objects.get(pk=run_id)
        if run.is_finished:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} not finished after {timeout}s (status {run.status})")


def key_appears_in_database(key: str) -> list[str]:
    """Every model field, of every row, that holds `key` in clear text."""
    from django.apps import apps

    hits = []
    for model in apps.get_models():
        for row in model.objects.all().values():
            for field_name, value in row.items():
                if key in str(value):
                    hits.append(f"{model._meta.label}.{field_name}")
    return hits


@pytest.fixture
def dave(db):
    """A second third-party developer."""
    return _make_user("dave", Role.DEVELOPER)


@pytest.fixture
def published_task_messages():
    """Every Celery message the test process publishes (headers and body), to check what tasks carry."""
    from celery.signals import before_task_publish

    messages = []

    def record(sender=None, body=None, headers=None, **kwargs):
        messages.append(repr(headers) + repr(body))

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits never leak from one test into another."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _no_session_left_on_the_test_database(django_db_setup, django_db_blocker):
    """A connection another thread of this process opened (seen: one left idle after the browser test's
    live server answered a check-run poll) keeps PostgreSQL from dropping the test database at the end;
    end such sessions first."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(monkeypatch, tmp_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(20_000)
        yield page
        page.screenshot(path=str(tmp_path / "last.png"))
        browser.close()


def objects_owned_by(user) -> dict:
    """One object of every kind a URL addresses, owned by `user`: a failed check with a step, the
    investigation they reported from it (a finding, an action item, their report) and a passed
    registration, an environment report. Returns the ids by URL converter name (and by URL name where a converter is shared)."""
    from django.utils import timezone

    from onboarding.models import CheckRun, CheckStep, EnvironmentCheck, EnvironmentReport, Registration
    from triage.models import ActionItem, Finding, Investigation, Report

    now = timezone.now()
    common = {"user": user, "registry_url": "http://127.0.0.1:1", "key_masked": "hk_test_abcd…yz"}
    run = CheckRun.objects.create(
        **common, status="failed", cause="AUTH_KEY_REJECTED", deadline_at=now, finished_at=now
    )
    CheckStep.objects.create(
        run=run, position=1, name="auth", title="Authentication", status="fail", cause=run.cause, message="rejected"
    )
    investigation = Investigation.objects.create(title="Owned", severity="medium", reporter=user, created_at=now)
    registered = CheckRun.objects.create(
        **common, kind="registration", status="passed", cause="OK", deadline_at=now, finished_at=now
    )
    registration = Registration.objects.create(
        user=user,
        check_run=registered,
        model_uri="runs:/abc/model",
        model_name=f"Owned_By_{user.pk}",
        token_id="A",
        metric_name="accuracy",
        baseline_value=0.9,
        idempotency_key=f"owned-{user.pk}",
        version="1",
        source="models:/m-1",
    )
    environment = EnvironmentReport.objects.create(
        user=user, doctor_version="1.0.0", ok=False, key_fingerprint="0badc0de"
    )
    EnvironmentCheck.objects.create(
        report=environment, position=1, name="api key", status="fail", cause="API_KEY_MISSING", message="No key."
    )
    from status.models import Component as StatusComponent

    status_component, _ = StatusComponent.objects.get_or_create(slug="registry", defaults={"name": "Registry API"})
    from hokusai_portal import crypto
    from notifications.services import unsubscribe_token
    from webhooks.models import Delivery, Endpoint, Message
    from webhooks.services import secret_new

    hook = Endpoint.objects.create(
        url="https://hooks.example/in", event_types=["check.failed"], secret_ciphertext=crypto.encrypt(secret_new())
    )
    delivery = Delivery.objects.create(
        endpoint=hook,
        message=Message.objects.create(msg_id=f"msg_owned_{user.pk}", event_type="check.failed", payload={}),
        status="failed",
    )

    return {
        "webhooks:endpoint": hook.pk,
        "webhooks:endpoint_action": hook.pk,
        "webhooks:redeliver_range": hook.pk,
        "webhooks:redeliver_one": delivery.pk,
        "token": unsubscribe_token(user_id=user.pk, investigation_id=investigation.pk),
        "slug": status_component.slug,
        "report_id": environment.pk,
        "run_id": run.pk,
        "registration_id": registration.pk,
        "pk": investigation.pk,
        "triage:finding_status": Finding.objects.create(investigation=investigation, title="A finding").pk,
        "triage:action_toggle": ActionItem.objects.create(investigation=investigation, title="An action").pk,
        "triage:rerun": Report.objects.create(investigation=investigation, reporter=user, check_run=run).pk,
    }


# --- the environment doctor's machines (tests/doctor_machine.py) ------------------------------------------
@pytest.fixture(scope="session")
def doctor_script(tmp_path_factory) -> Path:
    """The served bytes, written where a developer would save them (a folder of their own)."""
    folder = tmp_path_factory.mktemp("download")
    path = folder / "hokusai_doctor.py"
    path.write_bytes(doctor_environment.doctor_script().content)
    return path


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> str:
    """A fresh virtualenv's Python: the standard library and nothing installed."""
    folder = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return str(folder / "bin" / "python")


@pytest.fixture
def machine(tmp_path, bare_python, doctor_script) -> Machine:
    return Machine(tmp_path, bare_python, doctor_script)
