"""SLA clocks of the investigations: the policies and the timeline read from the database, the clocks
computed by triage/clocks.py (pure arithmetic), and what the lists and the dashboard filter on saved.

The timeline is read by its codes (TimelineEvent.Kind): a status change, the waiting-on-reporter flag, a
public reply; never by the words a page shows."""

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .clocks import RESOLUTION, RESPONSE, Event, SlaState, calendar_of, compute
from .models import OPEN_STATUSES, Investigation, SlaCycle, SlaPolicy, TimelineEvent

__all__ = ["RESOLUTION", "RESPONSE", "refresh", "refresh_open", "state_of"]

Kind = TimelineEvent.Kind
CLOCK_KINDS = (Kind.STATUS, Kind.WAITING_ON_REPORTER)  # besides public replies
# After these the clocks are recomputed too: the policy that applies may have changed.
POLICY_KINDS = (Kind.CREATED, Kind.IMPORTED, Kind.SEVERITY)


def events_of(investigation: Investigation, timeline) -> list[Event]:
    """The clock events in a timeline (TimelineEvent rows), plus the current status when the timeline does not
    reach it (an imported plan sets its status without a change event)."""
    events, is_open = [], True
    for item in timeline:
        if item.kind == Kind.COMMENT and not item.internal:
            events.append(Event(item.created_at, "reply"))
        elif item.kind == Kind.STATUS:
            is_open = item.new in OPEN_STATUSES
            events.append(Event(item.created_at, "status", open=is_open))
        elif item.kind == Kind.WAITING_ON_REPORTER:
            events.append(Event(item.created_at, "awaiting", awaiting=item.new == "true"))
    if is_open != investigation.is_open:
        at = (investigation.resolved_at if not investigation.is_open else None) or investigation.updated_at
        events.append(Event(max(at, investigation.created_at), "status", open=investigation.is_open))
    return events


def state_of(investigation: Investigation, now: datetime | None = None, policy=None) -> SlaState | None:
    """The investigation's clocks now, or None when its severity has no policy."""
    if policy is None:
        policy = SlaPolicy.objects.select_related("calendar").filter(severity=investigation.severity).first()
    if policy is None:
        return None
    timeline = (
        TimelineEvent.objects.filter(investigation=investigation)
        .filter(Q(kind__in=CLOCK_KINDS) | Q(kind=Kind.COMMENT, internal=False))
        .order_by("created_at", "id")
        .only("kind", "new", "internal", "created_at")
    )
    return compute(
        created_at=investigation.created_at,
        events=events_of(investigation, timeline),
        response_minutes=policy.first_response_minutes,
        resolution_minutes=policy.resolution_minutes,
        calendar=calendar_of(policy.calendar),
        now=now or timezone.now(),
    )


def moves_clocks(*, kind: str, internal: bool) -> bool:
    """Whether an event of this kind changes the clocks (or the policy that applies): refresh after it."""
    return kind in CLOCK_KINDS or kind in POLICY_KINDS or (kind == Kind.COMMENT and not internal)


def refresh(investigation, now: datetime | None = None, policy=None) -> SlaState | None:
    """Recompute the clocks and save what the lists filter on and what the dashboard counts."""
    state = state_of(investigation, now, policy)
    with transaction.atomic():
        SlaCycle.objects.filter(investigation=investigation).delete()
        if state is None:
            Investigation.objects.filter(pk=investigation.pk).update(
                sla_due_at=None, sla_warn_at=None, sla_breached=False
            )
            return None
        SlaCycle.objects.bulk_create(
            SlaCycle(
                investigation=investigation,
                goal=clock.goal,
                cycle=clock.cycle,
                severity=investigation.severity,
                started_at=clock.started_at,
                ended_at=clock.ended_at,
                goal_minutes=clock.goal_minutes,
                elapsed_minutes=clock.elapsed_minutes,
                breached_at=clock.breached_at,
                met=clock.met,
            )
            for clock in state.clocks
        )
        Investigation.objects.filter(pk=investigation.pk).update(
            sla_due_at=state.due_at, sla_warn_at=state.warn_at, sla_breached=state.breached
        )
    investigation.sla_due_at, investigation.sla_warn_at, investigation.sla_breached = (
        state.due_at,
        state.warn_at,
        state.breached,
    )
    return state


def refresh_open(*, severity: str) -> int:
    """Recompute the open investigations of a severity (its policy changed); returns how many."""
    investigations = list(Investigation.objects.filter(severity=severity, status__in=OPEN_STATUSES))
    for investigation in investigations:
        refresh(investigation)
    return len(investigations)
