"""Signals other apps listen to, so triage need not know them (triage/timeline.py sends both)."""

from django.dispatch import Signal

# One step, sent inside the transaction that appended the TimelineEvent, after the state it describes was
# set: kwargs `event`.
timeline_event_added = Signal()

# One user action, after its last step (still inside its transaction): kwargs `action_id`, `events` (in order).
timeline_action_recorded = Signal()
