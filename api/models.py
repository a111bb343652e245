from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccessToken(models.Model):
    """A personal access token for the API (`Authorization: Bearer hkp_…`). Only the SHA-256 of the token
    is kept (the token is 256 random bits: no salt or slow hash needed, and a lookup by hash is one index
    probe); the token itself is shown once, when it is made."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. “CI of lscor-model”.")
    scopes = models.JSONField(default=list, help_text="Scope names (api/scopes.py).")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex.")
    hint = models.CharField(max_length=16, help_text="The token's first characters, to recognise it (hkp_AbCd).")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.CharField(max_length=64, blank=True, help_text="The client address of the last use.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def expires_in(self) -> timedelta:
        return self.expires_at - timezone.now()
