"""Organization writes: create, invite (mail), resend, revoke, accept, remove, hand over, leave.

Rules kept here, for every caller: a developer belongs to at most one organization; an organization always
keeps an owner; an invitation is accepted once, within 7 days, by an account that verified the invited
address."""

import logging
import secrets
import smtplib
from collections.abc import Callable
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.roles import Role, has_role

from . import selectors
from .models import Invitation, Membership, Organization

logger = logging.getLogger(__name__)

INVITATION_DAYS = 7
LinkFor = Callable[[str], str]  # the absolute accept link for a token


class OrganizationError(Exception):
    """A refused change; the message says why and what to do. Nothing was changed."""


def _developer(user) -> None:
    if not has_role(user, Role.DEVELOPER):
        raise OrganizationError("Organizations are for third-party developers' accounts.")


def _not_in_another(user, organization: Organization | None = None) -> None:
    current = selectors.organization_of(user=user)
    if current is not None:
        if organization is not None and current.pk == organization.pk:
            raise OrganizationError(f"You are already a member of {current.name}.")
        raise OrganizationError(
            f"You already belong to {current.name}: a developer belongs to one organization at a time. "
            "Leave it first (on its page), then join this one."
        )


def _forget_cached(user) -> None:
    for name in ("_portal_membership", "_portal_organization_id"):  # delattr: request.user is a lazy object
        if hasattr(user, name):
            delattr(user, name)


def organization_create(*, user, name: str) -> Organization:
    _developer(user)
    name = " ".join((name or "").split())[:100]
    if not name:
        raise OrganizationError("Give your organization a name (your company's).")
    _not_in_another(user)
    try:
        with transaction.atomic():
            organization = Organization.objects.create(name=name, created_by=user)
            Membership.objects.create(organization=organization, user=user, role=Membership.Role.OWNER)
    except IntegrityError:  # a concurrent create or accept made a membership first
        _forget_cached(user)
        _not_in_another(user)
        raise
    _forget_cached(user)
    logger.info("organization %s created by user=%s", organization.pk, user.pk)
    return organization


def _owner_of(actor, organization: Organization) -> None:
    membership = selectors.membership_of(user=actor)
    if membership is None or membership.organization_id != organization.pk or not membership.is_owner:
        raise OrganizationError("Only the organization's owner can do that.")


def _send_invitation(invitation: Invitation, token: str, link_for: LinkFor) -> bool:
    """Send the invitation; False when the mail server did not take it (the page says so, nothing breaks)."""
    context = {
        "organization": invitation.organization,
        "invited_by": invitation.invited_by,
        "link": link_for(token),
        "days": INVITATION_DAYS,
        "email": invitation.email,
    }
    try:
        send_mail(
            f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Join {invitation.organization.name} on the Hokusai portal",
            render_to_string("organizations/invitation_email.txt", context),
            None,
            [invitation.email],
        )
    except (OSError, smtplib.SMTPException) as error:
        logger.error("invitation %s not sent: %s", invitation.pk, type(error).__name__)
        return False
    return True


def _new_link(invitation: Invitation) -> str:
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation.token_hash = selectors.token_hash(token)
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=INVITATION_DAYS)
    return token


def invitation_create(*, actor, organization: Organization, email: str, link_for: LinkFor) -> tuple[Invitation, bool]:
    """Invite `email` (or send the open invitation to it again). Returns the invitation and whether the
    mail went out."""
    _owner_of(actor, organization)
    email = (email or "").strip()
    if organization.memberships.filter(user__email__iexact=email).exists():
        raise OrganizationError(f"{email} is already a member.")
    invitation = selectors.invitations_open(organization=organization).filter(email__iexact=email).first()
    if invitation is not None:
        return invitation, invitation_resend(actor=actor, invitation=invitation, link_for=link_for)
    invitation = Invitation(organization=organization, email=email, invited_by=actor)
    token = _new_link(invitation)
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:  # the same address invited at the same moment
        raise OrganizationError(f"{email} was just invited.") from None
    logger.info("invitation %s created organization=%s", invitation.pk, organization.pk)
    return invitation, _send_invitation(invitation, token, link_for)


def invitation_resend(*, actor, invitation: Invitation, link_for: LinkFor) -> bool:
    """A new link (the old one stops working) valid for another 7 days."""
    _owner_of(actor, invitation.organization)
    if not invitation.is_open:
        raise OrganizationError("That invitation is no longer open.")
    token = _new_link(invitation)
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    return _send_invitation(invitation, token, link_for)


def invitation_revoke(*, actor, invitation: Invitation) -> None:
    _owner_of(actor, invitation.organization)
    if not invitation.is_open:
        raise OrganizationError("That invitation is no longer open.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])


def invitation_accept(*, user, token: str) -> Membership:
    """Join with a link: once, within 7 days, with the invited address verified on this account."""
    _developer(user)
    invitation = selectors.invitation_by_token(token=token)
    if problem := selectors.invitation_problem(invitation=invitation):
        raise OrganizationError(problem)
    if not EmailAddress.objects.filter(user=user, email__iexact=invitation.email, verified=True).exists():
        raise OrganizationError(
            f"This invitation is for {invitation.email}. Sign in with the account of that address, or add it "
            "to your account under Email and verify it, then open the link again."
        )
    _not_in_another(user, invitation.organization)
    try:
        with transaction.atomic():
            taken = Invitation.objects.filter(
                pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
            ).update(accepted_at=timezone.now(), accepted_by=user)
            if not taken:  # used at the same moment in another tab
                raise OrganizationError("This invitation was already used: an invitation link works once.")
            membership = Membership.objects.create(organization=invitation.organization, user=user)
    except IntegrityError:
        raise OrganizationError("You already belong to an organization.") from None
    _forget_cached(user)
    logger.info("invitation %s accepted user=%s", invitation.pk, user.pk)
    return membership


def member_remove(*, actor, membership: Membership) -> None:
    _owner_of(actor, membership.organization)
    if membership.user_id == actor.pk:
        raise OrganizationError("You cannot remove yourself: hand over ownership, then leave.")
    membership.delete()


def ownership_hand_over(*, actor, membership: Membership) -> None:
    """The member becomes the owner; the former owner stays as a member."""
    _owner_of(actor, membership.organization)
    if membership.user_id == actor.pk:
        raise OrganizationError("You are the owner already.")
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(role=Membership.Role.OWNER)
        Membership.objects.filter(organization=membership.organization, user=actor).update(role=Membership.Role.MEMBER)
    _forget_cached(actor)


def leave_blocker(*, user) -> str:
    """Why the user cannot leave now ("" when they can): the owner hands over first while others remain."""
    membership = selectors.membership_of(user=user)
    if membership is None:
        return "You are not in an organization."
    others = membership.organization.memberships.exclude(pk=membership.pk)
    if membership.is_owner and not others.filter(role=Membership.Role.OWNER).exists() and others.exists():
        return "You are the owner: hand over ownership to another member first (an organization always keeps an owner)."
    return ""


def organization_leave(*, user) -> Organization | None:
    """Leave. The last member leaving closes the organization (its key is forgotten with it); the
    checks and reports made in it stay with the developers who made them."""
    if problem := leave_blocker(user=user):
        raise OrganizationError(problem)
    membership = selectors.membership_of(user=user)
    organization = membership.organization
    with transaction.atomic():
        membership.delete()
        closed = not organization.memberships.exists()
        if closed:
            organization.delete()
    _forget_cached(user)
    return None if closed else organization
