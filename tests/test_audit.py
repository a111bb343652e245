"""The audit trail (django-auditlog, registered by operations/audit.py): who changed what, when, from where;
secrets never in it; rows that neither the ORM nor the admin can change or delete."""

import csv
import io

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import DatabaseError, transaction
from django.urls import reverse

from accounts.roles import Role
from hokusai_portal import crypto
from onboarding import services as onboarding_services
from triage.models import SlaPolicy
from webhooks import services as webhook_services
from webhooks.models import Endpoint, EventType


def entries_for(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("timestamp", "id"))


@pytest.fixture
def endpoint(bob):
    created, _ = webhook_services.endpoint_create(
        url="https://receiver.example.com/hooks", event_types=[EventType.INVESTIGATION_CREATED], owner=bob
    )
    return created


def test_rotating_a_webhook_secret_leaves_a_row_that_names_who_when_where_and_no_secret(client, bob, endpoint):
    client.force_login(bob)
    old_ciphertext = endpoint.secret_ciphertext
    response = client.post(
        reverse("webhooks:endpoint_action", args=[endpoint.pk]), {"action": "rotate"}, REMOTE_ADDR="203.0.113.7"
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    new_secret = crypto.decrypt(endpoint.secret_ciphertext)
    row = entries_for(endpoint)[-1]
    assert row.action == LogEntry.Action.UPDATE and row.actor == bob
    assert row.remote_addr == "203.0.113.7" and row.cid == response["X-Request-ID"]
    old, new = row.changes["secret_ciphertext"]
    assert old.startswith("•••• ") and new.startswith("•••• ") and old != new  # changed, and nothing else told
    stored = str(LogEntry.objects.filter(pk=row.pk).values().get())
    for secret in (new_secret, endpoint.secret_ciphertext, old_ciphertext, crypto.decrypt(old_ciphertext)):
        assert secret not in stored


@pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"], reason="the append-only trigger is PostgreSQL's"
)
@pytest.mark.django_db(transaction=True)
def test_an_audit_row_cannot_be_updated_or_deleted_through_the_orm(bob, endpoint):
    with set_actor(bob):  # as the middleware does for a request
        webhook_services.secret_rotate(endpoint=endpoint)
    row = entries_for(endpoint)[-1]
    assert row.actor == bob
    for attempt in (
        lambda: LogEntry.objects.filter(pk=row.pk).update(changes_text="nothing happened"),
        lambda: LogEntry.objects.filter(pk=row.pk).delete(),
        lambda: LogEntry.objects.all().delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert LogEntry.objects.get(pk=row.pk).changes == row.changes
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LogEntry.objects.filter(pk=row.pk).update(actor=None, changes_text="forged")
    # The one update let through: deleting the actor keeps the row, without its actor (SET NULL).
    bob.delete()
    assert LogEntry.objects.get(pk=row.pk).actor is None


def test_group_membership_and_api_keys_are_in_the_trail(client, admin_user, alice, devstack_keys):
    support = Group.objects.get(name=Role.SUPPORT.value)
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:auth_user_change", args=[alice.pk]),
        {
            "username": alice.username,
            "email": alice.email,
            "is_active": "on",
            "groups": [support.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[-2000:]
    membership = [e for e in entries_for(alice) if e.changes and "groups" in e.changes]
    assert membership and membership[-1].actor == admin_user
    assert membership[-1].changes["groups"]["objects"] == [str(support)]

    key = devstack_keys["writer"]
    api_key, _ = onboarding_services.api_key_save(user=alice, raw_key=key)
    onboarding_services.api_key_forget(user=alice)
    actions = [e.action for e in LogEntry.objects.get_for_object(api_key).order_by("timestamp", "id")]
    assert actions == [LogEntry.Action.CREATE, LogEntry.Action.DELETE]
    dumped = str(list(LogEntry.objects.values()))
    assert key not in dumped and api_key.ciphertext not in dumped


def test_an_sla_policy_change_in_the_admin_shows_old_and_new(client, admin_user):
    policy = SlaPolicy.objects.get(severity="high")
    before = policy.first_response_minutes
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:triage_slapolicy_change", args=[policy.pk]),
        {"severity": "high", "first_response_minutes": before + 15, "resolution_minutes": policy.resolution_minutes},
    )
    assert response.status_code == 302, response.content[-2000:]
    row = entries_for(policy)[-1]
    assert row.actor == admin_user
    assert row.changes["first_response_minutes"] == [str(before), str(before + 15)]


def test_the_admin_shows_filters_exports_csv_and_offers_no_delete(client, admin_user, bob, endpoint):
    webhook_services.secret_rotate(endpoint=endpoint)
    client.force_login(admin_user)
    changelist = reverse("admin:auditlog_logentry_changelist")
    page = client.get(changelist)
    assert page.status_code == 200 and "receiver.example.com" in page.content.decode()
    assert "delete_selected" not in page.content.decode()
    row = entries_for(endpoint)[-1]
    assert client.get(reverse("admin:auditlog_logentry_delete", args=[row.pk])).status_code == 403
    export = client.post(changelist, {"action": "export_csv", "_selected_action": [row.pk]})
    assert export["Content-Type"].startswith("text/csv")
    (header, line) = list(csv.reader(io.StringIO(export.content.decode())))
    record = dict(zip(header, line, strict=True))
    assert record["resource"] == "webhooks.endpoint" and record["action"] == "update"
    assert "secret ciphertext" in record["changes"] and endpoint.secret_ciphertext not in record["changes"]
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()
