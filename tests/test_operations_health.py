"""Health that tells the truth from the first second, and stop timings that do not end in a SIGKILL."""

import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from celery import signals
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from hokusai_portal import supervise
from onboarding import lifecycle, worker
from onboarding.models import CheckRun
from status.models import PlatformComponent, ProbeResult
from status.selectors import component_statuses
from tests.conftest import ROOT, database_url_for_worker


@pytest.fixture
def start_beat(tmp_path):
    """`celery beat` as the supervisor starts it, on the test database and broker."""
    started = []

    def start():
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_worker(),
            "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
            "PORTAL_VAR_DIR": str(django_settings.VAR_DIR),
            "PORTAL_BROKER_DIR": str(django_settings.BROKER_DIR),
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", "celery", "-A", "hokusai_portal", "beat", "--schedule", str(tmp_path / "beat")]
        log = open(tmp_path / "beat.log", "wb")  # noqa: SIM115 - closed with the process
        started.append((subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        return started[-1][0]

    yield start
    for process, log in started:
        process.terminate()
        process.wait(15)
        log.close()


@pytest.mark.django_db(transaction=True)
def test_with_the_only_worker_stopped_a_queued_check_ends_workers_unavailable(alice, celery_worker, start_beat):
    """The sweep runs in beat's process: a stopped worker cannot keep it from judging the workers."""
    os.kill(celery_worker.pid, signal.SIGSTOP)
    try:
        now = timezone.now()
        run = CheckRun.objects.create(
            user=alice,
            registry_url="http://127.0.0.1:1",
            key_masked="hk_test_abcd…yz",
            created_at=now - timedelta(seconds=lifecycle.QUEUE_GRACE_SECONDS + 1),
            deadline_at=now - timedelta(seconds=1),
        )
        time.sleep(lifecycle.LEASE_SECONDS + 0.5)  # the stopped worker's heartbeat goes stale
        started = time.monotonic()
        start_beat()
        while not CheckRun.objects.get(pk=run.pk).is_finished:
            assert time.monotonic() - started < 30, "the queued check was not ended while the worker was stopped"
            time.sleep(0.2)
        run.refresh_from_db()
        assert (run.status, run.cause) == (CheckRun.Status.LOST, "WORKERS_UNAVAILABLE")
        print(f"sweep: WORKERS_UNAVAILABLE {time.monotonic() - started:.1f} s after beat started, worker stopped")
    finally:
        os.kill(celery_worker.pid, signal.SIGCONT)


@pytest.mark.django_db(transaction=True)
def test_beat_starting_probes_the_status_at_once_so_the_page_shows_no_false_outage(live_worker, settings):
    settings.STATUS_CACHE_SECONDS = 0
    for probe in (
        PlatformComponent.Probe.WORKERS,
        PlatformComponent.Probe.BROKER,
    ):  # a flush by an earlier test drops the seeded ones
        if not PlatformComponent.objects.filter(probe=probe).exists():
            PlatformComponent.objects.create(slug=f"portal-{probe}", name=f"Portal {probe}", probe=probe)
    portal_parts = PlatformComponent.objects.filter(
        probe__in=[PlatformComponent.Probe.WORKERS, PlatformComponent.Probe.BROKER]
    )
    before = {s.component.probe: s.state for s in component_statuses() if s.component in portal_parts}
    assert set(before.values()) == {"major_outage"}  # no probe result yet: what the page said for a minute
    from hokusai_portal.celery import app

    app.control.purge()  # earlier tests' leftover tasks (their rows flushed) must not make the round expire
    started = time.monotonic()
    # What `celery beat` sends as it starts, without beat's other receiver: the run sweep's thread would go on
    # sweeping this test process's database for the rest of the suite.
    signals.beat_init.disconnect(worker._start_run_sweep)
    try:
        signals.beat_init.send(sender=None)
    finally:
        signals.beat_init.connect(worker._start_run_sweep)
    # Nothing else sends a round here (no beat runs): any round is the one beat_init sent. The bound only
    # stops a broken receiver hanging the suite; a loaded machine's worker may take a while to get to it.
    while ProbeResult.objects.filter(component__in=portal_parts).count() < 2:
        if time.monotonic() - started > 90:
            log = live_worker.log_path.read_text(errors="replace").splitlines()
            rounds = [line for line in log if "probes_run" in line or "status probes" in line]
            pytest.fail(
                "no probe round after beat started; the worker's lines on it:\n"
                + "\n".join(rounds[-10:])
                + "\nthe worker's last lines:\n"
                + "\n".join(log[-40:])
            )
        time.sleep(0.2)
    after = {s.component.probe: s.state for s in component_statuses() if s.component in portal_parts}
    assert set(after.values()) == {"operational"}, after
    print(f"status: workers and broker operational {time.monotonic() - started:.1f} s after beat started")


@pytest.mark.parametrize("mode", ["development", "production"])
def test_the_supervisor_waits_longer_than_gunicorns_graceful_stop(mode, tmp_path):
    web = supervise.config(mode, tmp_path).split("[program:web]")[1].split("[program:")[0]
    graceful = int(re.search(r"--graceful-timeout (\d+)", web).group(1))
    stop_wait = int(re.search(r"^stopwaitsecs=(\d+)$", web, re.M).group(1))
    assert stop_wait >= graceful + 5


def _this_connection_read_only() -> None:
    """The connection this process holds refuses writes, as one opened while the database was read-only."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET SESSION default_transaction_read_only = on")


@pytest.mark.django_db(transaction=True)
def test_once_storage_is_back_the_next_request_is_accepted(client, alice, settings, devstack, devstack_keys):
    """A connection opened during the fault is not reused: the 503 and /healthz's failed probe close it."""
    from onboarding import services as onboarding_services

    settings.HOKUSAI_REGISTRY_URL = devstack.url
    onboarding_services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    try:
        client.raise_request_exception = False
        client.force_login(alice)
        _this_connection_read_only()
        refused = client.post(reverse("onboarding:connectivity"), {})
        assert refused.status_code == 503 and refused["Retry-After"] == "30"
        accepted = client.post(reverse("onboarding:connectivity"), {})  # the database itself never was read-only
        assert accepted.status_code == 302 and CheckRun.objects.count() == 1

        _this_connection_read_only()
        assert client.get("/healthz").json()["checks"]["database"]["ok"] is False
        assert client.get("/healthz").json()["checks"]["database"]["ok"] is True
    finally:
        connection.close()  # never leave a read-only session to the test database's flush
