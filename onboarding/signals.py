"""Signals the apps above onboarding listen to (triage, status, webhooks), so onboarding never imports them
(the layers in pyproject.toml: an app imports only the ones below it)."""

from django.dispatch import Signal

# Sent after a worker saved a run's verdict: kwargs `run` (a CheckRun, passed or failed).
check_run_finished = Signal()

# Sent while the check page is built: kwargs `run`, `user` and `full_page` (False for an htmx poll). A
# receiver returns a dict of template context for the page (triage: the known issue; status: a degraded
# component the check depends on), or None.
check_page_context = Signal()


def check_page_context_for(*, run, user, full_page: bool) -> dict:
    context: dict = {}
    for _receiver, extra in check_page_context.send(sender=run.__class__, run=run, user=user, full_page=full_page):
        context.update(extra or {})
    return context
