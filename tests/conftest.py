"""Shared fixtures: a real devstack registry, a real Celery worker, users of each role.

Everything here is real: the MLflow server is started once per session on a free port, the
worker is a `celery worker` process consuming the same broker as the tests (filesystem or Redis)."""

import logging
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
from accounts.services import totp_enrol, user_create
from devstack.server import Devstack, free_port
from hokusai_portal import runtime
from onboarding import environment as doctor_environment
from tests.doctor_machine import Machine

ROOT = Path(__file__).resolve().parent.parent
runtime.prepare()  # var/ and its folders, as every entry point makes them


def _broker_of_this_test_process() -> None:
    """Under pytest-xdist (`-n 2`) each test process has its own database (pytest-django's _gw0 suffix) and
    gets its own broker too: a session worker that consumed another process's queue would run its tasks
    against the wrong database. Redis: the next database numbers; the filesystem broker: folders of its own."""
    worker = os.getenv("PYTEST_XDIST_WORKER", "")
    if not worker:
        return
    from hokusai_portal.celery import app

    index = int(worker.removeprefix("gw"))
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://"):
        base, _, db = url.rpartition("/")
        settings.CELERY_BROKER_URL = f"{base}/{(int(db or 0) + 1 + index) % 16}"
    elif url.startswith("filesystem://"):
        folder = settings.BROKER_DIR.with_name(f"broker-{worker}")
        for key, sub in (("data_folder_in", "in"), ("data_folder_out", "in"), ("processed_folder", "processed")):
            settings.CELERY_BROKER_TRANSPORT_OPTIONS[key] = str(folder / sub)
        settings.CELERY_BROKER_TRANSPORT_OPTIONS["control_folder"] = str(folder / "control")
        for sub in ("in", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        settings.BROKER_DIR = folder
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (celery.app.utils.Settings
    # .broker_url): with only app.conf changed, what this process sent with send_task or delay() went to the
    # suite's base broker, where no session worker listens (CI sets the variable; a run without it did not see).
    os.environ["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    app.conf.broker_url = settings.CELERY_BROKER_URL
    app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS


_broker_of_this_test_process()

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
    metrics_dir = tmp_path_factory.mktemp("prometheus")  # its hokusai_* metrics, as under the supervisor
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_worker(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        HOKUSAI_REGISTRY_URL=devstack.url,
        PORTAL_VAR_DIR=str(settings.VAR_DIR),
        PORTAL_BROKER_DIR=str(settings.BROKER_DIR),
        PYTHONUNBUFFERED="1",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
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
    process.metrics_dir = metrics_dir
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
    user = user_create(username=username, email=f"{username}@example.com", password=PASSWORD, role=role)
    if role in (Role.SUPPORT, Role.MANAGER):  # staff need a second factor (accounts.middleware); `totp_now` makes codes
        user.totp_secret = totp_enrol(user=user)
    return user


def fresh_totp_window(seconds_needed: float = 10) -> None:
    """Wait for the next 30 s TOTP window when fewer than `seconds_needed` are left in this one. A code is good
    in its own window only (allauth's tolerance is 0), and on a loaded machine a code made at 29.5 s may reach
    the server at 30.5 s: a sign-in that fails for the clock, not the code."""
    if (left := 30 - time.time() % 30) < seconds_needed:
        time.sleep(left + 0.1)


def totp_now(secret: str) -> str:
    """The current TOTP code for `secret`, as an authenticator app shows it, made early enough in its window
    to be used in it."""
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    fresh_totp_window()
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


@pytest.fixture
def admin_user(admin_user):
    """pytest-django's superuser, with the second factor an administrator must have (accounts.middleware)."""
    admin_user.totp_secret = totp_enrol(user=admin_user)
    return admin_user


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


# A key or an access token written whole: a masked one (hokusai_portal.redaction) keeps a few characters and "…".
UNMASKED_SECRET = re.compile(r"\bhk_(?:live|test|dev)_[A-Za-z0-9]{20,}|\bhkp_[A-Za-z0-9]{30,}")


class _EveryLogLine(logging.Handler):
    """Each line this test process logs, as the portal's console handler would write it (its filters)."""

    def __init__(self):
        from hokusai_portal import logs

        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        for line_filter in (logs.ExpectedRefusalsOneLine(), logs.ContextFilter(), logs.RedactSecrets()):
            self.addFilter(line_filter)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is no line
            return
        if UNMASKED_SECRET.search(line):
            self.leaks.append(line[:400])


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_any_log_line(tmp_path_factory):
    """No key or token in a line the suite's processes logged (issue 26): this process's records through the
    console handler's filters, and every `*.log` the processes the tests started wrote (workers, gunicorn,
    `make run`, `make production`) under the session's temporary folder."""
    handler = _EveryLogLine()
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    leaks = list(handler.leaks)
    for path in sorted(tmp_path_factory.getbasetemp().rglob("*.log")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if UNMASKED_SECRET.search(line):
                leaks.append(f"{path.relative_to(tmp_path_factory.getbasetemp())}:{number}: {line[:400]}")
    assert not leaks, f"{len(leaks)} log lines hold a key or token whole:\n" + "\n".join(leaks[:20])


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The browser tests' one skip: the only thing they cannot do without.
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install chromium)"
)
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


@pytest.fixture(scope="session")
def chromium_endpoint(tmp_path_factory):
    """One Chromium for the whole session (starting one per test cost 1.5-4 s each): tests connect to it over
    the DevTools protocol and each gets contexts of its own (cookies and storage apart), closed after it."""
    import requests

    port = free_port()
    process = subprocess.Popen(
        [
            CHROMIUM,
            *CHROMIUM_ARGS,
            f"--remote-debugging-port={port}",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{endpoint}/json/version", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"Chromium did not answer on {endpoint}")
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def browser(monkeypatch, chromium_endpoint):
    """The session's Chromium, through a Playwright of this test's own; what the test opened is closed after."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(chromium_endpoint)
        try:
            yield browser
        finally:
            for context in browser.contexts[1:]:  # [0] is the browser's default context, left as it was
                context.close()
            browser.close()  # over CDP: disconnects, Chromium keeps running for the next test


@pytest.fixture
def browser_page(browser, tmp_path):
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    yield page
    page.screenshot(path=str(tmp_path / "last.png"))


def _access_token_of(user) -> int:
    from api.services import access_token_create

    token, _ = access_token_create(user=user, name="owned", scopes=["checks:read"])
    return token.pk


def objects_owned_by(user) -> dict:
    """One object of every kind a URL addresses, owned by `user`: a failed check with a step, the
    investigation they reported from it (a finding, an action item, their report) and a passed
    registration, an environment report. Returns the ids by URL converter name (and by URL name where a converter is shared)."""
    from django.utils import timezone

    from onboarding.models import CheckRun, CheckStep, EnvironmentCheck, EnvironmentReport, Registration
    from triage.models import ActionItem, Finding, Investigation, Report

    now = timezone.now()
    organization = _organization_owned_by(user)
    common = {
        "user": user,
        "organization": organization,
        "registry_url": "http://127.0.0.1:1",
        "key_masked": "hk_test_abcd…yz",
    }
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
    from status.models import PlatformComponent

    status_component, _ = PlatformComponent.objects.get_or_create(slug="registry", defaults={"name": "Registry API"})
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
        "number": investigation.pk,  # the API's /investigations/<number>
        "token_id": _access_token_of(user),  # the account page's /account/tokens/<token_id>/revoke/
        "triage:finding_status": Finding.objects.create(investigation=investigation, title="A finding").pk,
        "triage:action_toggle": ActionItem.objects.create(investigation=investigation, title="An action").pk,
        "triage:rerun": Report.objects.create(investigation=investigation, reporter=user, check_run=run).pk,
        # allauth's addresses: a confirmation key and a reset link that are not real, the SSO provider's id.
        "key": "not-a-real-confirmation-key",
        "account_reset_password_from_key": {"uidb36": "1", "key": "not-a-real-reset-key"},
        "provider_id": "sso",
        **_organization_ids(organization, user),
    }


# --- organizations (issue 24): the owner's organization, a teammate to address, an open invitation -------
def owned_invitation_token(user) -> str:
    return f"owned-invitation-{user.pk}-not-sent"


def _organization_owned_by(user):
    """The organization `user` owns (made, with a teammate and an open invitation, if they have none)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from organizations.models import Invitation, Membership, Organization
    from organizations.selectors import token_hash

    membership = Membership.objects.filter(user=user).first()
    if membership is not None:
        return membership.organization
    organization = Organization.objects.create(name=f"Owned org {user.pk}", created_by=user)
    Membership.objects.create(organization=organization, user=user, role="owner")
    teammate = get_user_model().objects.create_user(
        username=f"teammate-{user.pk}", email=f"teammate-{user.pk}@example.com"
    )
    Membership.objects.create(organization=organization, user=teammate)
    now = timezone.now()
    Invitation.objects.create(
        organization=organization,
        email=f"invitee-{user.pk}@example.com",
        token_hash=token_hash(owned_invitation_token(user)),
        invited_by=user,
        sent_at=now,
        expires_at=now + timedelta(days=7),
    )
    return organization


def _organization_ids(organization, user) -> dict:
    teammate = organization.memberships.filter(role="member").order_by("id").first()
    invitation = organization.invitations.order_by("id").first()
    return {
        "organizations:invitation_resend": invitation.pk,
        "organizations:invitation_revoke": invitation.pk,
        "organizations:member_remove": teammate.pk,
        "organizations:member_make_owner": teammate.pk,
        "invitation_token": owned_invitation_token(user),
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


def browser_sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through allauth's page in a real browser; staff then give their authenticator's current code."""
    from allauth.mfa.adapter import get_adapter
    from allauth.mfa.models import Authenticator

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In", exact=True).click()
    page.wait_for_load_state()
    if "/accounts/2fa/authenticate/" in page.url:
        totp = Authenticator.objects.get(user__username=username, type=Authenticator.Type.TOTP)
        page.get_by_label("Code").fill(totp_now(get_adapter().decrypt(totp.data["secret"])))
        with page.expect_navigation():  # a refused code comes back to the same address
            page.get_by_role("button", name="Sign In", exact=True).click()
        assert "/accounts/2fa/authenticate/" not in page.url, f"{username}'s TOTP code was refused"
