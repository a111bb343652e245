from celery import shared_task

from . import probes


@shared_task(name="status.probes_run", ignore_result=True)
def probes_run_task() -> None:
    probes.probes_run()


@shared_task(name="status.prune", ignore_result=True)
def prune_task() -> None:
    probes.prune()
