"""Events: from triage's timeline (created, status changed, resolved, verdict set) and onboarding's checks
(registration completed, check failed). Payloads hold what the portal shows in public: no keys, no
reporters' notes, no internal notes."""

from django.dispatch import receiver

from onboarding.signals import check_run_finished
from triage.models import Finding, Investigation, TimelineEvent
from triage.signals import timeline_event_added

from . import services
from .models import EventType

STATUS_VALUES = {label: value for value, label in Investigation.Status.choices}
VERDICT_LABELS = {label: value for value, label in Finding.Status.choices if value in Finding.VERDICTS}


def _investigation(investigation: Investigation) -> dict:
    return {
        "id": investigation.number,
        "title": investigation.title,
        "severity": investigation.severity,
        "status": investigation.status,
        "resolution": investigation.resolution or None,
    }


@receiver(timeline_event_added)
def timeline_events(sender, event: TimelineEvent, **kwargs) -> None:
    investigation = event.investigation
    if event.subject == "created":
        services.event_emit(EventType.INVESTIGATION_CREATED, {"investigation": _investigation(investigation)})
    elif event.subject == "status":
        new = STATUS_VALUES.get(event.new_value, event.new_value)
        data = {
            "investigation": _investigation(investigation),
            "from": STATUS_VALUES.get(event.old_value, event.old_value),
            "to": new,
        }
        services.event_emit(EventType.INVESTIGATION_STATUS_CHANGED, data)
        if new == Investigation.Status.RESOLVED:
            services.event_emit(EventType.INVESTIGATION_RESOLVED, {"investigation": _investigation(investigation)})
    elif event.subject.startswith("finding “") and event.new_value in VERDICT_LABELS:
        title = event.subject.removeprefix("finding “").removesuffix("”")
        data = {
            "investigation": _investigation(investigation),
            "finding": title,
            "verdict": VERDICT_LABELS[event.new_value],
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
                },
            )
    elif run.kind == run.Kind.CONNECTIVITY and run.status == run.Status.FAILED:
        services.event_emit(EventType.CHECK_FAILED, {"check": run.pk, "cause": run.cause, "registry": run.registry_url})
