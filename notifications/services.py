"""Following investigations and telling followers of public changes by email, through the outbox.

Public changes are status changes and public replies (TimelineEvent.internal is False and its kind is one of
NOTIFY_KINDS). Internal notes, internal changes and the SLA's notes never notify. The one who made a change
is not told of it. One user action (triage.timeline.action: e.g. "resolve as fixed" walking four statuses)
is one email per follower, listing its steps, written after its last step (the state the email names is
the action's result) in the action's transaction, and sent once it commits."""

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import email_verified_of_user_row
from hokusai_portal import tracing
from hokusai_portal.redaction import redact
from organizations.models import Membership, Organization
from organizations.selectors import organization_of
from triage.models import Investigation, Report, TimelineEvent

from .models import Follow, Notification, OrganizationFollow, OrganizationFollowOptOut, OutboxEmail, Preference

logger = logging.getLogger(__name__)

Kind = TimelineEvent.Kind
NOTIFY_KINDS = {Kind.STATUS, Kind.COMMENT}
UNSUBSCRIBE_SALT = "notifications.unsubscribe"
BACKOFF_CAP = timedelta(hours=1)
SEND_BATCH = 100
BULK_BATCH = 500  # rows an INSERT of notifications or emails carries


def is_public_change(event: TimelineEvent) -> bool:
    if event.internal:
        return False
    return event.kind in NOTIFY_KINDS


def follow(*, user: AbstractBaseUser, investigation: Investigation, reason: str = Follow.Reason.FOLLOWED) -> Follow:
    found, _ = Follow.objects.get_or_create(user=user, investigation=investigation, defaults={"reason": reason})
    # Following again undoes having stopped following what one's organization follows.
    OrganizationFollowOptOut.objects.filter(user=user, organization_follow__investigation=investigation).delete()
    return found


def unfollow(*, user: AbstractBaseUser, investigation_id: int) -> bool:
    return _unfollow(user_id=user.pk, investigation_id=investigation_id)


def _unfollow(*, user_id: int, investigation_id: int) -> bool:
    """Stop this user's emails about the investigation: their own follow goes, and if their organization
    follows it, they opt out of that (the rest of the organization keeps following)."""
    deleted, _ = Follow.objects.filter(user_id=user_id, investigation_id=investigation_id).delete()
    organization_follow = OrganizationFollow.objects.filter(
        investigation_id=investigation_id, organization__memberships__user_id=user_id
    ).first()
    opted_out = False
    if organization_follow is not None:
        _, opted_out = OrganizationFollowOptOut.objects.get_or_create(
            organization_follow=organization_follow, user_id=user_id
        )
    return bool(deleted) or opted_out


# --- "everyone in my organization" ---------------------------------------------------------------------


class OrganizationFollowRefused(Exception):
    """Why the organization cannot follow this investigation; nothing was changed."""


def _readable_by_organization(organization: Organization | None = None) -> Exists:
    """An OrganizationFollow whose organization (its own, or the one given) may read its investigation: a member
    reported it from a check run in the organization (triage's rule for what an organization's members read)."""
    return Exists(
        Report.objects.filter(
            investigation=OuterRef("investigation"),
            check_run__organization=organization if organization is not None else OuterRef("organization"),
        )
    )


def organization_may_follow(*, organization: Organization | None, investigation: Investigation) -> bool:
    return (
        organization is not None
        and Report.objects.filter(investigation=investigation, check_run__organization=organization).exists()
    )


def organization_follow_set(*, user: AbstractBaseUser, investigation: Investigation, on: bool) -> Organization:
    """A member makes (on) or withdraws (off) the one choice "everyone in my organization follows it". Any
    member may; withdrawing drops the members' opt-outs with it (a new choice reaches everyone)."""
    organization = organization_of(user=user)
    if organization is None:
        raise OrganizationFollowRefused("You are not in an organization.")
    if not on:
        OrganizationFollow.objects.filter(organization=organization, investigation=investigation).delete()
        return organization
    if not organization_may_follow(organization=organization, investigation=investigation):
        raise OrganizationFollowRefused(
            f"{organization.name} cannot follow {investigation.number}: no member reported it from a check in the "
            "organization, so the other members cannot read it."
        )
    chosen, _ = OrganizationFollow.objects.get_or_create(
        organization=organization, investigation=investigation, defaults={"chosen_by": user}
    )
    chosen.opt_outs.filter(user=user).delete()  # the one who chose it follows it
    return organization


