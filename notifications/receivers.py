"""Reporters follow what they report; public timeline events notify followers."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from triage.models import Report
from triage.signals import timeline_event_added

from . import services
from .models import Follow


@receiver(post_save, sender=Report)
def reporter_follows(sender, instance: Report, created: bool, **kwargs) -> None:
    if created:
        services.follow(user=instance.reporter, investigation=instance.investigation, reason=Follow.Reason.REPORTED)


@receiver(timeline_event_added)
def followers_hear(sender, event, **kwargs) -> None:
    if event.subject == services.SLA_WARNING:
        services.notify_owner_of_sla(event)  # the owner's, not the followers': it is internal
        return
    services.notify(event)
