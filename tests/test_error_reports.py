"""Error reports (issue 26): with SENTRY_DSN set, the web and the worker send their errors to Sentry, and
what leaves carries no key, token, cookie, note or e-mail address.

The end-to-end test runs the real processes, gunicorn (uvicorn workers, as `make run` and `make production`)
and a Celery worker, with a DSN that points at a local receiver (tests/sentry_receiver.py), and makes them
fail where secrets are at hand (the bugs are put in by tests/error_reports_app.py). It reads the raw bytes
of every envelope they sent. The unit tests feed the scrubber the shapes an event takes."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from django.conf import settings

from devstack.keystore import key_generate
from devstack.server import free_port
from hokusai_portal import error_reports
from tests.conftest import PASSWORD, ROOT, SEED_KEY, database_url_for_worker
from tests.portal_processes import PortalUser
from tests.sentry_receiver import sentry_receiver

NOTE = (
    "Our CI box is ci-7.internal.acme, proxy user jdoe-ops;\n"
    "the run fails only on Tuesdays when the VPN reconnects (ticket OPS-4411)."
)
BUGS = {"KeyRingBroken", "TokenStoreDown", "ReportStoreDown", "RegistryClientBug"}


def _start(command: list[str], env: dict, log_path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_for(condition, timeout: float, what: str, logs=()):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            tails = "\n".join(path.read_text(errors="replace")[-3000:] for path in logs)
            raise AssertionError(f"{what} after {timeout} s\n{tails}")
        time.sleep(0.2)
    return result


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.slow
def test_errors_of_the_web_and_the_worker_reach_sentry_without_any_secret(transactional_db, alice, tmp_path):
    from api.services import access_token_create

    _, token = access_token_create(user=alice, name="CI of lscor-model", scopes=["checks:read"])
    saved_key = key_generate()  # a devstack-style key the checks run with
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with sentry_receiver() as sentry:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
        env.update(
            SENTRY_DSN=sentry.dsn,
            DATABASE_URL=database_url_for_worker(),
            PORTAL_VAR_DIR=str(tmp_path / "var"),
            PORTAL_BROKER_DIR=str(tmp_path / "broker"),  # a queue of their own: no other worker takes the task
            CELERY_BROKER_URL="filesystem://",
            SECRET_KEY=settings.SECRET_KEY,
            FIELD_ENCRYPTION_KEYS=",".join(settings.FIELD_ENCRYPTION_KEYS),
            HOKUSAI_REGISTRY_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens: a check fails at once
            PYTHONUNBUFFERED="1",
        )
        env.pop("DEBUG", None)
        bin_dir = os.path.dirname(sys.executable)
        web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
        web = _start(
            [
                f"{bin_dir}/gunicorn",
                "tests.error_reports_app:application",
                "--worker-class",
                "uvicorn_worker.UvicornWorker",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
                "--config",
                "python:hokusai_portal.gunicorn_conf",
            ],
            {**env, "PORTAL_PROCESS": "web"},
            web_log,
        )
        worker = _start(
            [
                *(f"{bin_dir}/celery", "-A", "tests.error_reports_app", "worker", "--pool", "threads"),
                *("--concurrency", "2", "--loglevel", "INFO", "--without-heartbeat", "--without-gossip"),
                "--without-mingle",
            ],
            {**env, "PORTAL_PROCESS": "worker"},
            worker_log,
        )
        logs = (web_log, worker_log)
        try:
            _wait_for(lambda: _answers(f"{base}/accounts/login/"), 60, "the web does not answer", logs)
            _wait_for(lambda: "ready." in worker_log.read_text(errors="replace"), 60, "the worker is not ready", logs)

            developer = PortalUser(base)
            developer.sign_in("alice", PASSWORD)
            developer.save_key(saved_key)
            failed = developer.start_check()
            assert developer.wait_for_state(failed, {"failed"}, 30)[0] == "failed"
            # "Report a problem" with a note: filing it fails.
            reported = developer.form_post(f"/triage/reports/from-check/{failed}/", {"note": NOTE})
            assert reported.status_code == 500
            # A check the worker crashes on, holding the key.
            probe = developer.form_post("/onboarding/connectivity/", {"model_name": "ErrorReportProbe"})
            assert probe.status_code == 200
            # The key page: storing this key fails.
            assert developer.form_post("/onboarding/key/", {"api_key": SEED_KEY}).status_code == 500
            # The API, with an access token (and the session's cookies along): looking the token up fails.
            api = developer.get(f"{base}/api/v1/checks/{failed}", headers={"Authorization": f"Bearer {token}"})
            assert api.status_code == 500

            _wait_for(
                lambda: BUGS <= set(_reported(sentry)),
                30,
                "not every bug reached the receiver",
                logs,
            )
            cookies = {name: developer.cookies[name] for name in ("sessionid", "csrftoken")}
        finally:
            _stop(web)
            _stop(worker)

    raw = b"\n".join(envelope["raw"] for envelope in sentry.received)
    assert all(envelope["path"] == "/api/1/envelope/" for envelope in sentry.received)
    secrets = {
        "the fixture key": SEED_KEY,
        "the fixture key's secret part": SEED_KEY.removeprefix("hk_live_"),
        "the saved key": saved_key,
        "the saved key's secret part": saved_key.removeprefix("hk_test_"),
        "the access token": token,
        "the access token's secret part": token.removeprefix("hkp_"),
        "the session cookie": cookies["sessionid"],
        "the CSRF cookie": cookies["csrftoken"],
        "alice's e-mail address": alice.email,
        **{f"note line {n}": line for n, line in enumerate(NOTE.splitlines())},
        "a phrase of the note": "VPN reconnects",
    }
    leaked = [name for name, value in secrets.items() if value.encode() in raw]
    assert not leaked, f"sent to Sentry: {leaked}: " + "; ".join(_around(raw, secrets[name]) for name in leaked)

    events = _reported(sentry)
    assert set(events) == BUGS, "a report of something else (uvicorn's lifespan start is not a bug)"
    # Still useful: the bug's type, its message (the secret masked), where it happened, which process, which page.
    key_report = events["KeyRingBroken"]
    assert key_report["exception"]["values"][-1]["value"].startswith("no encryption key takes hk_live_")
    assert key_report["request"]["url"].endswith("/onboarding/key/")
    assert key_report["request"]["method"] == "POST"
    assert key_report["environment"] == "development"
    assert key_report["tags"]["hokusai.process"] == "web"
    assert "api_key_save" in _functions(key_report)
    assert events["ReportStoreDown"]["request"]["url"].endswith(f"/triage/reports/from-check/{failed}/")
    assert "report_problem" in _functions(events["ReportStoreDown"])
    assert "access_token_authenticate" in _functions(events["TokenStoreDown"])
    worker_report = events["RegistryClientBug"]
    assert worker_report["tags"]["hokusai.process"] == "worker"
    assert worker_report["tags"].get("celery_task_id") or "celery" in str(worker_report.get("contexts", {}))
    assert "check_run_execute" in _functions(worker_report)
    assert "user" not in key_report or set(key_report["user"]) <= {"id"}
    print(
        f"envelopes: {len(sentry.received)}, {len(raw)} bytes; events: {sorted(events)}; "
        f"searched for {len(secrets)} secrets: none found"
    )


def _reported(sentry) -> dict[str, dict]:
    """The events received, by their exception's type."""
    return {
        event["exception"]["values"][-1]["type"]: event
        for envelope in sentry.received
        for event in envelope["events"]
        if event.get("exception")
    }