def recipients(investigation_id: int) -> list[tuple[AbstractBaseUser, str]]:
    """Who hears of the investigation's public changes, each once, with why: those who follow it themselves,
    then the current members of each organization that follows it (and may read it), less those who stopped.
    Four queries whatever the numbers."""
    found: dict[int, tuple[AbstractBaseUser, str]] = {}
    for followed in Follow.objects.filter(investigation_id=investigation_id).select_related("user"):
        found[followed.user_id] = (followed.user, followed.get_reason_display())
    chosen = list(
        OrganizationFollow.objects.filter(investigation_id=investigation_id)
        .filter(_readable_by_organization())
        .select_related("organization")
    )
    if chosen:
        names = {c.organization_id: c.organization.name for c in chosen}
        stopped = set(
            OrganizationFollowOptOut.objects.filter(organization_follow__in=chosen).values_list("user_id", flat=True)
        )
        for membership in Membership.objects.filter(organization_id__in=names).select_related("user"):
            if membership.user_id not in found and membership.user_id not in stopped:
                found[membership.user_id] = (
                    membership.user,
                    f"Everyone in {names[membership.organization_id]} follows it",
                )
    return list(found.values())


def follow_state(*, user: AbstractBaseUser, investigation: Investigation) -> dict:
    """What the follow control shows this user: whether they hear of it, and their organization's choice."""
    personal = Follow.objects.filter(user=user, investigation=investigation).exists()
    organization = organization_of(user=user)
    chosen = opted_out = None
    if organization is not None:
        chosen = (
            OrganizationFollow.objects.filter(organization=organization, investigation=investigation)
            .select_related("chosen_by")
            .first()
        )
        opted_out = chosen is not None and chosen.opt_outs.filter(user=user).exists()
    return {
        "following": personal or (chosen is not None and not opted_out),
        "personal": personal,
        "organization": organization,
        "organization_follows": chosen,
        "opted_out": bool(opted_out),
        "organization_may_follow": chosen is not None
        or organization_may_follow(organization=organization, investigation=investigation),
    }


def mode_of(user) -> str:
    preference = Preference.objects.filter(user=user).first()
    return preference.mode if preference else Preference.Mode.IMMEDIATE


def mode_set(*, user: AbstractBaseUser, mode: str) -> None:
    Preference.objects.update_or_create(user=user, defaults={"mode": mode})


# --- links and the one-click unsubscribe (RFC 8058) -------------------------------------------------------


