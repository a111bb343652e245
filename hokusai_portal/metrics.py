"""The portal's own Prometheus metrics (`hokusai_*`), counted where things happen, in any process.

Under `make run` / `make production` every process gets PROMETHEUS_MULTIPROC_DIR (hokusai_portal/supervise.py):
prometheus-client then keeps each process's values in files there, and /metrics (operations/views.py) adds
them up, so a counter moved by one Celery worker shows in a scrape answered by either gunicorn worker. What
the database already knows (runs in flight, pending emails and deliveries, components up) is read at scrape
time instead (operations/collectors.py): one answer, whichever process is asked."""

import os

from prometheus_client import Counter, Histogram, multiprocess

# Seconds: a check takes from under one to tens (a registration up to a minute).
CHECK_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
# Seconds a queued check waits for a worker: ~0.1 when idle; the sweeper gives up at 20 (no worker) or 120.
QUEUE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60, 120)

checks_total = Counter(
    "hokusai_checks_total", "Check runs ended, by kind, status and cause code.", ["kind", "status", "cause"]
)
check_duration_seconds = Histogram(
    "hokusai_check_duration_seconds",
    "Seconds from a worker's start to the check's verdict.",
    ["kind"],
    buckets=CHECK_BUCKETS,
)
check_queue_seconds = Histogram(
    "hokusai_check_queue_seconds", "Seconds a check waited queued before a worker took it.", buckets=QUEUE_BUCKETS
)
webhook_deliveries_total = Counter(
    "hokusai_webhook_deliveries_total", "Webhook delivery attempts, by result (succeeded, failed).", ["result"]
)
login_failures_total = Counter("hokusai_login_failures_total", "Sign-in attempts refused (wrong credentials).")


def check_ended(*, kind: str, status: str, cause: str, started_at=None, finished_at=None) -> None:
    checks_total.labels(kind=kind, status=status, cause=cause or "NONE").inc()
    if started_at is not None and finished_at is not None:
        check_duration_seconds.labels(kind=kind).observe(max((finished_at - started_at).total_seconds(), 0))


def process_exited(pid: int) -> None:
    """A process of the set is gone: drop its live gauges' files (prometheus-client's multiprocess clean-up;
    gunicorn's child_exit and Celery's shutdown signals call it). Its counters stay counted."""
    if os.getenv("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
