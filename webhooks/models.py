"""Outgoing webhooks to the Standard Webhooks spec: endpoints, messages (one id each, stable across every
retry), deliveries (one per endpoint and message) and each attempt."""

from django.conf import settings
from django.db import models


class EventType(models.TextChoices):
    INVESTIGATION_CREATED = "investigation.created", "Investigation created"
    INVESTIGATION_STATUS_CHANGED = "investigation.status_changed", "Investigation status changed"
    INVESTIGATION_RESOLVED = "investigation.resolved", "Investigation resolved"
    FINDING_VERDICT_SET = "finding.verdict_set", "Finding verdict set"
    REGISTRATION_COMPLETED = "registration.completed", "Model registration completed"
    CHECK_FAILED = "check.failed", "Connectivity check failed (opt-in: frequent)"


class Endpoint(models.Model):
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    secret_ciphertext = models.TextField(help_text="whsec_… secret, encrypted (hokusai_portal.crypto).")
    previous_secret_ciphertext = models.TextField(blank=True, help_text="The secret before a rotation, still signing.")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    legacy_headers = models.BooleanField(
        default=False,
        help_text="Also send X-Hokusai-Signature (sha256=<hex HMAC of the body>) and X-Hokusai-Idempotency-Key, "
        "for receivers built for the platform's model_registered webhook.",
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed attempt since the last success."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class Message(models.Model):
    msg_id = models.CharField(max_length=40, unique=True, help_text="webhook-id: the same on every retry.")
    event_type = models.CharField(max_length=40, choices=EventType.choices, db_index=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.msg_id} {self.event_type}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (retries exhausted)"
        DISABLED = "disabled", "Not sent: endpoint disabled"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Attempts in this round (a redelivery starts one)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "message"], name="one_delivery_per_endpoint")]

    def __str__(self) -> str:
        return f"{self.message.msg_id} → {self.endpoint}: {self.status}"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=200, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"
