from celery import shared_task

from . import services


@shared_task(name="webhooks.deliver_due", ignore_result=True)
def deliver_due_task() -> None:
    services.deliver_due()
