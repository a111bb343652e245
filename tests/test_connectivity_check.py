"""The connectivity check end to end: web request -> broker -> real Celery worker -> real registry.

No HTTP is mocked: the registry is the devstack MLflow server, or a small misbehaving server on loopback."""

import logging
import re
import threading
import time

import pytest
from django.urls import reverse

from devstack.server import free_port
from onboarding import lifecycle, services, views
from onboarding.models import CheckRun
from tests.conftest import SEED_KEY, key_appears_in_database, wait_for_run
from tests.fault_servers import http_server, hung_server, self_signed_context

pytestmark = pytest.mark.django_db(transaction=True)
MADE_UP_KEY = SEED_KEY


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    return celery_worker


def run_check(client, user, key: str, registry_url: str, settings, model_name: str = "") -> CheckRun:
    settings.HOKUSAI_REGISTRY_URL = registry_url
    services.api_key_save(user=user, raw_key=key)
    client.force_login(user)
    response = client.post(reverse("onboarding:connectivity"), {"model_name": model_name})
    assert response.status_code == 302, response.content
    run_id = int(response["Location"].rstrip("/").rsplit("/", 1)[-1])
    return wait_for_run(run_id)


def steps_of(run: CheckRun) -> dict[str, tuple[str, str]]:
    return {step.name: (step.status, step.cause) for step in run.steps.all()}


def assert_key_leaked_nowhere(key, client, run, celery_worker, published_task_messages, caplog):
    html = client.get(reverse("onboarding:check_run", args=[run.pk])).content.decode()
    assert key not in html
    assert key_appears_in_database(key) == []
    assert published_task_messages, "no task was published"
    assert all(key not in message for message in published_task_messages)
    assert key not in celery_worker.log_path.read_text()
    assert all(key not in record.getMessage() for record in caplog.records)


def test_writer_key_passes_every_step_live(
    client, alice, devstack, devstack_keys, settings, celery_worker, published_task_messages, caplog
):
    caplog.set_level(logging.DEBUG)
    run = run_check(client, alice, devstack_keys["writer"], devstack.url, settings)
    assert run.status == CheckRun.Status.PASSED, steps_of(run)
    assert run.cause == "OK"
    assert list(steps_of(run)) == ["key_format", "dns", "tcp", "health", "identity", "auth", "registry_read", "write"]
    assert {status for status, _ in steps_of(run).values()} == {"pass"}
    page = client.get(reverse("onboarding:check_run", args=[run.pk])).content.decode()
    assert 'data-status="passed"' in page
    assert "Continue to registration" in page
    assert_key_leaked_nowhere(devstack_keys["writer"], client, run, celery_worker, published_task_messages, caplog)


def test_the_write_probe_leaves_nothing_behind(client, alice, devstack, devstack_keys, settings):
    import requests

    run_check(client, alice, devstack_keys["writer"], devstack.url, settings)
    state = devstack.state()
    models = (
        requests.get(
            f"{devstack.url}/api/2.0/mlflow/registered-models/search",
            params={"max_results": 1000},
            auth=(state["admin_username"], state["admin_password"]),
            timeout=10,
        )
        .json()
        .get("registered_models", [])
    )
    assert not [m["name"] for m in models if m["name"].startswith("hokusai-portal-probe")]


def test_reader_key_fails_at_the_write_step(
    client, alice, devstack, devstack_keys, settings, celery_worker, published_task_messages, caplog
):
    run = run_check(client, alice, devstack_keys["reader"], devstack.url, settings)
    assert run.status == CheckRun.Status.FAILED
    assert run.cause == "WRITE_PERMISSION_DENIED"
    assert steps_of(run)["registry_read"] == ("pass", "OK")
    assert steps_of(run)["write"] == ("fail", "WRITE_PERMISSION_DENIED")
    page = client.get(reverse("onboarding:check_run", args=[run.pk])).content.decode()
    assert "model:write" in page  # the remedy
    assert_key_leaked_nowhere(devstack_keys["reader"], client, run, celery_worker, published_task_messages, caplog)


def test_writing_someone_elses_model_is_denied(client, alice, devstack, devstack_keys, settings):
    import requests

    owned = "owned-by-other-connectivity"
    requests.post(
        f"{devstack.url}/api/2.0/mlflow/registered-models/create",
        json={"name": owned},
        headers={"Authorization": f"Bearer {devstack_keys['other']}"},
        timeout=10,
    )
    run = run_check(client, alice, devstack_keys["writer"], devstack.url, settings, model_name=owned)
    assert steps_of(run)["write"] == ("fail", "WRITE_PERMISSION_DENIED")
    assert owned in run.steps.get(name="write").message


@pytest.mark.parametrize("which", ["revoked", "made-up"])
def test_revoked_and_made_up_keys_are_rejected(
    client, alice, devstack, devstack_keys, settings, which, celery_worker, published_task_messages, caplog
):
    key = devstack_keys["revoked"] if which == "revoked" else MADE_UP_KEY
    run = run_check(client, alice, key, devstack.url, settings)
    assert run.cause == "AUTH_KEY_REJECTED"
    assert steps_of(run)["auth"] == ("fail", "AUTH_KEY_REJECTED")
    assert steps_of(run)["registry_read"] == ("skipped", "SKIPPED")
    assert steps_of(run)["write"] == ("skipped", "SKIPPED")
    assert_key_leaked_nowhere(key, client, run, celery_worker, published_task_messages, caplog)


