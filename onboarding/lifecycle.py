"""A check run's life: queued → running → ended, and who ends it when.

- **Queued**: the web process creates the run and publishes its id on commit. `deadline_at` is the
  queue grace from then. If the broker refused the message, `enqueue_error` says why and the sweeper
  publishes it again as soon as the broker answers.
- **Running**: a worker claims the run (a guarded update: a message delivered twice runs once) and
  holds a lease: its worker's heartbeat thread refreshes `heartbeat_at` every second. `deadline_at`
  becomes the check's own deadline from its start, not from its creation.
- **Ended**: the worker writes passed/failed. Otherwise the sweeper (a beat task, every second) ends
  it: a run whose lease went stale (its worker was killed) is queued again once, then `WORKER_LOST`;
  a queued run past its grace with no live worker is `WORKERS_UNAVAILABLE`; a running run past its
  deadline is `DEADLINE_EXCEEDED`. The worker's own final write still wins over a sweep that raced it.
"""

import logging
import os
import socket
import threading
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from hokusai_portal import metrics

from .models import CheckRun, CheckStep, Registration, WorkerHeartbeat

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
# A lease (or a worker) not refreshed for this long belongs to a process that is gone.
LEASE_SECONDS = 4
# How long a queued run waits for a worker before the sweeper looks at it.
QUEUE_GRACE_SECONDS = 20
# A queued run no worker has taken in this long ends, even while workers are alive (a backlog).
MAX_QUEUE_SECONDS = 120
# A run whose worker died is run once more, by another worker or the restarted one.
MAX_ATTEMPTS = 2
# Time a worker gets after its check's own deadline to save the verdict.
FINISH_SLACK_SECONDS = 2
# Rows of workers that died without a goodbye (SIGKILL) are kept this long, for the admin, then pruned
# (by a sweep at most this often: the rows of dead workers do not change from second to second).
DEAD_WORKER_KEEP_SECONDS = 3600
DEAD_WORKER_PRUNE_SECONDS = 60

ACTIVE = (CheckRun.Status.QUEUED, CheckRun.Status.RUNNING)


class Superseded(Exception):
    """The run was taken over (its lease went stale) or ended by the sweeper: stop working on it."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def check_run_claim(*, run_id: int, worker: str, deadline_seconds: float | dict[str, float]) -> CheckRun | None:
    """Take a queued run, or a running one whose worker stopped beating (a redelivered message).
    Returns None for a run that is someone else's, or over: a duplicate message does nothing.
    `deadline_seconds`: the check's own deadline (by the run's kind, when a dict)."""
    now = timezone.now()
    # The run as it is (with its developer, their progress: the verdict's bookkeeping reads it, and their own key:
    # the check runs with it unless the run is the organization's), then the
    # claim, guarded by the attempt read here: a run claimed in between is not claimed twice.
    run = CheckRun.objects.select_related("user__onboarding_progress", "user__api_key").filter(pk=run_id).first()
    if run is None:
        return None
    deadline = deadline_seconds[run.kind] if isinstance(deadline_seconds, dict) else deadline_seconds
    claimable = Q(status=CheckRun.Status.QUEUED) | Q(
        status=CheckRun.Status.RUNNING, heartbeat_at__lt=now - timedelta(seconds=LEASE_SECONDS)
    )
    claim = {
        "status": CheckRun.Status.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "worker": worker[:200],
        "deadline_at": now + timedelta(seconds=deadline + FINISH_SLACK_SECONDS),
    }
    # A first attempt (the usual case) has no steps to clear, so it claims in one statement; a later one
    # clears the earlier attempt's steps in the same transaction.
    with transaction.atomic() if run.attempt else nullcontext():
        claimed = CheckRun.objects.filter(claimable, pk=run_id, attempt=run.attempt, attempt__lt=MAX_ATTEMPTS).update(
            attempt=F("attempt") + 1, **claim
        )
        if not claimed:
            return None
        if run.attempt:
            CheckStep.objects.filter(run_id=run_id).delete()  # an earlier attempt's steps: this one starts over
    for name, value in {**claim, "attempt": run.attempt + 1}.items():
        setattr(run, name, value)  # what the claim wrote, without reading the row again
    if run.attempt == 1:  # a re-queued attempt's wait is counted from its first queueing: not a queue wait
        metrics.check_queue_seconds.observe(max((now - run.created_at).total_seconds(), 0))
    return run


def check_step_save(*, run: CheckRun, position: int, fields: dict) -> None:
    """Save a step of this attempt only while the attempt still holds the run, else raise Superseded. One
    statement: an insert conditional on the run's row. (The lease is kept by the worker's heartbeat thread,
    worker_beat; a step used to refresh it too, in a statement of its own: 8 of a check's 30 queries.)"""
    step = CheckStep(run=run, position=position, **fields)
    concrete = [f for f in CheckStep._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in concrete)
    values = [f.get_db_prep_save(f.pre_save(step, add=True), connection) for f in concrete]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(CheckStep._meta.db_table)} ({columns}) SELECT {', '.join(['%s'] * len(values))} "
            f"FROM {quote(CheckRun._meta.db_table)} WHERE id = %s AND attempt = %s AND status = %s",
            [*values, run.pk, run.attempt, CheckRun.Status.RUNNING],
        )
        if cursor.rowcount != 1:
            raise Superseded(f"check run {run.pk} attempt {run.attempt} is no longer this worker's")


