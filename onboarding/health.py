"""Probes for /healthz and the status page's portal-side components (status.probes): each proves its part works, not merely that it answers.

- database: a write (a heartbeat row inserted, then rolled back): a read-only database fails it;
- broker: a uniquely named message published to a uniquely named queue, read back, the queue deleted:
  an unwritable queue folder, a stopped Redis or RabbitMQ fails it, and it leaves nothing behind;
- workers: the age of the newest worker heartbeat (each worker process writes one a second);
- registry: GET /health with the registry's own trust store (HOKUSAI_REGISTRY_CA_BUNDLE).

Each returns a small dict and never raises. Errors show only their type: no hosts or paths."""

import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kombu import Exchange, Producer, Queue

from . import lifecycle
from .models import WorkerHeartbeat
from .registry_client import Deadline, RegistryClient

PROBE_TIMEOUT_SECONDS = 2.0


class ProbeFailed(Exception):
    pass


class _RolledBack(Exception):
    pass


def timed(probe: Callable[[], dict | None]) -> dict:
    started = time.perf_counter()
    try:
        extra = probe() or {}
    except Exception as exc:  # any failure is a "down" verdict; only its type is shown (no hosts leak)
        ok, error, extra = False, str(exc) if isinstance(exc, ProbeFailed) else type(exc).__name__, {}
    else:
        ok, error = True, None
    result = {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1), **extra}
    if error:
        result["error"] = error
    return result


def probe_database() -> None:
    try:
        with transaction.atomic():
            WorkerHeartbeat.objects.create(name=f"healthz-probe-{uuid.uuid4().hex}", pid=0, beat_at=timezone.now())
            raise _RolledBack
    except _RolledBack:
        pass
    except Exception:
        # Not reused: a connection opened while the database refused writes keeps refusing (a read-only
        # session); /healthz and the requests after it must see the database as it is now.
        connection.close()
        raise


def probe_broker() -> None:
    from hokusai_portal.celery import app

    name = f"portal.healthz.{uuid.uuid4().hex}"
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS  # from settings, not app.conf: tests point it elsewhere
    with app.connection_for_write(settings.CELERY_BROKER_URL, transport_options=options) as connection:
        connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
        with connection.channel() as channel:
            queue = Queue(name, Exchange(""), routing_key=name, auto_delete=True, durable=False)(channel)
            queue.declare()
            try:
                Producer(channel).publish({"probe": name}, routing_key=name, serializer="json", retry=False)
                deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
                message = queue.get(no_ack=True)
                while message is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                    message = queue.get(no_ack=True)
                if message is None or message.payload != {"probe": name}:
                    raise ProbeFailed("the probe message did not come back")
            finally:
                queue.delete()


def probe_workers() -> dict:
    alive = lifecycle.workers_alive()
    if not alive:
        raise ProbeFailed(f"no worker heartbeat in the last {lifecycle.LEASE_SECONDS} s")
    newest = WorkerHeartbeat.objects.exclude(pid=0).order_by("-beat_at").values_list("beat_at", flat=True).first()
    return {"alive": alive, "last_beat_age_s": round((timezone.now() - newest).total_seconds(), 1)}


def probe_registry() -> None:
    # The checks' own client: the same trust store (HOKUSAI_REGISTRY_CA_BUNDLE), timeouts and no retries.
    client = RegistryClient(settings.HOKUSAI_REGISTRY_URL, "", deadline=Deadline(PROBE_TIMEOUT_SECONDS))
    try:
        client.health().raise_for_status()
    finally:
        client.close()


def health_report() -> dict:
    checks = {
        "database": timed(probe_database),
        "broker": timed(probe_broker),
        "workers": timed(probe_workers),
        "registry": timed(probe_registry),
    }
    failing = [name for name, check in checks.items() if not check["ok"]]
    return {"ok": not failing, "failing": failing, "checks": checks}
