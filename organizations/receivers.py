"""Organizations' answers to accounts' signals: an organization always keeps an owner, even when one
deletes their account; "Download my data" names one's organization."""

from django.dispatch import receiver

from accounts.signals import account_data_requested, account_deleting, account_deletion_blockers

from . import selectors, services


@receiver(account_deletion_blockers, dispatch_uid="organizations_owner_hands_over_first")
def owner_hands_over_first(*, user, **kwargs) -> str | None:
    if selectors.membership_of(user=user) is None:
        return None
    return services.leave_blocker(user=user) or None


@receiver(account_deleting, dispatch_uid="organizations_leave_on_deletion")
def leave_on_deletion(*, user, **kwargs) -> None:
    """Leave as the page would (the last member closes the organization and its key)."""
    if selectors.membership_of(user=user) is not None:
        services.organization_leave(user=user)


@receiver(account_data_requested, dispatch_uid="organizations_account_data")
def account_data(*, user, **kwargs) -> dict:
    membership = selectors.membership_of(user=user)
    if membership is None:
        return {"organization": None}
    return {
        "organization": {
            "name": membership.organization.name,
            "role": membership.role,
            "joined_at": membership.joined_at.isoformat(),
        }
    }
