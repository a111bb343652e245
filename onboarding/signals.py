"""Signals other apps listen to (webhooks), so onboarding need not know them."""

from django.dispatch import Signal

# Sent after a worker saved a run's verdict: kwargs `run` (a CheckRun, passed or failed).
check_run_finished = Signal()
