"""Every run ends with its true cause, under each fault injected one at a time (onboarding/lifecycle.py).

A real worker process runs the checks against the devstack. The beat process that calls the sweep
every second in `make run` and production is stood in for by calling the sweep from the test, as
beat would; `test_make_run.py` and `test_production_set.py` run the real beat."""

import contextlib
import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from onboarding import lifecycle, services
from onboarding.models import CheckRun, WorkerHeartbeat
from tests.conftest import wait_for_run
from tests.fault_servers import slow_proxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def keyed_alice(alice, devstack, devstack_keys, settings):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    return alice


def queued_run(user, *, created_ago: float = 0, deadline_in: float = lifecycle.QUEUE_GRACE_SECONDS) -> CheckRun:
    """A run as the web process leaves it, not yet published."""
    now = timezone.now()
    return CheckRun.objects.create(
        user=user,
        registry_url="http://127.0.0.1:1",
        key_masked="hk_test_abcd…yz",
        created_at=now - timedelta(seconds=created_ago),
        deadline_at=now + timedelta(seconds=deadline_in),
    )


def sweep_until_finished(run_id: int, timeout: float) -> tuple[CheckRun, float]:
    """Call the sweep once a second, as beat does, until the run has ended."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        lifecycle.check_runs_sweep()
        run = CheckRun.objects.get(pk=run_id)
        if run.is_finished:
            return run, time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {CheckRun.objects.get(pk=run_id).status} after {timeout}s")


@pytest.fixture
def paused_worker(celery_worker):
    """The worker process stopped (SIGSTOP) until its heartbeat is stale: a hung or dead worker."""
    os.kill(celery_worker.pid, signal.SIGSTOP)
    try:
        time.sleep(lifecycle.LEASE_SECONDS + 0.5)
        yield celery_worker
    finally:
        os.kill(celery_worker.pid, signal.SIGCONT)


def test_a_run_that_waited_in_the_queue_gets_its_whole_deadline_from_its_start(keyed_alice, celery_worker, settings):
    # Seen before: a run that waited 38 s in the queue, then passed all 8 steps, was ended as WORKER_LOST.
    run = queued_run(keyed_alice, created_ago=38, deadline_in=5)
    CheckRun.objects.filter(pk=run.pk).update(registry_url=settings.HOKUSAI_REGISTRY_URL)
    services.check_run_enqueue(run_id=run.pk)
    run = wait_for_run(run.pk)
    lifecycle.check_runs_sweep()
    run.refresh_from_db()
    assert (run.status, run.cause, run.attempt) == (CheckRun.Status.PASSED, "OK", 1)
    assert (run.started_at - run.created_at).total_seconds() >= 38
    assert run.deadline_at > run.started_at + timedelta(seconds=15)


def test_a_run_queued_while_the_broker_was_down_runs_once_it_answers(client, keyed_alice, celery_worker, settings):
    client.force_login(keyed_alice)
    good_broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there: the broker is down at submit
    page = client.post(reverse("onboarding:connectivity"), {}, follow=True).content.decode()
    assert "Queued, workers unavailable" in page
    run = CheckRun.objects.get()
    assert run.status == CheckRun.Status.QUEUED and run.enqueue_error
    lifecycle.check_runs_sweep()  # still down: it stays queued, and says why
    assert CheckRun.objects.get().enqueue_error

    settings.CELERY_BROKER_URL = good_broker  # the broker is back
    back = time.monotonic()
    run, _ = sweep_until_finished(run.pk, timeout=30)
    assert (run.status, run.cause, run.enqueue_error) == (CheckRun.Status.PASSED, "OK", "")
    print(f"broker back -> verdict: {time.monotonic() - back:.1f} s")


def test_a_run_whose_worker_died_is_run_again_then_lost_if_it_dies_again(keyed_alice, settings):
    # The broker is down meanwhile, so the re-queued run waits for this test's claims, not the real worker's.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    run = queued_run(keyed_alice)
    first = lifecycle.check_run_claim(run_id=run.pk, worker="gone:1", deadline_seconds=15)
    assert first.attempt == 1
    assert lifecycle.check_run_claim(run_id=run.pk, worker="other:2", deadline_seconds=15) is None  # a duplicate
    stale = timezone.now() - timedelta(seconds=lifecycle.LEASE_SECONDS + 1)
    CheckRun.objects.filter(pk=run.pk).update(heartbeat_at=stale)  # its worker stopped beating

    swept = lifecycle.check_runs_sweep(now=timezone.now())
    run.refresh_from_db()
    assert swept.get("requeued") == 1 and run.status == CheckRun.Status.QUEUED
    assert run.enqueue_error  # not handed over yet: the next sweep tries again
    second = lifecycle.check_run_claim(run_id=run.pk, worker="gone:3", deadline_seconds=15)
    assert second.attempt == 2
    step = {"name": "dns", "title": "DNS lookup", "status": "pass", "cause": "OK", "evidence": {"host": "x"}}
    with pytest.raises(lifecycle.Superseded):  # the first worker, were it alive, may not write any more
        lifecycle.check_step_save(run=first, position=1, fields=step)
    lifecycle.check_step_save(run=second, position=1, fields=step)  # the attempt that holds the run may
    assert list(run.steps.values_list("name", "evidence")) == [("dns", {"host": "x"})]
    CheckRun.objects.filter(pk=run.pk).update(heartbeat_at=stale)
    lifecycle.check_runs_sweep()
    run.refresh_from_db()
    assert (run.status, run.cause) == (CheckRun.Status.LOST, "WORKER_LOST")


def test_a_check_longer_than_the_lease_keeps_it_while_its_worker_beats(keyed_alice, live_worker, settings, devstack):
    """A registry that answers each call in a second: the check outlasts the lease, and the sweep (every
    second) must not take a run from a worker that is alive and working on it (the heartbeat keeps the lease
    of the runs its process holds)."""
    with slow_proxy(devstack.url, 1.0) as slow_registry:
        settings.HOKUSAI_REGISTRY_URL = slow_registry
        run = services.connectivity_check_start(user=keyed_alice, model_name="")
        finished, took = sweep_until_finished(run.pk, timeout=40)
    assert took > lifecycle.LEASE_SECONDS + 1
    assert (finished.status, finished.cause, finished.attempt) == (CheckRun.Status.PASSED, "OK", 1)


def test_the_rows_of_workers_dead_for_an_hour_are_pruned_by_the_sweep(db, monkeypatch):
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="gone:1", pid=1, beat_at=now - timedelta(hours=2))  # killed, no goodbye
    WorkerHeartbeat.objects.create(name="recent:2", pid=2, beat_at=now - timedelta(minutes=5))  # for the admin
    monkeypatch.setattr(lifecycle, "_pruned_at", None)
    assert lifecycle.check_runs_sweep() == {}  # nothing else to do
    names = set(WorkerHeartbeat.objects.values_list("name", flat=True))  # and the session's worker's, if it runs
    assert "gone:1" not in names and "recent:2" in names


def test_the_workers_own_verdict_wins_over_an_expiry_that_raced_it(keyed_alice):
    run = queued_run(keyed_alice)
    held = lifecycle.check_run_claim(run_id=run.pk, worker=lifecycle.worker_name(), deadline_seconds=15)
    CheckRun.objects.filter(pk=run.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    lifecycle.check_runs_sweep()
    assert CheckRun.objects.get(pk=run.pk).cause == "DEADLINE_EXCEEDED"
    assert lifecycle.check_run_finish(run=held, status=CheckRun.Status.PASSED, cause="OK")
    run.refresh_from_db()
    assert (run.status, run.cause) == (CheckRun.Status.PASSED, "OK")


def test_the_worker_keeps_its_database_connections_from_check_to_check(keyed_alice, live_worker):
    """Celery closes a worker's connections after every task; the portal keeps them, as Django keeps a
    request's: a new PostgreSQL session per check cost the database ~15 ms of CPU (issue 27)."""
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL's sessions (pg_stat_database); SQLite opens no server session")

    def sessions_so_far() -> int:
        time.sleep(1.5)  # a live session's statistics reach pg_stat_database at most once a second
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = sessions_so_far()
    for _ in range(8):
        run = services.connectivity_check_start(user=keyed_alice, model_name="")
        assert wait_for_run(run.pk).status == CheckRun.Status.PASSED
    # At most one per worker thread (the test worker's --concurrency 4), where it was one per check.
    assert sessions_so_far() - before <= 4


