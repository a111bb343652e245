"""Thin Celery tasks: an id in, a service call, the result saved as domain rows."""

from celery import shared_task

from . import services


@shared_task(name="onboarding.connectivity_check", ignore_result=True)
def connectivity_check_task(run_id: int) -> None:
    services.check_run_execute(run_id=run_id)
