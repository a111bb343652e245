"""Signals other apps listen to, so triage need not know them (notifications follows the timeline)."""

from django.dispatch import Signal

# Sent inside the transaction that appended a TimelineEvent: kwargs `event`.
timeline_event_added = Signal()
