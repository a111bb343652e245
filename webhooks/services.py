"""Outgoing webhooks, Standard Webhooks (standardwebhooks.com):

- each event is one Message with a `msg_…` id, the same `webhook-id` on every attempt and redelivery;
- `webhook-timestamp` is the attempt's time and `webhook-signature` is `v1,<base64 HMAC-SHA256 of
  "{id}.{timestamp}.{body}">` with the endpoint's `whsec_` secret, signed by the spec's own library; during
  a rotation the previous secret signs too (two signatures, space-separated) for ROTATION_OVERLAP;
- attempts follow the spec's schedule (SCHEDULE, with ±10 % jitter), each with a 15 s timeout and no
  redirects followed (a 3xx is a failure); 410 Gone disables the endpoint; 429 and 503 wait for their
  Retry-After; an endpoint failing for 5 days is disabled and its owner emailed (through the outbox);
- an endpoint may also ask for Hokusai's legacy headers (`X-Hokusai-Signature: sha256=<hex HMAC of the
  body>`, `X-Hokusai-Idempotency-Key: <msg id>`).

Deliveries are rows: a change writes them in its own transaction, and beat's `webhooks.deliver_due` (every
WEBHOOK_DELIVER_SECONDS, and at once after the commit) sends what is due, each row claimed under a lock."""

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from hokusai_portal import crypto, metrics

from .models import Attempt, Delivery, Endpoint, EventType, Message

logger = logging.getLogger(__name__)

SCHEDULE = [0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600]  # seconds
JITTER = 0.1
TIMEOUT_SECONDS = 15
DISABLE_AFTER = timedelta(days=5)
ROTATION_OVERLAP = timedelta(hours=24)
RETRY_AFTER_CAP = timedelta(hours=24)
EXCERPT = 500
DUE_BATCH = 50


class EndpointError(ValueError):
    """An endpoint setting that cannot be used; the message says why."""


def secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_of(endpoint: Endpoint) -> str:
    return crypto.decrypt(endpoint.secret_ciphertext)


def _validate(url: str, event_types: list[str]) -> None:
    if not url.startswith(("https://", "http://")):
        raise EndpointError("The URL must start with https:// (or http:// for a receiver on a private network).")
    if "@" in url.split("/")[2]:
        raise EndpointError("Put no credentials in the URL: the signature proves the sender.")
    unknown = set(event_types) - set(EventType.values)
    if unknown or not event_types:
        raise EndpointError("Choose at least one event type.")


def endpoint_create(
    *, url: str, event_types: list[str], owner: AbstractBaseUser | None, description: str = "", legacy_headers=False
) -> tuple[Endpoint, str]:
    """A new endpoint and its secret (returned once in full for the receiver; stored encrypted)."""
    _validate(url, event_types)
    secret = secret_new()
    endpoint = Endpoint.objects.create(
        url=url,
        description=description,
        event_types=sorted(set(event_types)),
        legacy_headers=legacy_headers,
        owner=owner,
        secret_ciphertext=crypto.encrypt(secret),
    )
    return endpoint, secret


def endpoint_update(*, endpoint: Endpoint, url: str, event_types: list[str], description: str, legacy_headers: bool):
    _validate(url, event_types)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        url=url, event_types=sorted(set(event_types)), description=description, legacy_headers=legacy_headers
    )


def endpoint_enable(*, endpoint: Endpoint, enabled: bool) -> None:
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=enabled, disabled_reason="" if enabled else "Disabled by hand.", failing_since=None
    )


def secret_rotate(*, endpoint: Endpoint, now: datetime | None = None) -> str:
    """A new secret signs from now on; the old one signs too for ROTATION_OVERLAP, so receivers can switch."""
    now = now or timezone.now()
    secret = secret_new()
    endpoint.refresh_from_db()
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret_ciphertext = crypto.encrypt(secret)
    # A save, not a queryset update: the audit trail (operations/audit.py) hears of the new secret.
    endpoint.save(update_fields=["previous_secret_ciphertext", "previous_secret_expires_at", "secret_ciphertext"])
    return secret


