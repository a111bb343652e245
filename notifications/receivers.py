"""Reporters follow what they report; public timeline events notify followers."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from triage.models import Report, TimelineEvent
from triage.signals import timeline_action_recorded

from . import services
from .models import Follow


@receiver(post_save, sender=Report)
def reporter_follows(sender, instance: Report, created: bool, **kwargs) -> None:
    if created:
        services.follow(user=instance.reporter, investigation=instance.investigation, reason=Follow.Reason.REPORTED)


@receiver(timeline_action_recorded)
def followers_hear(sender, action_id, events, **kwargs) -> None:
    """After an action's last step: one email per follower for the whole action."""
    for event in events:
        if event.kind == TimelineEvent.Kind.SLA_WARNING:
            services.notify_owner_of_sla(event)  # the owner's, not the followers': it is internal
    services.notify(events)
