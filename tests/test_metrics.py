"""/metrics: Prometheus's text format behind a bearer token; the portal's hokusai_* figures move when a real
worker runs a check, and what the database knows is read at scrape time."""

import re
import time

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from onboarding import lifecycle, services
from onboarding.models import CheckRun
from tests.conftest import wait_for_run

TOKEN = "metrics-token-for-the-tests-0123456789"


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def test_it_does_not_exist_without_a_token_configured(client, settings, db):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_it_wants_the_bearer_token_not_a_session(client, metrics_on, bob):
    client.force_login(bob)
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_it_counts_requests_and_refused_sign_ins(client, metrics_on, alice):
    before = scrape(client)
    response = client.post(reverse("accounts:login"), {"login": "alice", "password": "not her password"})
    assert response.status_code == 200  # the form again, with its error
    after = scrape(client)
    assert value(after, "hokusai_login_failures_total") == value(before, "hokusai_login_failures_total") + 1
    # django-prometheus's request metrics: the scrapes and the sign-in were counted.
    requests_by_view = [
        v for (name, labels), v in after.items() if name == "django_http_requests_total_by_view_transport_method_total"
    ]
    assert sum(requests_by_view) >= 2


@pytest.mark.django_db(transaction=True)
def test_a_check_a_real_worker_ran_shows_under_its_cause(
    client, metrics_on, alice, devstack, devstack_keys, settings, celery_worker, monkeypatch
):
    """The worker process counts in its own files (multiprocess mode); the web side adds them up at scrape."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(celery_worker.metrics_dir))
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    before = scrape(client)
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    passed = wait_for_run(services.connectivity_check_start(user=alice).pk)
    services.api_key_save(user=alice, raw_key=devstack_keys["revoked"])
    failed = wait_for_run(services.connectivity_check_start(user=alice).pk)
    assert (passed.status, passed.cause) == (CheckRun.Status.PASSED, "OK")
    assert (failed.status, failed.cause) == (CheckRun.Status.FAILED, "AUTH_KEY_REJECTED")
    # The previous transactional test's flush emptied the heartbeat table; the worker writes its row
    # again within HEARTBEAT_SECONDS, and two quick checks can end sooner than that.
    deadline = time.monotonic() + 3 * lifecycle.HEARTBEAT_SECONDS
    while not lifecycle.workers_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("hokusai_checks_total", kind="connectivity", status="passed", cause="OK") == 1
    assert moved("hokusai_checks_total", kind="connectivity", status="failed", cause="AUTH_KEY_REJECTED") == 1
    assert moved("hokusai_check_duration_seconds_count", kind="connectivity") == 2
    assert moved("hokusai_check_queue_seconds_count") == 2
    # Read from the database at scrape time: no check is running now; the worker's heartbeat is fresh.
    assert value(after, "hokusai_checks_in_flight") == 0
    assert value(after, "hokusai_workers_alive") >= 1
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    for name in ("hokusai_outbox_pending", "hokusai_webhook_pending", "hokusai_checks_queued"):
        assert re.search(rf"^{name} \d", text, re.M), name