def check_run_finish(*, run: CheckRun, status: str, cause: str) -> bool:
    """The worker's verdict. It wins over the sweeper's (a lost or timed-out mark), never over a newer attempt."""
    finished_at = timezone.now()
    saved = bool(
        CheckRun.objects.filter(
            pk=run.pk, attempt=run.attempt, status__in=[CheckRun.Status.RUNNING, CheckRun.Status.LOST]
        ).update(status=status, cause=cause, finished_at=finished_at)
    )
    if saved:
        run.status, run.cause, run.finished_at = status, cause, finished_at
        metrics.check_ended(
            kind=run.kind, status=status, cause=cause, started_at=run.started_at, finished_at=finished_at
        )
    return saved


# The runs this process's threads are working on: the heartbeat keeps their lease (worker_beat). A set of ids
# and a lock: a worker holds at most its --concurrency runs at once.
_held: set[int] = set()
_held_lock = threading.Lock()


@contextmanager
def lease_kept(run_id: int):
    """While a thread of this process works on `run_id` (entered before the claim, so no claimed run goes a
    beat without its lease), the heartbeat refreshes the run's lease; a worker holding none writes only its
    own row."""
    with _held_lock:
        _held.add(run_id)
    try:
        yield
    finally:
        with _held_lock:
            _held.discard(run_id)


def worker_beat(*, name: str) -> None:
    """One heartbeat of a worker process: its own row, and the lease of every run it holds. One statement a
    second for an idle worker (was five: a locked read, its update and the transaction's begin and commit,
    and the lease update of no run; issue 27)."""
    now = timezone.now()
    if not WorkerHeartbeat.objects.filter(name=name).update(beat_at=now, pid=os.getpid()):
        WorkerHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": now, "pid": os.getpid()})
    with _held_lock:
        held = list(_held)
    if held:
        CheckRun.objects.filter(pk__in=held, status=CheckRun.Status.RUNNING, worker=name).update(heartbeat_at=now)


def worker_gone(*, name: str) -> None:
    """A worker that stops cleanly says so: no stale row left to look alive or dead."""
    WorkerHeartbeat.objects.filter(name=name).delete()


def workers_alive(*, now=None) -> int:
    now = now or timezone.now()
    return WorkerHeartbeat.objects.filter(beat_at__gte=now - timedelta(seconds=LEASE_SECONDS)).count()


def _end(runs, *, status: str, cause: str, now) -> int:
    ids = list(runs.values_list("pk", flat=True))
    if not ids:
        return 0
    with transaction.atomic():
        # Locked, so the kinds counted are those of the runs this sweep ends (a racing worker's verdict waits).
        kinds = list(
            CheckRun.objects.select_for_update().filter(pk__in=ids, status__in=ACTIVE).values_list("kind", flat=True)
        )
        ended = CheckRun.objects.filter(pk__in=ids, status__in=ACTIVE).update(
            status=status, cause=cause, finished_at=now
        )
        # An ended registration may be retried; the retry finds any version it made by its idempotency tag.
        Registration.objects.filter(check_run_id__in=ids).update(failed=True)
    for run_id in ids:
        logger.warning("check run %s ended by the sweeper: %s", run_id, cause)
    for kind in kinds:
        metrics.check_ended(kind=kind, status=status, cause=cause)
    return ended