def test_registry_lock_gives_registry_admin_required(
    client, alice, locked_devstack, devstack_keys, settings, celery_worker, published_task_messages, caplog
):
    run = run_check(client, alice, devstack_keys["writer"], locked_devstack.url, settings)
    assert run.cause == "REGISTRY_ADMIN_REQUIRED"
    page = client.get(reverse("onboarding:check_run", args=[run.pk])).content.decode()
    assert "Registry access is currently limited to admin keys" in page
    assert_key_leaked_nowhere(devstack_keys["writer"], client, run, celery_worker, published_task_messages, caplog)


def test_an_mlflow_basic_auth_server_given_a_key_is_a_scheme_mismatch(
    client, alice, basic_auth_registry, devstack_keys, settings
):
    run = run_check(client, alice, devstack_keys["writer"], basic_auth_registry.url, settings)
    assert run.cause == "AUTH_SCHEME_MISMATCH"
    assert "MLFLOW_TRACKING_TOKEN will not work" in run.steps.get(name="auth").remedy


FAULTS = {
    "closed port": ("tcp", "CONNECT_REFUSED"),
    "unresolvable host": ("dns", "DNS_UNRESOLVED"),
    "hung socket": ("health", "REGISTRY_TIMEOUT"),
    "closes without answering": ("health", "CONNECTION_CLOSED"),
    "answers 503": ("health", "REGISTRY_UNAVAILABLE"),
    "self-signed https": ("tls", "TLS_CERT_INVALID"),
    "a website, not a registry": ("health", "NOT_A_REGISTRY"),
    "rate limited": ("health", "RATE_LIMITED"),
    "gateway's auth service down": ("identity", "AUTH_SERVICE_UNAVAILABLE"),
}


def fault_server(which: str, tmp_path):
    import contextlib

    if which == "closed port":
        return contextlib.nullcontext(f"http://127.0.0.1:{free_port()}")
    if which == "unresolvable host":
        return contextlib.nullcontext("http://registry.hokusai.invalid")
    if which == "hung socket":
        return hung_server()
    if which == "closes without answering":
        return hung_server(close_at_once=True)
    if which == "answers 503":
        return http_server(503, b"Service Unavailable", {"Content-Type": "text/plain"})
    if which == "self-signed https":
        return http_server(200, b"OK", tls_context=self_signed_context(tmp_path))
    if which == "a website, not a registry":
        return http_server(200, b"<!doctype html><html><body>Welcome</body></html>", {"Content-Type": "text/html"})
    if which == "gateway's auth service down":  # the registry is up (/health), the gateway answers 503
        unavailable = (503, b'{"error_code": "SERVICE_UNAVAILABLE"}', {"Content-Type": "application/json"})
        return http_server(
            routes={"/health": (200, b"OK", {"Content-Type": "text/plain"})},
            status=unavailable[0],
            body=unavailable[1],
            headers=unavailable[2],
        )
    if which == "rate limited":
        return http_server(
            429, b'{"error_code": "RATE_LIMITED"}', {"Content-Type": "application/json", "Retry-After": "30"}
        )
    raise ValueError(which)


@pytest.mark.parametrize("which", list(FAULTS))
def test_each_fault_gets_its_cause_within_five_seconds(
    client, alice, devstack_keys, settings, tmp_path, which, celery_worker, published_task_messages, caplog
):
    step_name, cause = FAULTS[which]
    with fault_server(which, tmp_path) as url:
        run = run_check(client, alice, devstack_keys["writer"], url, settings)
    assert run.status == CheckRun.Status.FAILED
    assert run.cause == cause, steps_of(run)
    assert steps_of(run)[step_name] == ("fail", cause)
    assert (run.finished_at - run.started_at).total_seconds() <= 5
    step = run.steps.get(name=step_name)
    assert step.message and step.remedy
    if which == "rate limited":
        assert "Retry after 30 s" in step.message
    assert_key_leaked_nowhere(devstack_keys["writer"], client, run, celery_worker, published_task_messages, caplog)


def test_two_users_checks_at_once_each_use_their_own_key(client, alice, dave, devstack, devstack_keys, settings):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    services.api_key_save(user=dave, raw_key=devstack_keys["reader"])
    alice_run = services.connectivity_check_start(user=alice)
    dave_run = services.connectivity_check_start(user=dave)
    alice_run, dave_run = wait_for_run(alice_run.pk), wait_for_run(dave_run.pk)
    assert alice_run.status == CheckRun.Status.PASSED
    assert dave_run.cause == "WRITE_PERMISSION_DENIED"


