"""gunicorn's settings and server hooks (`--config python:hokusai_portal.gunicorn_conf`, set by
hokusai_portal/supervise.py)."""

import os

from hokusai_portal import logs, metrics, tracing

if os.getenv("LOG_FORMAT", "").strip().lower() == "json":
    # gunicorn's own lines (start, workers, the access log) as JSON objects too, as its docs' logconfig_dict.
    logconfig_dict = logs.logging_config("json", "INFO")
    logconfig_dict["loggers"] = {
        name: {"handlers": ["console"], "level": "INFO", "propagate": False}
        # uvicorn's: the ASGI workers (uvicorn-worker) log requests as uvicorn.access.
        for name in ("gunicorn.error", "gunicorn.access", "uvicorn.error", "uvicorn.access")
    }


def child_exit(server, worker) -> None:
    # prometheus-client's multiprocess mode: a gunicorn worker that exited leaves no live gauge behind.
    metrics.process_exited(worker.pid)


def post_fork(server, worker) -> None:
    # OpenTelemetry after the fork (its exporter thread does not survive one); on only with OTEL_EXPORTER_OTLP_ENDPOINT.
    tracing.setup("web")


def worker_exit(server, worker) -> None:
    tracing.shutdown()
