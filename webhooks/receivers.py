"""Events: from triage's timeline (created, status changed, resolved, verdict set) and onboarding's checks
(registration completed, check failed). Payloads hold what the portal shows in public: no keys, no
reporters' notes, no internal notes."""

from django.dispatch import receiver

from onboarding.signals import check_run_finished
from triage.models import Finding, Investigation, TimelineEvent
from triage.signals import timeline_event_added

from . import services
from .models import EventType

Kind = TimelineEvent.Kind


def _investigation(investigation: Investigation) -> dict:
    """The investigation as of the step being sent (the step's status was saved before it was recorded)."""
    return {
        "id": investigation.number,
        "title": investigation.title,
        "severity": investigation.severity,
        "status": investigation.status,
        "resolution": investigation.resolution or None,
        # The reporters' organizations (the customers affected), by name.
        "organizations": sorted(
            {name for name in investigation.reports.values_list("check_run__organization__name", flat=True) if name}
        ),
    }


def _organization(run) -> dict | None:
    """The organization the check ran in (None for a developer in none)."""
    return {"id": run.organization_id, "name": run.organization.name} if run.organization_id else None


@receiver(timeline_event_added)
def timeline_events(sender, event: TimelineEvent, **kwargs) -> None:
    """Each step of a user action is its own message; `action` (the step's action id) lets a consumer group
    the steps of one action, e.g. the statuses "resolve as fixed" walks through."""
    investigation = event.investigation
    action = str(event.action_id)
    if event.kind == Kind.CREATED:
        services.event_emit(
            EventType.INVESTIGATION_CREATED, {"investigation": _investigation(investigation), "action": action}
        )
    elif event.kind == Kind.STATUS:
        data = {"investigation": _investigation(investigation), "from": event.old, "to": event.new, "action": action}
        services.event_emit(EventType.INVESTIGATION_STATUS_CHANGED, data)
        if event.new == Investigation.Status.RESOLVED:
            services.event_emit(
                EventType.INVESTIGATION_RESOLVED, {"investigation": _investigation(investigation), "action": action}
            )
    elif event.kind == Kind.FINDING_VERDICT and event.new in Finding.VERDICTS:
        data = {
            "investigation": _investigation(investigation),
            "finding": event.target,
            "verdict": event.new,
            "action": action,
        }
        services.event_emit(EventType.FINDING_VERDICT_SET, data)


@receiver(check_run_finished)
def check_events(sender, run, **kwargs) -> None:
    if run.kind == run.Kind.REGISTRATION and run.status == run.Status.PASSED:
        from onboarding.models import Registration

        registration = Registration.objects.filter(check_run=run).first()
        if registration is not None:
            services.event_emit(
                EventType.REGISTRATION_COMPLETED,
                {
                    "model_name": registration.model_name,
                    "version": registration.version,
                    "token_id": registration.token_id,
                    "metric": registration.metric_name,
                    "baseline": registration.baseline_value,
                    "model_uri": registration.model_uri,
                    "registry": run.registry_url,
                    "organization": _organization(run),
                },
            )
    elif run.kind == run.Kind.CONNECTIVITY and run.status == run.Status.FAILED:
        services.event_emit(
            EventType.CHECK_FAILED,
            {"check": run.pk, "cause": run.cause, "registry": run.registry_url, "organization": _organization(run)},
        )