def test_a_key_deleted_between_submit_and_the_worker_fails_the_first_step(alice, devstack, devstack_keys, settings):
    """The worker runs with the key as saved when it takes the run (read with the run by the claim): a key deleted
    in between is not used from an earlier read, and the first step says what is wrong."""
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # not handed to the worker: this test runs it
    run = services.connectivity_check_start(user=alice)
    assert services.api_key_forget(user=alice)
    services.check_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.cause) == (CheckRun.Status.FAILED, "KEY_FORMAT_INVALID")
    steps = list(run.steps.values_list("name", "status"))
    assert steps[0] == ("key_format", "fail") and {status for _, status in steps[1:]} == {"skipped"}


def test_a_message_delivered_twice_runs_once(alice, devstack, devstack_keys, settings):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    run = services.connectivity_check_start(user=alice)
    services.check_run_enqueue(run_id=run.pk)  # a duplicate delivery
    wait_for_run(run.pk)
    time.sleep(0.5)
    assert run.steps.count() == 8
    # The duplicate as the worker meets it, after the first delivery finished. Two guards hold it: the
    # claim refuses a run that is over, and a worker that does not hold a run cannot save a step to it
    # (lifecycle.check_step_save). With both gone the steps run again and the unique (run, position)
    # constraint raises: this call would not return quietly.
    assert lifecycle.check_run_claim(run_id=run.pk, worker="duplicate@test", deadline_seconds=15) is None
    run.refresh_from_db()
    before = (list(run.steps.values_list("id", "status", "cause")), run.finished_at, run.attempt, run.status)
    services.check_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (list(run.steps.values_list("id", "status", "cause")), run.finished_at, run.attempt, run.status) == before


def test_htmx_polling_gets_the_partial_and_stops_when_finished(client, alice, devstack, devstack_keys, settings):
    run = run_check(client, alice, devstack_keys["writer"], devstack.url, settings)
    finished = client.get(reverse("onboarding:check_run", args=[run.pk]), headers={"HX-Request": "true"})
    assert finished.status_code == 286  # htmx's "stop polling", with the final state to swap in
    partial = finished.content.decode()
    assert "<html" not in partial
    assert f'id="run-{run.pk}"' in partial
    assert "hx-trigger" not in partial  # finished: polling stops
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.RUNNING)
    running = client.get(reverse("onboarding:check_run", args=[run.pk]), headers={"HX-Request": "true"})
    html = running.content.decode()
    assert running.status_code == 200 and 'hx-trigger="load"' in html
    seen = re.search(r"\?seen=([^\"&]+)", html)[1]
    assert seen == f"running.{run.steps.count()}.{run.attempt}.0"
    # The live region is updated out of band, so the page keeps one region that announces each change.
    assert f'<p id="run-live-{run.pk}" hx-swap-oob="innerHTML">' in html

    # A long poll: held until the run changes, then answered at once with the change.
    def finish_later():
        time.sleep(0.4)
        CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.PASSED)

    threading.Thread(target=finish_later).start()
    started = time.monotonic()
    changed = client.get(
        reverse("onboarding:check_run", args=[run.pk]) + f"?seen={seen}", headers={"HX-Request": "true"}
    )
    waited = time.monotonic() - started
    assert changed.status_code == 286 and 'data-status="passed"' in changed.content.decode()
    assert 0.3 < waited < views.LONG_POLL_SECONDS / 2  # it waited for the change, not for its timeout
    assert "Check passed" in changed.content.decode()  # the verdict, announced

    # Every long-poll slot taken: answered at once, and the page polls again in 500 ms.
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.RUNNING)
    held = [views.LONG_POLL_SLOTS.acquire(blocking=False) for _ in range(8)]
    try:
        started = time.monotonic()
        busy = client.get(
            reverse("onboarding:check_run", args=[run.pk]) + f"?seen={seen}", headers={"HX-Request": "true"}
        )
        assert time.monotonic() - started < views.LONG_POLL_SECONDS / 4
        assert 'hx-trigger="load delay:500ms"' in busy.content.decode()
    finally:
        for taken in held:
            if taken:
                views.LONG_POLL_SLOTS.release()


def test_history_shows_own_runs_and_support_sees_all(client, alice, dave, bob, devstack, devstack_keys, settings):
    alice_run = run_check(client, alice, devstack_keys["reader"], devstack.url, settings)
    dave_run = run_check(client, dave, devstack_keys["writer"], devstack.url, settings)
    client.force_login(alice)
    history = client.get(reverse("onboarding:history")).content.decode()
    assert "WRITE_PERMISSION_DENIED" in history
    assert reverse("onboarding:check_run", args=[dave_run.pk]) not in history
    assert client.get(reverse("onboarding:check_run", args=[dave_run.pk])).status_code == 404
    client.force_login(bob)
    history = client.get(reverse("onboarding:history")).content.decode()
    assert reverse("onboarding:check_run", args=[alice_run.pk]) in history
    assert reverse("onboarding:check_run", args=[dave_run.pk]) in history
    assert client.get(reverse("onboarding:check_run", args=[dave_run.pk])).status_code == 200
    assert client.post(reverse("onboarding:check_run_retry", args=[dave_run.pk])).status_code == 403