def absolute(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def unsubscribe_token(*, user_id: int, investigation_id: int | None) -> str:
    """Signed (SECRET_KEY), no expiry: an old email's link still works. Names what it stops: one investigation,
    or every email (investigation None)."""
    return signing.dumps({"u": user_id, "i": investigation_id}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_read(token: str) -> tuple[int, int | None]:
    """(user id, investigation id or None); raises signing.BadSignature for a forged or damaged token."""
    data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise signing.BadSignature("not an unsubscribe token")
    investigation = data.get("i")
    return data["u"], investigation if isinstance(investigation, int) else None


def unsubscribe_apply(token: str) -> str:
    """Stop what the token names; returns what was done, in words."""
    user_id, investigation_id = unsubscribe_read(token)
    if investigation_id is None:
        Preference.objects.update_or_create(user_id=user_id, defaults={"mode": Preference.Mode.OFF})
        return "You will get no more email from the Hokusai portal. Turn it back on in your notification settings."
    _unfollow(user_id=user_id, investigation_id=investigation_id)
    return f"You no longer follow INV-{investigation_id}: its changes will not be emailed to you."


def _list_headers(token: str) -> dict:
    url = absolute(reverse("notifications:unsubscribe", args=[token]))
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


# --- notifying ---------------------------------------------------------------------------------------


def _describe(event: TimelineEvent) -> tuple[str, str]:
    """(subject line part, body text) of a public change."""
    if event.kind == Kind.COMMENT:
        return "Reply from support", redact(event.body)[0]
    return (
        f"Status: {event.old_text} → {event.new_text}",
        f"The status changed from {event.old_text} to {event.new_text}.",
    )


def _describe_steps(events: list[TimelineEvent]) -> tuple[str, str]:
    """(subject line part, body text) of one action's public steps: a walk of statuses is named by where it
    started and where it ended, and each step is listed."""
    if len(events) == 1:
        return _describe(events[0])
    statuses = [e for e in events if e.kind == Kind.STATUS]
    if len(statuses) == len(events):
        what = f"Status: {statuses[0].old_text} → {statuses[-1].new_text}"
    else:
        what = f"{len(events)} updates"
    return what, "\n".join(f"- {_describe(e)[1]}" for e in events)


def notify_owner_of_sla(event: TimelineEvent) -> bool:
    """An SLA warning (internal: never to followers) is emailed to the investigation's owner, unless their
    email is off. Returns whether one was queued."""
    investigation = event.investigation
    owner = investigation.owner
    if owner is None or _mail_modes([owner.pk]).get(owner.pk, Preference.Mode.OFF) == Preference.Mode.OFF:
        return False
    OutboxEmail.objects.create(
        to=owner.email,
        subject=f"[{investigation.number}] SLA: {event.new_text}: {investigation.title}"[:250],
        body=(
            f"Hello {owner.get_username()},\n\n{event.body}\n\n"
            f"{absolute(reverse('triage:detail', args=[investigation.pk]))}\n"
            f"(It heads your queue: {absolute(reverse('triage:queue'))})\n"
        ),
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(_kick)
    return True


def _mail_modes(user_ids) -> dict[int, str]:
    """Each user's mode (immediate, daily), or off for no mail: their choice, no address, or an unverified one
    (sign-up takes any address: mail goes only to one its owner proved is theirs). Many users in one query."""
    preference = Preference.objects.filter(user=OuterRef("pk")).values("mode")[:1]
    rows = (
        get_user_model()
        .objects.filter(pk__in=user_ids)
        .annotate(verified=email_verified_of_user_row(), mode=Subquery(preference))
        .values_list("pk", "email", "verified", "mode")
    )
    return {
        pk: (mode or Preference.Mode.IMMEDIATE) if email and verified else Preference.Mode.OFF
        for pk, email, verified, mode in rows
    }


@transaction.atomic
def notify(events: list[TimelineEvent]) -> int:
    """Queue what each follower should hear of one action's steps (not the steps they made themselves): one
    email per follower and investigation; returns emails queued. A fixed number of queries per investigation
    however many follow it (a known issue many developers joined has hundreds of followers)."""
    queued = 0
    by_investigation: dict[int, list[TimelineEvent]] = {}
    for event in events:
        if is_public_change(event):
            by_investigation.setdefault(event.investigation_id, []).append(event)
    for investigation_id, public in by_investigation.items():
        investigation = Investigation.objects.get(pk=investigation_id)  # as the action left it
        found = recipients(investigation_id)  # each once, however many ways they follow it
        modes = _mail_modes([user.pk for user, _ in found])
        notifications, emails = [], []
        for user, reason in found:
            theirs = [e for e in public if e.actor_id != user.pk]
            mode = modes.get(user.pk, Preference.Mode.OFF)
            if not theirs or mode == Preference.Mode.OFF:
                continue
            notifications += [Notification(user=user, event=e, digest=mode == Preference.Mode.DAILY) for e in theirs]
            if mode == Preference.Mode.IMMEDIATE:
                emails.append(_email_of(user, reason, investigation, theirs))
        Notification.objects.bulk_create(notifications, ignore_conflicts=True, batch_size=BULK_BATCH)
        OutboxEmail.objects.bulk_create(emails, batch_size=BULK_BATCH)
        queued += len(emails)
    if queued:
        transaction.on_commit(_kick)
    return queued


def _email_of(user, reason: str, investigation: Investigation, events: list[TimelineEvent]) -> OutboxEmail:
    what, text = _describe_steps(events)
    token = unsubscribe_token(user_id=user.pk, investigation_id=investigation.pk)
    body = render_to_string(
        "notifications/change.txt",
        {
            "user": user,
            "investigation": investigation,
            "text": text,
            "reason": reason,
            "link": absolute(reverse("triage:detail", args=[investigation.pk])),
            "unfollow": absolute(reverse("notifications:unsubscribe", args=[token])),
            "settings_link": absolute(reverse("notifications:settings")),
        },
    )
    return OutboxEmail(
        to=user.email,
        subject=f"[{investigation.number}] {what}: {investigation.title}"[:250],
        body=body,
        headers=_list_headers(token),
        next_attempt_at=timezone.now(),
    )


def _kick() -> None:
    """Ask a worker to send now (beat also sends every OUTBOX_SEND_SECONDS, so a lost kick only delays)."""
    from .tasks import outbox_send_task

    try:
        outbox_send_task.delay()
    except Exception:  # noqa: BLE001 - the broker being down must not fail the change; beat retries
        logger.warning("outbox: could not ask a worker to send; beat will")


def digests_send(now: datetime | None = None) -> int:
    """One email per daily-digest user with public changes waiting; returns how many were queued."""
    now = now or timezone.now()
    pending = (
        Notification.objects.filter(digest=True, digested_at__isnull=True, event__created_at__lte=now)
        .select_related("user", "event", "event__investigation")
        .order_by("user_id", "event__created_at")
    )
    by_user: dict[int, list[Notification]] = {}
    for notification in pending:
        by_user.setdefault(notification.user_id, []).append(notification)
    queued = 0
    modes = _mail_modes(pending.values("user_id"))  # a subquery: no parameter per user
    for items in by_user.values():
        user = items[0].user
        if modes.get(user.pk) != Preference.Mode.DAILY:
            Notification.objects.filter(pk__in=[n.pk for n in items]).update(digested_at=now)
            continue
        token = unsubscribe_token(user_id=user.pk, investigation_id=None)
        changes = [
            {
                "investigation": n.event.investigation,
                "what": what,
                "text": text,
                "when": n.event.created_at,
                "link": absolute(reverse("triage:detail", args=[n.event.investigation_id])),
            }
            for n in items
            for what, text in [_describe(n.event)]
        ]
        with transaction.atomic():
            OutboxEmail.objects.create(
                to=user.email,
                subject=f"Hokusai portal: {len(changes)} update{'s' if len(changes) != 1 else ''} on what you follow",
                body=render_to_string(
                    "notifications/digest.txt",
                    {
                        "user": user,
                        "changes": changes,
                        "stop": absolute(reverse("notifications:unsubscribe", args=[token])),
                        "settings_link": absolute(reverse("notifications:settings")),
                    },
                ),
                headers=_list_headers(token),
                next_attempt_at=now,
            )
            Notification.objects.filter(pk__in=[n.pk for n in items]).update(digested_at=now)
        queued += 1
    return queued


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def outbox_send(now: datetime | None = None) -> tuple[int, int]:
    """Send the pending emails that are due; returns (sent, failed attempts). A row is claimed under a row
    lock (SKIP LOCKED on PostgreSQL), so two workers never send it twice."""
    now = now or timezone.now()
    sent = failed = 0
    connection = None
    try:
        while True:
            with transaction.atomic():
                rows = OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING, next_attempt_at__lte=now)
                email = rows.select_for_update(skip_locked=True).order_by("next_attempt_at", "id").first()
                if email is None or sent + failed >= SEND_BATCH:
                    break
                try:
                    if connection is None:
                        connection = get_connection(fail_silently=False)
                        connection.open()
                    with tracing.span("email.send", **{"hokusai.outbox_id": email.pk}):
                        EmailMessage(
                            email.subject,
                            email.body,
                            settings.DEFAULT_FROM_EMAIL,
                            [email.to],
                            headers=email.headers,
                            connection=connection,
                        ).send()
                except smtplib.SMTPRecipientsRefused as error:  # this address will not take it: do not retry
                    email.status, email.last_error = OutboxEmail.Status.FAILED, _error(error)
                    email.attempts += 1
                    failed += 1
                except (smtplib.SMTPException, OSError) as error:  # the server is down or busy: later
                    email.attempts += 1
                    email.last_error = _error(error)
                    email.next_attempt_at = now + _backoff(email.attempts)
                    failed += 1
                    connection = None
                    email.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
                    break  # the server is not answering: the rest wait too
                else:
                    email.status, email.sent_at, email.last_error = OutboxEmail.Status.SENT, timezone.now(), ""
                    email.attempts += 1
                    sent += 1
                email.save(update_fields=["attempts", "last_error", "next_attempt_at", "status", "sent_at"])
    finally:
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001
                pass
    if sent or failed:
        logger.info("outbox: %s sent, %s failed attempts", sent, failed)
    return sent, failed


def _error(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def outbox_counts() -> dict:
    pending = OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING)
    return {
        "pending": pending.count(),
        "retrying": pending.filter(attempts__gt=0).count(),
        "failed": OutboxEmail.objects.filter(status=OutboxEmail.Status.FAILED).count(),
        "sent_24h": OutboxEmail.objects.filter(sent_at__gte=timezone.now() - timedelta(hours=24)).count(),
    }


def followed_by(user) -> list[Follow]:
    return list(Follow.objects.filter(user=user).select_related("investigation").order_by("-created_at"))


def followed_with_organization(user) -> list[OrganizationFollow]:
    """What the user's organization follows (that it may read), less what they follow themselves or stopped."""
    organization = organization_of(user=user)
    if organization is None:
        return []
    return list(
        OrganizationFollow.objects.filter(organization=organization)
        .filter(_readable_by_organization(organization))
        .exclude(investigation__followers__user=user)
        .exclude(opt_outs__user=user)
        .select_related("investigation", "organization")
        .order_by("-created_at")
    )


def followers_count(investigation_id: int) -> int:
    """How many hear of its changes (each once): staff see it on the investigation's page."""
    return len(recipients(investigation_id))
