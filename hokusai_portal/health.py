"""Reachability probes for /healthz: each returns a small dict, never raises."""

import time
from collections.abc import Callable
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection
from kombu import Connection

PROBE_TIMEOUT_SECONDS = 2.0


def _timed(probe: Callable[[], None]) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure is a "down" verdict; only its type is shown (no hosts leak)
        ok, error = False, type(exc).__name__
    else:
        ok, error = True, None
    result = {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    if error:
        result["error"] = error
    return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    with Connection(url, transport_options=options, connect_timeout=PROBE_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
        if url.startswith("filesystem://"):
            # The filesystem transport "connects" to anything: prove the queue folder is writable.
            (Path(options["data_folder_in"]) / ".healthz-probe").write_text("ok")


def _registry() -> None:
    response = requests.get(
        f"{settings.HOKUSAI_REGISTRY_URL}/health",
        timeout=(PROBE_TIMEOUT_SECONDS / 2, PROBE_TIMEOUT_SECONDS),
    )
    response.raise_for_status()


def health_report() -> dict:
    checks = {"database": _timed(_database), "broker": _timed(_broker), "registry": _timed(_registry)}
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
