import os

from celery import Celery, signals
from django.db import close_old_connections
from kombu.transport import TRANSPORT_ALIASES

from hokusai_portal import logs, metrics, runtime, tracing

# `filesystem://` means the portal's atomic filesystem transport (hokusai_portal/broker.py): kombu's own
# lets a reader see a half-written message. An alias, not `broker_transport`, so other URLs keep their scheme.
TRANSPORT_ALIASES["filesystem"] = "hokusai_portal.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")
runtime.prepare()

app = Celery("hokusai_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Operations (issue 26): a worker process that stops leaves no live gauge in the metrics folder
# (prometheus-client's multiprocess clean-up). With the threads pool the worker is its own process:
# worker_shutdown; a prefork child says worker_process_shutdown.
@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _metrics_process_exited(**kwargs) -> None:
    metrics.process_exited(os.getpid())


# Launch-day scale (issue 27): a task's database connections are kept as Django keeps a request's, not
# closed after each task (settings.CELERY_DB_REUSE_MAX turns Celery's closing off). Time limits, the edge case
# for which Celery closes them (a query interrupted by SIGALRM leaves a connection that looks usable), need
# the prefork pool; the portal's workers use threads, and a check keeps its own deadline per registry call.
@signals.task_prerun.connect
@signals.task_postrun.connect
def _database_connections_as_django_keeps_them(sender=None, **kwargs) -> None:
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # run inline by its caller, maybe inside its transaction: the caller's connection, not ours
    close_old_connections()


# Operations (issue 26): log lines of a task carry its run id and the id of the request that queued it.
signals.before_task_publish.connect(logs.task_published, weak=False)
signals.task_prerun.connect(logs.task_started, weak=False)
signals.task_postrun.connect(logs.task_ended, weak=False)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _mask_secrets_in_celerys_own_handlers(logger=None, **kwargs) -> None:
    # Plain format: Celery's own handlers write the worker's lines; they mask keys and tokens as ours do.
    for handler in logger.handlers if logger is not None else []:
        handler.addFilter(logs.RedactSecrets())


# Operations (issue 26): the status page judges the workers and the broker by probe results. Beat's first
# round would come a whole period after start, and until then the page said "major outage": probe at once.
@signals.beat_init.connect
def _status_probes_at_start(sender=None, **kwargs) -> None:
    app.send_task("status.probes_run", expires=30)


# Operations (issue 26): OpenTelemetry in each worker process once it exists (threads pool: the worker itself;
# prefork: each child), on only with OTEL_EXPORTER_OTLP_ENDPOINT; flushed as it stops.
@signals.worker_init.connect
def _tracing_in_worker(**kwargs) -> None:
    tracing.setup("worker")


@signals.worker_process_init.connect
def _tracing_in_worker_process(**kwargs) -> None:
    tracing.setup("worker")


@signals.worker_shutdown.connect
def _tracing_flushed(**kwargs) -> None:
    tracing.shutdown()


# Operations (issue 26): error reports. sentry-sdk's Celery docs want init at the worker's start, not when a
# task module is imported; settings.py does it (SENTRY_DSN), and reading a setting here loads them at the
# latest now, before the worker takes a task. Prefork children inherit it: the SDK starts its sending thread
# again in a forked process by itself.
@signals.celeryd_init.connect
def _error_reports_at_worker_start(**kwargs) -> None:
    from django.conf import settings

    _ = settings.SENTRY_DSN