def test_a_check_after_the_database_dropped_the_workers_connections_still_passes(keyed_alice, live_worker):
    """A kept connection is checked before a task uses it (close_old_connections, CONN_HEALTH_CHECKS): a
    database restart or an idle timeout between checks costs the next check nothing."""
    if connection.vendor != "postgresql":
        pytest.skip("ends PostgreSQL sessions (pg_terminate_backend); SQLite opens no server session")
    assert wait_for_run(services.connectivity_check_start(user=keyed_alice, model_name="").pk).status == "passed"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1  # the worker's
    for _ in range(4):  # whichever of its threads takes it
        run = wait_for_run(services.connectivity_check_start(user=keyed_alice, model_name="").pk)
        assert (run.status, run.cause) == (CheckRun.Status.PASSED, "OK")


def test_a_queued_run_with_no_live_worker_ends_as_workers_unavailable(client, keyed_alice, paused_worker):
    run = queued_run(keyed_alice, created_ago=lifecycle.QUEUE_GRACE_SECONDS + 1, deadline_in=-1)
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["failing"] == ["workers"]
    assert "no worker heartbeat" in health.json()["checks"]["workers"]["error"]
    lifecycle.check_runs_sweep()
    run.refresh_from_db()
    assert (run.status, run.cause) == (CheckRun.Status.LOST, "WORKERS_UNAVAILABLE")
    client.force_login(keyed_alice)
    page = client.get(reverse("onboarding:check_run", args=[run.pk])).content.decode()
    assert "Did not finish" in page and "No worker of the portal took the check in time" in page
    assert "Run the check again" in page