def _around(raw: bytes, secret: str) -> str:
    at = raw.index(secret.encode())
    return raw[max(0, at - 300) : at + len(secret) + 100].decode(errors="replace")


def _functions(event: dict) -> set[str]:
    return {
        frame.get("function")
        for value in event["exception"]["values"]
        for frame in (value.get("stacktrace") or {}).get("frames", [])
    }


# --- the scrubber, unit by unit ---------------------------------------------------------------------------


@pytest.fixture
def scrub():
    """An event through the portal's EventScrubber and before_send, in the SDK's order."""
    pytest.importorskip("sentry_sdk")

    def run(event: dict) -> dict:
        error_reports.event_scrubber().scrub_event(event)
        from sentry_sdk.serializer import serialize

        return error_reports.scrub_event(serialize(event), {})

    return run


def test_every_string_of_an_event_is_masked_and_secret_fields_are_dropped(scrub):
    key, token = key_generate(), "hkp_" + "Ab3" * 14 + "x"
    event = {
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": f"bad key {key} and token {token}",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "api_key_save",
                                "vars": {"raw_key": key, "self": f"<Client key={key}>", "note": NOTE},
                            },
                            {"function": "view", "vars": {"kwargs": {"body": NOTE}, "headers": f"Bearer {token}"}},
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": f"saving {key}", "data": {"url": f"/x?token={token}"}}]},
        "request": {
            "url": "http://portal/triage/reports/from-check/1/",
            "method": "POST",
            "headers": {"Authorization": f"Bearer {token}", "Cookie": "sessionid=s3cr3tsession", "X-Api-Key": key},
            "cookies": {"sessionid": "s3cr3tsession"},
            "data": {"note": NOTE, "consent_rerun": "on"},
        },
        "extra": {"celery-job": {"args": [key], "kwargs": {"note": NOTE}}},
        "user": {"id": "7", "email": "alice@example.com", "username": "alice"},
    }
    sent = scrub(event)
    text = repr(sent)
    for secret in (key, token, "s3cr3tsession", "alice@example.com", "VPN reconnects", "jdoe-ops"):
        assert secret not in text, secret
    assert sent["exception"]["values"][0]["type"] == "ValueError"
    assert sent["exception"]["values"][0]["value"].startswith("bad key hk_test_")  # masked, still readable
    assert sent["request"]["data"] == "[Filtered]"
    assert "cookies" not in sent["request"] and "Authorization" not in sent["request"]["headers"]
    assert sent["user"] == {"id": "7"}


