"""Followers of investigations, their email choice, what is waiting for a digest, and the outbox.

Mail is never sent inside a request: a public change writes OutboxEmail rows in the same transaction as
the change, and a Celery task sends them with retries. An SMTP server that is down delays mail; the rows
wait (pending, with the last error and the next attempt) and none is lost."""

from django.conf import settings
from django.db import models


class Follow(models.Model):
    class Reason(models.TextChoices):
        REPORTED = "reported", "You reported it"
        FOLLOWED = "followed", "You follow it"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows")
    investigation = models.ForeignKey("triage.Investigation", on_delete=models.CASCADE, related_name="followers")
    reason = models.CharField(max_length=10, choices=Reason.choices, default=Reason.FOLLOWED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "investigation"], name="one_follow_per_user")]

    def __str__(self) -> str:
        return f"{self.user} follows {self.investigation_id}"


class OrganizationFollow(models.Model):
    """ "Everyone in my organization" follows an investigation: one choice a member makes for the organization.
    Who it reaches is read at each notification from the memberships of that moment, so a member who joins
    later hears too and one who left no longer does. It reaches members only while the organization may read
    the investigation (a member reported it from a check run in the organization)."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="investigation_follows"
    )
    investigation = models.ForeignKey(
        "triage.Investigation", on_delete=models.CASCADE, related_name="organization_followers"
    )
    chosen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "investigation"], name="one_follow_per_organization")
        ]

    def __str__(self) -> str:
        return f"everyone in {self.organization} follows {self.investigation_id}"


class OrganizationFollowOptOut(models.Model):
    """A member who stopped following what their organization follows (the page's Unfollow, or an email's
    link): they alone stop hearing of it. Goes with the organization's choice (a new choice reaches everyone)."""

    organization_follow = models.ForeignKey(OrganizationFollow, on_delete=models.CASCADE, related_name="opt_outs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "organization follow opt-out"
        constraints = [models.UniqueConstraint(fields=["organization_follow", "user"], name="one_opt_out_per_member")]

    def __str__(self) -> str:
        return f"{self.user} stopped: {self.organization_follow}"


class Preference(models.Model):
    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", "At once: an email per public change"
        DAILY = "daily", "A daily digest"
        OFF = "off", "Off: no email"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.IMMEDIATE)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.mode}"


class Notification(models.Model):
    """A public change one follower should hear of: emailed at once, or kept for their daily digest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey("triage.TimelineEvent", on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(auto_now_add=True)
    digest = models.BooleanField(default=False, help_text="Waits for the daily digest.")
    digested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "event"], name="one_notification_per_event")]
        indexes = [models.Index(fields=["digest", "digested_at"], name="notification_digest_pending")]

    def __str__(self) -> str:
        return f"{self.user}: event {self.event_id}"


class OutboxEmail(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (refused by the server: not retried)"

    to = models.EmailField()
    subject = models.CharField(max_length=250)
    body = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "outbox email"

    def __str__(self) -> str:
        return f"{self.status}: {self.subject} → {self.to}"