# --- events -------------------------------------------------------------------------------------------


def event_emit(event_type: str, data: dict, *, now: datetime | None = None) -> Message | None:
    """Queue one message for every enabled endpoint that wants this type (in the caller's transaction)."""
    endpoints = [e for e in Endpoint.objects.filter(enabled=True) if event_type in e.event_types]
    if not endpoints:
        return None
    now = now or timezone.now()
    message = Message.objects.create(
        msg_id=f"msg_{uuid.uuid4().hex}",
        event_type=event_type,
        payload={"type": event_type, "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"), "data": data},
    )
    Delivery.objects.bulk_create(Delivery(endpoint=e, message=message, next_attempt_at=now) for e in endpoints)
    transaction.on_commit(_kick)
    return message


def _kick() -> None:
    from .tasks import deliver_due_task

    try:
        deliver_due_task.delay()
    except Exception:  # noqa: BLE001 - beat sends the due ones anyway
        logger.warning("webhooks: could not ask a worker to deliver; beat will")


# --- delivering ------------------------------------------------------------------------------------------


def body_of(message: Message) -> str:
    return json.dumps(message.payload, separators=(",", ":"), sort_keys=True)


def headers_for(endpoint: Endpoint, message: Message, body: str, at: datetime) -> dict[str, str]:
    moment = datetime.fromtimestamp(int(at.timestamp()), UTC)
    signatures = [Webhook(secret_of(endpoint)).sign(message.msg_id, moment, body)]
    if (
        endpoint.previous_secret_ciphertext
        and endpoint.previous_secret_expires_at
        and at < endpoint.previous_secret_expires_at
    ):
        signatures.append(
            Webhook(crypto.decrypt(endpoint.previous_secret_ciphertext)).sign(message.msg_id, moment, body)
        )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Hokusai-Portal-Webhooks/1",
        "webhook-id": message.msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
    if endpoint.legacy_headers:
        key = base64.b64decode(secret_of(endpoint).removeprefix("whsec_"))
        headers["X-Hokusai-Signature"] = "sha256=" + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        headers["X-Hokusai-Idempotency-Key"] = message.msg_id
    return headers


def _retry_after(response: requests.Response, now: datetime) -> datetime | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return now + min(max(wait, timedelta(0)), RETRY_AFTER_CAP)


def _next_attempt(attempts_done: int, now: datetime) -> datetime | None:
    """After `attempts_done` attempts in this round, when the next is due (None: the schedule is spent)."""
    if attempts_done >= len(SCHEDULE):
        return None
    delay = SCHEDULE[attempts_done]
    return now + timedelta(seconds=delay * (1 + random.uniform(-JITTER, JITTER)))


def _post(endpoint: Endpoint, headers: dict, body: str) -> tuple[requests.Response | None, str]:
    try:
        response = requests.post(
            endpoint.url, data=body.encode(), headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
        )
        return response, ""
    except requests.Timeout:
        return None, f"timed out after {TIMEOUT_SECONDS} s"
    except requests.RequestException as error:
        return None, type(error).__name__


