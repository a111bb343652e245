"""Triage's answers to the signals of the apps below it (the layers: onboarding never imports triage)."""

from django.dispatch import receiver

from accounts.signals import account_data_requested, account_deletion_blockers
from onboarding.signals import check_page_context

from . import reports


@receiver(check_page_context, dispatch_uid="triage_known_issue")
def known_issue_on_check_page(*, run, user, **kwargs) -> dict:
    """A failure others reported too: named first on the owner's check page, with "This is me too"."""
    return {"known_issue": reports.known_issue(run=run, user=user) if run.user_id == user.pk else None}


@receiver(account_data_requested, dispatch_uid="triage_account_data")
def account_data(*, user, **kwargs) -> dict:
    """The problem reports the person sent, for "Download my data" (their own words and what was shared)."""
    from .models import Report

    return {
        "reports": [
            {"investigation": r.investigation.title, "note": r.note, "created_at": r.created_at.isoformat()}
            for r in Report.objects.filter(reporter=user).select_related("investigation").order_by("created_at")
        ]
    }


@receiver(account_deletion_blockers, dispatch_uid="triage_owner_cannot_leave")
def open_investigations_block_deletion(*, user, **kwargs) -> str | None:
    from .models import Investigation

    owned = Investigation.objects.filter(owner=user, status__in=Investigation.OPEN_STATUSES).count()
    if owned:
        return f"You own {owned} open investigation(s): hand them over or resolve them first."
    return None
