from celery import shared_task

from . import services


@shared_task(name="triage.sla_warnings", ignore_result=True)
def sla_warnings_task() -> None:
    """Beat sends it every minute: owners hear of a goal at 75 % (an internal note, on their queue)."""
    services.sla_warnings_send()
