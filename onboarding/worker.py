"""What a Celery worker process does besides tasks: a heartbeat thread (the worker's liveness for
/healthz and the sweeper, and the lease of every run it holds), and a clean goodbye on shutdown.

And what beat's process does besides sending: the run sweep (lifecycle.check_runs_sweep), every
CHECK_RUNS_SWEEP_SECONDS in a thread of its own. Not a Celery task: a sweep that a worker must run
cannot judge the workers (a stopped worker left every queued check "Queued" for as long as it was
stopped, then ran a backlog of stale sweeps)."""

import logging
import threading

from celery.signals import beat_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection

from . import lifecycle

logger = logging.getLogger(__name__)
_stop = threading.Event()


def _beat_forever(name: str) -> None:
    while True:
        try:
            lifecycle.worker_beat(name=name)
        except Exception as exc:  # a database that is down now may answer at the next beat
            logger.warning("worker heartbeat not saved: %s", type(exc).__name__)
            connection.close()
        if _stop.wait(lifecycle.HEARTBEAT_SECONDS):
            return


@worker_ready.connect
def _start_heartbeat(**kwargs) -> None:
    close_old_connections()
    threading.Thread(
        target=_beat_forever, args=(lifecycle.worker_name(),), name="portal-heartbeat", daemon=True
    ).start()


@worker_shutdown.connect
def _say_goodbye(**kwargs) -> None:
    _stop.set()
    try:
        lifecycle.worker_gone(name=lifecycle.worker_name())
    except Exception as exc:
        logger.warning("worker heartbeat row not removed: %s", type(exc).__name__)


def _sweep_forever(period: float) -> None:
    while True:
        try:
            lifecycle.check_runs_sweep()
        except Exception as exc:  # a database that is down now may answer at the next sweep
            logger.warning("run sweep failed: %s", type(exc).__name__)
            connection.close()
        if _stop.wait(period):
            return


@beat_init.connect
def _start_run_sweep(**kwargs) -> None:
    threading.Thread(
        target=_sweep_forever, args=(settings.CHECK_RUNS_SWEEP_SECONDS,), name="portal-run-sweep", daemon=True
    ).start()
