from celery import shared_task

from . import services


@shared_task(name="notifications.outbox_send", ignore_result=True)
def outbox_send_task() -> None:
    services.outbox_send()


@shared_task(name="notifications.digests_send", ignore_result=True)
def digests_send_task() -> None:
    services.digests_send()
