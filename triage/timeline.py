"""The timeline's one writer: every change to an investigation is recorded here, in codes.

`record(...)` appends one TimelineEvent, keeps the SLA clocks current when the event moves them (recomputed
once per action, after its last step: "resolve as fixed" walking four statuses is one recomputation), and
tells the other apps through triage.signals:

- `timeline_event_added(event=...)` for each step, in the transaction that wrote it, after the state it
  describes was set (a webhook built there carries the investigation as of that step);
- `timeline_action_recorded(action_id=..., events=[...])` once per user action, after its last step (the
  followers get one email for the whole action, listing its steps).

Both are sent inside the change's transaction: what a receiver writes (webhook messages, outbox emails)
commits with the change or not at all, and leaves the portal only after the commit (their senders are
kicked by `transaction.on_commit`).

`action()` groups the steps of one user action (e.g. "resolve as fixed" walking four statuses) under one
`action_id`; a `record` outside any `action()` is an action of its own."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from . import sla
from .models import Investigation, TimelineEvent
from .signals import timeline_action_recorded, timeline_event_added


@dataclass
class _Action:
    id: uuid.UUID
    events: list[TimelineEvent] = field(default_factory=list)
    # Investigations whose SLA clocks a step moved: recomputed once, after the action's last step.
    clocks_moved: dict[int, Investigation] = field(default_factory=dict)


_current: ContextVar[_Action | None] = ContextVar("triage_timeline_action", default=None)


@contextmanager
def action() -> Iterator[uuid.UUID]:
    """Group what is recorded inside under one action id, in one transaction; nested, the outer action goes
    on. When the outermost block ends without an exception, `timeline_action_recorded` is sent with its steps
    (still inside the transaction: what its receivers write commits with the action)."""
    outer = _current.get()
    if outer is not None:
        yield outer.id
        return
    current = _Action(uuid.uuid4())
    with transaction.atomic():
        token = _current.set(current)
        try:
            yield current.id
        finally:
            _current.reset(token)
        for investigation in current.clocks_moved.values():
            sla.refresh(investigation)  # the clocks read the timeline the whole action wrote
        if current.events:
            timeline_action_recorded.send(sender=TimelineEvent, action_id=current.id, events=current.events)


def record(
    investigation: Investigation,
    kind: str,
    *,
    actor: AbstractBaseUser | None = None,
    field: str = "",
    target: str = "",
    old="",
    new="",
    body: str = "",
    internal: bool = True,
) -> TimelineEvent:
    """Append one event. `old`/`new` are machine values (a status code, "true"/"false", a check's id)."""
    with action() as action_id:
        event = TimelineEvent.objects.create(
            investigation=investigation,
            actor=actor,
            kind=kind,
            field=field[:60],
            target=target[:300],
            old=_value(old),
            new=_value(new),
            body=body,
            internal=internal,
            action_id=action_id,
        )
        if sla.moves_clocks(kind=kind, internal=internal):
            _current.get().clocks_moved[investigation.pk] = investigation
        timeline_event_added.send(sender=TimelineEvent, event=event)
        _current.get().events.append(event)
    return event


def _value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, AbstractBaseUser):
        return value.get_username()
    return str(value)
