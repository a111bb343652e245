"""The audit trail: who changed what, when and from where, with django-auditlog (its LogEntry rows).

Registered here, in the top layer, so no lower app imports this one: roles and group membership, API keys
saved or forgotten, webhook endpoints and their secrets, SLA policies and calendars, status components and
maintenance. Secrets are never stored in the trail, not even encrypted: a secret field's old and new values
are shown as a fingerprint of the ciphertext ("changed", and which one), never the value. Rows are
append-only: the admin cannot change or delete them, and a database trigger refuses UPDATE and DELETE
(operations/migrations/0001_audit_append_only.py)."""

import hashlib
import ipaddress

from asgiref.sync import sync_to_async
from auditlog.cid import set_cid
from auditlog.context import set_extra_data
from auditlog.middleware import AuditlogMiddleware
from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from hokusai_portal import logs
from hokusai_portal.async_middleware import SyncAndAsync
from hokusai_portal.ratelimit import client_address
from onboarding.models import ApiKey, OrganizationApiKey
from organizations.models import Invitation, Membership, Organization
from status.models import Maintenance, PlatformComponent
from triage.models import SlaPolicy, WorkingCalendar
from webhooks.models import Endpoint


def mask(value: str) -> str:
    """A secret field in the trail: a fingerprint that tells a change happened, nothing of the secret."""
    if not value or value == "None":
        return ""
    return "•••• " + hashlib.sha256(str(value).encode()).hexdigest()[:8]


def correlation_id() -> str | None:
    """Each row's `cid` is the request id of the log lines of the same request (hokusai_portal/logs.py)."""
    return logs.request_id_var.get() or None


class AuditMiddleware(SyncAndAsync, AuditlogMiddleware):
    """django-auditlog's middleware (the actor, the address), with the address read as the rate limits read
    it: X-Forwarded-For only behind TRUSTED_PROXY_HOPS proxies, never a header any client can write.
    Sync and async capable (auditlog's is sync only)."""

    sync_call = AuditlogMiddleware.__call__

    async def __acall__(self, request):
        set_cid(request)
        extra = await sync_to_async(self.get_extra_data)(request)  # reads request.user: a query
        with set_extra_data(context_data=extra):
            return await self.get_response(request)

    @staticmethod
    def _get_remote_addr(request):
        try:
            return str(ipaddress.ip_address(client_address(request)))
        except ValueError:  # not an address (a forged or broken header): none rather than a failed save
            return None


def register() -> None:
    user = get_user_model()
    auditlog.register(
        user,
        include_fields=["username", "email", "is_active", "is_staff", "is_superuser", "groups"],
        m2m_fields={"groups"},
    )
    auditlog.register(Group, include_fields=["name", "permissions"], m2m_fields={"permissions"})
    auditlog.register(ApiKey, include_fields=["user", "masked", "key_tier", "ciphertext"], mask_fields=["ciphertext"])
    auditlog.register(
        Endpoint,
        exclude_fields=["failing_since", "created_at"],
        mask_fields=["secret_ciphertext", "previous_secret_ciphertext"],
    )
    # Organizations: who joined, left, was made owner; invitations sent, resent, revoked (never the link's
    # token, not even hashed); the organization's key saved, replaced or forgotten (masked like a personal key).
    auditlog.register(Organization)
    auditlog.register(Membership)
    auditlog.register(Invitation, exclude_fields=["token_hash"])
    auditlog.register(
        OrganizationApiKey,
        include_fields=["organization", "masked", "key_tier", "saved_by", "ciphertext"],
        mask_fields=["ciphertext"],
    )
    auditlog.register(SlaPolicy)
    auditlog.register(WorkingCalendar)
    auditlog.register(PlatformComponent, exclude_fields=["created_at"])
    auditlog.register(Maintenance, exclude_fields=["created_at"], m2m_fields={"components"})
