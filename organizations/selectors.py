"""Organization reads. The apps above widen their scopes through `organization_of` or `organization_id_of`."""

import hashlib

from django.db.models import QuerySet
from django.utils import timezone

from hokusai_portal.prepared import PreparedValues

from .models import Invitation, Membership, Organization


def token_hash(token: str) -> str:
    return hashlib.sha256(str(token).encode()).hexdigest()


def membership_of(*, user) -> Membership | None:
    """The user's membership (with its organization), or None: read once per request object."""
    if user is None or not user.is_authenticated:
        return None
    if not hasattr(user, "_portal_membership"):
        user._portal_membership = Membership.objects.select_related("organization").filter(user=user).first()
    return user._portal_membership


# Compiled once (hokusai_portal/prepared.py): every request of a developer asks it (who else may read a run).
_organization_id = PreparedValues(
    lambda user_id: Membership.objects.filter(user_id=user_id).order_by().values("organization_id")
)


def organization_id_of(*, user) -> int | None:
    """The id of the user's organization, or None: read once per request object, without the organization."""
    if user is None or not user.is_authenticated:
        return None
    if hasattr(user, "_portal_membership"):  # hasattr: request.user is a lazy object, its __dict__ not the user's
        membership = user._portal_membership
        return membership.organization_id if membership else None
    if not hasattr(user, "_portal_organization_id"):
        row = _organization_id.first(user.pk)
        user._portal_organization_id = row["organization_id"] if row else None
    return user._portal_organization_id


def organization_of(*, user) -> Organization | None:
    membership = membership_of(user=user)
    return membership.organization if membership else None


def organization_members(*, organization: Organization) -> QuerySet[Membership]:
    return organization.memberships.select_related("user").order_by("-role", "joined_at", "id")


def invitations_open(*, organization: Organization) -> QuerySet[Invitation]:
    return organization.invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True)


def invitation_by_token(*, token: str) -> Invitation | None:
    if not token or len(token) > 100:
        return None
    return Invitation.objects.select_related("organization").filter(token_hash=token_hash(token)).first()


def invitation_problem(*, invitation: Invitation | None) -> str:
    """Why this link cannot be used any more ("" when it can)."""
    if invitation is None:
        return "This invitation link is not valid. Check that you opened the whole link from the email."
    if invitation.revoked_at:
        return "This invitation was withdrawn. Ask the organization's owner for a new one."
    if invitation.accepted_at:
        return "This invitation was already used: an invitation link works once."
    if invitation.expires_at <= timezone.now():
        return "This invitation expired (links work for 7 days). Ask the organization's owner to send it again."
    return ""
