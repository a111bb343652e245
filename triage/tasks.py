from celery import shared_task

from . import sla


@shared_task(name="triage.sla_warnings", ignore_result=True)
def sla_warnings_task() -> None:
    """Beat sends it every minute: owners hear of a goal at 75 % (an internal note, on their queue)."""
    sla.warnings_send()
