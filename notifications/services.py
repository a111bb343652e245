"""Following investigations and telling followers of public changes by email, through the outbox.

Public changes are status changes and public replies (TimelineEvent.internal is False and the subject is
one of NOTIFY_SUBJECTS or it is a comment). Internal notes, internal changes and the SLA's notes never
notify. The one who made a change is not told of it."""

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from hokusai_portal.redaction import redact
from triage.models import Investigation, TimelineEvent

from .models import Follow, Notification, OutboxEmail, Preference

logger = logging.getLogger(__name__)

NOTIFY_SUBJECTS = {"status"}
UNSUBSCRIBE_SALT = "notifications.unsubscribe"
BACKOFF_CAP = timedelta(hours=1)
SEND_BATCH = 100


def is_public_change(event: TimelineEvent) -> bool:
    if event.internal:
        return False
    return event.kind == TimelineEvent.Kind.COMMENT or event.subject in NOTIFY_SUBJECTS


def follow(*, user: AbstractBaseUser, investigation: Investigation, reason: str = Follow.Reason.FOLLOWED) -> Follow:
    found, _ = Follow.objects.get_or_create(user=user, investigation=investigation, defaults={"reason": reason})
    return found


def unfollow(*, user: AbstractBaseUser, investigation_id: int) -> bool:
    deleted, _ = Follow.objects.filter(user=user, investigation_id=investigation_id).delete()
    return bool(deleted)


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
    Follow.objects.filter(user_id=user_id, investigation_id=investigation_id).delete()
    return f"You no longer follow INV-{investigation_id}: its changes will not be emailed to you."


def _list_headers(token: str) -> dict:
    url = absolute(reverse("notifications:unsubscribe", args=[token]))
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


# --- notifying ---------------------------------------------------------------------------------------


def _describe(event: TimelineEvent) -> tuple[str, str]:
    """(subject line part, body text) of a public change."""
    if event.kind == TimelineEvent.Kind.COMMENT:
        return "Reply from support", redact(event.body)[0]
    return (
        f"Status: {event.old_value} → {event.new_value}",
        f"The status changed from {event.old_value} to {event.new_value}.",
    )


SLA_WARNING = "SLA warning"


def notify_owner_of_sla(event: TimelineEvent) -> bool:
    """An SLA warning (internal: never to followers) is emailed to the investigation's owner, unless their
    email is off. Returns whether one was queued."""
    investigation = event.investigation
    owner = investigation.owner
    if owner is None or not owner.email or mode_of(owner) == Preference.Mode.OFF:
        return False
    OutboxEmail.objects.create(
        to=owner.email,
        subject=f"[{investigation.number}] SLA: {event.new_value}: {investigation.title}"[:250],
        body=(
            f"Hello {owner.get_username()},\n\n{event.body}\n\n"
            f"{absolute(reverse('triage:detail', args=[investigation.pk]))}\n"
            f"(It heads your queue: {absolute(reverse('triage:queue'))})\n"
        ),
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(_kick)
    return True


@transaction.atomic
def notify(event: TimelineEvent) -> int:
    """Queue what each follower (but the one who made the change) should hear of; returns emails queued."""
    if not is_public_change(event):
        return 0
    investigation = event.investigation
    followers = (
        Follow.objects.filter(investigation=investigation).exclude(user_id=event.actor_id).select_related("user")
    )
    queued = 0
    for followed in followers:
        user = followed.user
        mode = mode_of(user)
        if mode == Preference.Mode.OFF or not user.email:
            continue
        Notification.objects.get_or_create(user=user, event=event, defaults={"digest": mode == Preference.Mode.DAILY})
        if mode == Preference.Mode.IMMEDIATE:
            _queue_one(user, followed, event)
            queued += 1
    if queued:
        transaction.on_commit(_kick)
    return queued


def _queue_one(user, followed: Follow, event: TimelineEvent) -> OutboxEmail:
    investigation = event.investigation
    what, text = _describe(event)
    token = unsubscribe_token(user_id=user.pk, investigation_id=investigation.pk)
    body = render_to_string(
        "notifications/change.txt",
        {
            "user": user,
            "investigation": investigation,
            "text": text,
            "event": event,
            "reason": followed.get_reason_display(),
            "link": absolute(reverse("triage:detail", args=[investigation.pk])),
            "unfollow": absolute(reverse("notifications:unsubscribe", args=[token])),
            "settings_link": absolute(reverse("notifications:settings")),
        },
    )
    return OutboxEmail.objects.create(
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
    for items in by_user.values():
        user = items[0].user
        if not user.email or mode_of(user) != Preference.Mode.DAILY:
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


def is_following(*, user, investigation_id: int) -> bool:
    return Follow.objects.filter(user=user, investigation_id=investigation_id).exists()


def followers_count(investigation_id: int) -> int:
    return Follow.objects.filter(investigation_id=investigation_id).count()