def attempt(delivery: Delivery, now: datetime | None = None) -> Attempt:
    """One attempt of a claimed delivery: send, record, and schedule the next or finish."""
    now = now or timezone.now()
    endpoint, message = delivery.endpoint, delivery.message
    body = body_of(message)
    started = time.perf_counter()
    response, error = _post(endpoint, headers_for(endpoint, message, body, now), body)
    duration = round((time.perf_counter() - started) * 1000)
    code = response.status_code if response is not None else None
    succeeded = code is not None and 200 <= code < 300
    record = Attempt.objects.create(
        delivery=delivery,
        at=now,
        status_code=code,
        duration_ms=duration,
        response_excerpt=(response.text[:EXCERPT] if response is not None else ""),
        error=error or ("redirects are not followed: a 3xx is a failure" if code and 300 <= code < 400 else ""),
        succeeded=succeeded,
    )
    delivery.attempts += 1
    delivery.last_status_code = code
    metrics.webhook_deliveries_total.labels(result="succeeded" if succeeded else "failed").inc()
    if succeeded:
        delivery.status, delivery.finished_at, delivery.next_attempt_at = Delivery.Status.SUCCEEDED, now, None
        Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
    elif code == 410:
        delivery.status, delivery.finished_at, delivery.next_attempt_at = Delivery.Status.FAILED, now, None
        _disable(endpoint, "The receiver answered 410 Gone.", now)
    else:
        if endpoint.failing_since is None:
            Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
            endpoint.failing_since = now
        following = _retry_after(response, now) if code in (429, 503) else None
        following = following or _next_attempt(delivery.attempts, now)
        if following is None:
            delivery.status, delivery.finished_at, delivery.next_attempt_at = Delivery.Status.FAILED, now, None
        else:
            delivery.next_attempt_at = following
        if now - endpoint.failing_since >= DISABLE_AFTER:
            _disable(endpoint, f"Every attempt failed for {DISABLE_AFTER.days} days.", now)
            delivery.status, delivery.finished_at, delivery.next_attempt_at = Delivery.Status.FAILED, now, None
    delivery.save(update_fields=["attempts", "last_status_code", "status", "finished_at", "next_attempt_at"])
    return record


def _disable(endpoint: Endpoint, reason: str, now: datetime) -> None:
    """Disable an endpoint (its pending deliveries stop) and email its owner through the outbox."""
    changed = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(enabled=False, disabled_reason=reason)
    Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.DISABLED, next_attempt_at=None, finished_at=now
    )
    endpoint.enabled, endpoint.disabled_reason = False, reason
    if changed and endpoint.owner and endpoint.owner.email:
        from notifications.models import OutboxEmail

        link = settings.PORTAL_BASE_URL.rstrip("/") + f"/webhooks/{endpoint.pk}/"
        OutboxEmail.objects.create(
            to=endpoint.owner.email,
            subject=f"Webhook endpoint disabled: {endpoint.url}"[:250],
            body=(
                f"Hello {endpoint.owner.get_username()},\n\nThe Hokusai portal disabled the webhook endpoint\n"
                f"{endpoint.url}\n\n{reason}\n\nIts delivery log, redelivery and the switch to enable it again:\n{link}\n"
            ),
            next_attempt_at=now,
        )
    logger.warning("webhooks: endpoint %s disabled: %s", endpoint.pk, reason)


def deliver_due(now: datetime | None = None) -> int:
    """Attempt every pending delivery that is due (each claimed under a row lock); returns attempts made."""
    now = now or timezone.now()
    made = 0
    while made < DUE_BATCH:
        with transaction.atomic():
            delivery = (
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("endpoint", "endpoint__owner", "message")
                .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "id")
                .first()
            )
            if delivery is None:
                break
            if not delivery.endpoint.enabled:
                delivery.status, delivery.next_attempt_at, delivery.finished_at = Delivery.Status.DISABLED, None, now
                delivery.save(update_fields=["status", "next_attempt_at", "finished_at"])
                continue
            attempt(delivery, now)
            made += 1
    return made


def redeliver(*, deliveries, now: datetime | None = None) -> int:
    """Send again from the start of the schedule (same message id). Returns how many were queued."""
    now = now or timezone.now()
    count = (
        deliveries.exclude(status=Delivery.Status.PENDING)
        .filter(endpoint__enabled=True)
        .update(status=Delivery.Status.PENDING, attempts=0, next_attempt_at=now, finished_at=None)
    )
    if count:
        transaction.on_commit(_kick)
    return count


def failures_in(*, endpoint: Endpoint, start: datetime, end: datetime):
    return Delivery.objects.filter(
        endpoint=endpoint,
        status__in=[Delivery.Status.FAILED, Delivery.Status.DISABLED],
        created_at__gte=start,
        created_at__lt=end,
    )