def check_runs_sweep(*, now=None) -> dict[str, int]:
    """End or re-queue every run whose owner is gone. Safe to run anywhere, any number of times at once."""
    from .services import check_run_enqueue

    now = now or timezone.now()
    counts = {}
    stale = now - timedelta(seconds=LEASE_SECONDS)
    # What the sweep acts on, below; the usual second has none of it: one query, not eight (issue 27).
    dead = CheckRun.objects.filter(status=CheckRun.Status.RUNNING, heartbeat_at__lt=stale)
    overran = CheckRun.objects.filter(status=CheckRun.Status.RUNNING, deadline_at__lt=now)
    unsent = CheckRun.objects.filter(status=CheckRun.Status.QUEUED).exclude(enqueue_error="")
    waiting = CheckRun.objects.filter(status=CheckRun.Status.QUEUED, deadline_at__lt=now)
    # (The (status, deadline_at) index: only the active runs are read.)
    if not (dead | overran | unsent | waiting).filter(status__in=ACTIVE).exists():
        _prune_dead_workers(now=now)
        return counts

    # Running, but its worker stopped beating: once more from the start, then lost.
    retry_ids = list(dead.filter(attempt__lt=MAX_ATTEMPTS).values_list("pk", flat=True))
    counts["requeued"] = dead.filter(pk__in=retry_ids).update(
        status=CheckRun.Status.QUEUED, deadline_at=now + timedelta(seconds=QUEUE_GRACE_SECONDS)
    )
    for run_id in retry_ids:
        logger.warning("check run %s: its worker stopped; queued again", run_id)
        check_run_enqueue(run_id=run_id)
    counts["lost"] = _end(
        dead.filter(attempt__gte=MAX_ATTEMPTS), status=CheckRun.Status.LOST, cause="WORKER_LOST", now=now
    )

    # Running past its own deadline while its worker still beats: the check should have ended itself.
    counts["overran"] = _end(overran, status=CheckRun.Status.LOST, cause="DEADLINE_EXCEEDED", now=now)

    # Queued but never published (the broker was down at submit): publish now that the sweep runs.
    for run_id in unsent.values_list("pk", flat=True):
        check_run_enqueue(run_id=run_id)

    # Queued past its grace: no live worker ends it now; with live workers (a backlog, or a message a
    # dead worker had taken) it is published once more and waits, up to MAX_QUEUE_SECONDS in all.
    if not workers_alive(now=now):
        counts["unavailable"] = _end(waiting, status=CheckRun.Status.LOST, cause="WORKERS_UNAVAILABLE", now=now)
    else:
        counts["unavailable"] = _end(
            waiting.filter(created_at__lt=now - timedelta(seconds=MAX_QUEUE_SECONDS)),
            status=CheckRun.Status.LOST,
            cause="WORKERS_UNAVAILABLE",
            now=now,
        )
        backlog = list(waiting.values_list("pk", flat=True))
        CheckRun.objects.filter(pk__in=backlog).update(deadline_at=now + timedelta(seconds=QUEUE_GRACE_SECONDS))
        for run_id in backlog:
            check_run_enqueue(run_id=run_id)
    _prune_dead_workers(now=now)
    return {name: count for name, count in counts.items() if count}


_pruned_at = None  # when this process last pruned the rows of dead workers


def _prune_dead_workers(*, now) -> None:
    global _pruned_at
    if _pruned_at is not None and abs((now - _pruned_at).total_seconds()) < DEAD_WORKER_PRUNE_SECONDS:
        return
    WorkerHeartbeat.objects.filter(beat_at__lt=now - timedelta(seconds=DEAD_WORKER_KEEP_SECONDS)).delete()
    _pruned_at = now
