"""Thin Celery tasks: an id in, a service call, the result saved as domain rows."""

from celery import shared_task

from . import services, worker  # noqa: F401  (worker: the heartbeat thread's signal handlers)


@shared_task(name="onboarding.check_run", ignore_result=True)
def check_run_task(run_id: int) -> None:
    services.check_run_execute(run_id=run_id)