def test_a_queued_run_shows_how_many_are_ahead_of_it(client, keyed_alice, paused_worker):
    runs = [queued_run(keyed_alice, created_ago=10 - i) for i in range(3)]
    client.force_login(keyed_alice)
    page = client.get(reverse("onboarding:check_run", args=[runs[2].pk])).content.decode()
    assert "2 checks ahead of it" in page
    assert "next for a worker" in client.get(reverse("onboarding:check_run", args=[runs[0].pk])).content.decode()


def test_healthz_names_each_part_that_is_down(client, devstack, live_worker, settings):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    body = client.get("/healthz").json()
    assert body["ok"] is True and body["failing"] == [], body
    assert body["checks"]["workers"]["alive"] >= 1 and body["checks"]["workers"]["last_beat_age_s"] < 3

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    assert client.get("/healthz").json()["failing"] == ["broker"]


def _mount_tmpfs(path, options: str) -> None:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root (mount said: {result.stderr.decode().strip()})")


def test_healthz_is_503_when_the_broker_folder_refuses_writes(client, devstack, live_worker, settings, tmp_path):
    import subprocess

    settings.HOKUSAI_REGISTRY_URL = devstack.url
    folder = tmp_path / "broker"
    _mount_tmpfs(folder, "size=1m")
    try:
        for sub in ("in", "processed", "control"):
            (folder / sub).mkdir()
        settings.CELERY_BROKER_URL = "filesystem://"
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            "data_folder_in": str(folder / "in"),
            "data_folder_out": str(folder / "in"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
        }
        assert client.get("/healthz").json()["checks"]["broker"]["ok"] is True
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        body = client.get("/healthz").json()
        assert body["failing"] == ["broker"], body
    finally:
        subprocess.run(["umount", str(folder)])


def refuse_writes() -> None:
    """This process's database connection refuses writes, as a read-only replica or volume does. A 503 closes
    the connection it came from (a new one sees the database as it is now): call it again before each request."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET SESSION default_transaction_read_only = on")


@contextlib.contextmanager
def read_only_database():
    refuse_writes()
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA query_only = OFF")
            else:
                cursor.execute("SET SESSION default_transaction_read_only = off")


def test_a_read_only_database_is_a_503_that_says_so_and_healthz_names_it(
    client, keyed_alice, devstack, live_worker, settings
):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    client.raise_request_exception = False
    client.force_login(keyed_alice)
    with read_only_database():
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["failing"] == ["database"], health.json()
        refuse_writes()
        response = client.post(reverse("onboarding:connectivity"), {})
        assert response.status_code == 503
        page = response.content.decode()
        assert "The portal cannot save right now" in page and "Traceback" not in page
        assert response["Retry-After"] == "30"
        stranger = Client(raise_request_exception=False)
        refuse_writes()
        login = stranger.post(reverse("accounts:login"), {"login": "alice", "password": "correct horse battery staple"})
        assert login.status_code == 503  # signing in saves a session: refused clearly, never a 500
    assert CheckRun.objects.count() == 0


def test_any_other_error_gets_the_plain_500_page(client, settings):
    from hokusai_portal.views import server_error

    try:
        raise KeyError("a bug")
    except KeyError:
        response = server_error(client.get("/healthz").wsgi_request)
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


@pytest.mark.skipif(
    os.getenv("DATABASE_URL", "").startswith("postgres") is False,
    reason="injects a full disk with a PostgreSQL trigger (disk_full); SQLite's RAISE() can only signal a constraint",
)
def test_a_worker_that_cannot_save_its_steps_says_so(keyed_alice, celery_worker, settings):
    run = queued_run(keyed_alice)
    CheckRun.objects.filter(pk=run.pk).update(registry_url=settings.HOKUSAI_REGISTRY_URL)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION full_disk() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; "
            "END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER full_disk BEFORE INSERT ON onboarding_checkstep FOR EACH ROW "
            f"WHEN (NEW.run_id = {run.pk}) EXECUTE FUNCTION full_disk()"
        )
    try:
        started = time.monotonic()
        services.check_run_enqueue(run_id=run.pk)
        run = wait_for_run(run.pk, timeout=20)
        assert (run.status, run.cause) == (CheckRun.Status.FAILED, "STORAGE_UNAVAILABLE")
        print(f"disk full mid-check -> STORAGE_UNAVAILABLE in {time.monotonic() - started:.1f} s")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER full_disk ON onboarding_checkstep")
            cursor.execute("DROP FUNCTION full_disk()")