def test_a_note_quoted_in_a_message_is_removed_from_it(scrub):
    event = {
        "exception": {"values": [{"type": "ReportStoreDown", "value": f"could not file {NOTE!r}"}]},
        "logentry": {"message": "report failed: %s", "params": [NOTE]},
        "request": {"url": "http://portal/triage/reports/from-check/1/", "data": {"note": NOTE}},
    }
    text = repr(scrub(event))
    assert "VPN reconnects" not in text and "jdoe-ops" not in text


def test_an_ordinary_form_keeps_its_fields(scrub):
    event = {"request": {"url": "http://portal/onboarding/connectivity/", "data": {"model_name": "LSCOR_Test_Model"}}}
    assert scrub(event)["request"]["data"] == {"model_name": "LSCOR_Test_Model"}


def test_without_a_dsn_sentry_sdk_is_not_even_imported():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    probe = "import django, sys; django.setup(); print('sentry_sdk' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "hokusai_portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr[-2000:]


def test_the_options_come_from_the_environment_and_bad_values_are_named(tmp_path):
    from tests.test_settings import run_manage

    code = (
        "import sentry_sdk; o = sentry_sdk.get_client().options; "
        "print(o['environment'], o['traces_sample_rate'], o['send_default_pii'], sorted(sentry_sdk.get_client().integrations))"
    )
    dsn = "http://public@127.0.0.1:9/1"  # nothing is sent: no error happens
    default = run_manage("shell", "-c", code, SENTRY_DSN=dsn, PORTAL_VAR_DIR=str(tmp_path))
    assert default.returncode == 0, default.stderr
    environment, rate, pii, integrations = default.stdout.strip().splitlines()[-1].split(" ", 3)
    assert (environment, rate, pii) == ("development", "0.0", "False")  # PORTAL_ENV's; traces go to OpenTelemetry
    assert "'celery'" in integrations and "'django'" in integrations
    asked = run_manage(
        "shell",
        "-c",
        code,
        SENTRY_DSN=dsn,
        SENTRY_ENVIRONMENT="staging",
        SENTRY_TRACES_SAMPLE_RATE="0.25",
        PORTAL_VAR_DIR=str(tmp_path),
    )
    assert asked.stdout.strip().splitlines()[-1].split(" ")[:2] == ["staging", "0.25"], asked.stderr
    for name, value, message in (
        ("SENTRY_DSN", "sentry.example.com", "SENTRY_DSN must be a Sentry DSN"),
        ("SENTRY_TRACES_SAMPLE_RATE", "all", "SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1"),
        ("SENTRY_TRACES_SAMPLE_RATE", "2", "SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1"),
    ):
        refused = run_manage("check", **{"SENTRY_DSN": dsn, name: value}, PORTAL_VAR_DIR=str(tmp_path))
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr[-2000:]
