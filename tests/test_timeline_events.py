"""The timeline in codes: one user action is one action id, its events are sent from the state each step
reached (webhook payloads agree with their `to`), each follower gets one email for the whole action, and
the rows written before the codes existed were read into codes by the migration."""

import pytest
from django.test import Client
from django.urls import reverse

from notifications import services as notifications
from notifications.models import Follow
from tests.test_notifications import inbox, smtp_port  # noqa: F401 - the real SMTP server fixtures
from tests.test_webhooks import endpoint, receiver, verified  # noqa: F401 - the real HTTP receiver fixtures
from triage import services
from triage.models import Investigation, TimelineEvent
from webhooks import services as webhooks

pytestmark = pytest.mark.django_db


def test_resolve_as_fixed_sends_consistent_payloads_and_one_email_per_follower(
    inbox,  # noqa: F811
    receiver,  # noqa: F811
    endpoint,  # noqa: F811
    alice,
    bob,
    dave,
):
    investigation, _ = services.investigation_create(
        actor=alice, data={"title": "Writer keys refused", "severity": "high", "status": "investigating"}
    )
    investigation.findings.create(title="Gateway maps scopes", root_cause="model:write mapped to read.")
    notifications.follow(user=alice, investigation=investigation)
    notifications.follow(user=dave, investigation=investigation)
    receiver.requests.clear()
    webhooks.deliver_due()
    receiver.requests.clear()

    support = Client()
    support.force_login(bob)
    response = support.post(
        reverse("triage:transition", args=[investigation.pk]), {"status": "resolved", "resolution": "fixed"}
    )
    assert response.status_code == 302

    webhooks.deliver_due()
    payloads = [verified(endpoint.plain_secret, headers, body) for headers, body in receiver.requests]
    changes = [p["data"] for p in payloads if p["type"] == "investigation.status_changed"]
    assert [(c["from"], c["to"]) for c in changes] == [
        ("investigating", "root_cause_identified"),
        ("root_cause_identified", "fixing"),
        ("fixing", "resolved"),
    ]
    assert all(c["investigation"]["status"] == c["to"] for c in changes), changes  # no stale state
    actions = {p["data"]["action"] for p in payloads}
    assert len(actions) == 1  # one click: consumers can group its steps
    assert actions == {str(a) for a in investigation.timeline.filter(kind="status").values_list("action_id", flat=True)}

    notifications.outbox_send()
    for follower in (alice, dave):
        (mail,) = inbox.to(follower.email)  # one email for the whole action
        body = mail.get_payload(decode=True).decode()
        assert str(mail["Subject"]).strip() == (
            f"[{investigation.number}] Status: Investigating → Resolved: {investigation.title}"
        )
        assert "Investigating to Root cause identified" in body
        assert "Root cause identified to Fixing" in body
        assert "Fixing to Resolved" in body
        assert "Status now: Resolved (Fixed)" in body
    assert inbox.to(bob.email) == []  # the one who clicked is not told
    assert Follow.objects.filter(investigation=investigation).count() == 2


def test_old_rows_get_codes_from_the_migration(migrator):
    old = migrator.apply_initial_migration(("triage", "0012_report_joined"))
    Investigation_ = old.apps.get_model("triage", "Investigation")
    Event = old.apps.get_model("triage", "TimelineEvent")
    from django.utils import timezone

    investigation = Investigation_.objects.create(title="Before codes", created_at=timezone.now())
    rows = [
        ("change", "status", "Root cause identified", "Fixing"),
        ("change", "resolution", "—", "Won't fix"),
        ("change", "finding “Keys lack “scope””", "Reported", "False positive"),
        ("change", "action “Rotate the keys”", "open", "done"),
        ("change", "awaiting reporter", "no", "yes"),
        ("change", "SLA warning", "", "response breached"),
        ("change", "report", "", "check #12 by alice"),
        ("change", "summary", "old words", "new words"),
        ("change", "something else", "a", "b"),
        ("comment", "comment", "", ""),
    ]
    for kind, subject, old_value, new_value in rows:
        Event.objects.create(
            investigation=investigation, kind=kind, subject=subject, old_value=old_value, new_value=new_value
        )

    new = migrator.apply_tested_migration(("triage", "0014_timeline_codes_only"))
    Event = new.apps.get_model("triage", "TimelineEvent")
    got = list(Event.objects.order_by("id").values_list("kind", "field", "target", "old", "new"))
    assert got == [
        ("status", "", "", "root_cause_identified", "fixing"),
        ("resolution", "", "", "", "wont_fix"),
        ("finding_verdict", "", "Keys lack “scope”", "reported", "false_positive"),
        ("action_item_done", "", "Rotate the keys", "false", "true"),
        ("waiting_on_reporter", "", "", "false", "true"),
        ("sla_warning", "response", "", "", "breached"),
        ("report", "", "alice", "", "12"),
        ("field", "summary", "", "old words", "new words"),
        ("other", "something else", "", "a", "b"),
        ("comment", "", "", "", ""),
    ]
    assert len(set(Event.objects.values_list("action_id", flat=True))) == len(rows)  # each its own action
    migrator.reset()


def test_the_page_shows_words_derived_from_the_codes(client, bob):
    investigation, _ = services.investigation_create(actor=bob, data={"title": "Words", "severity": "low"})
    services.investigation_transition(investigation=investigation, actor=bob, status="investigating")
    services.investigation_set_awaiting(investigation=investigation, actor=bob, awaiting=True)
    event = investigation.timeline.get(kind=TimelineEvent.Kind.STATUS)
    assert (event.old, event.new) == ("new", "investigating")  # what readers read
    assert (event.what, event.old_text, event.new_text) == ("status", "New", "Investigating")  # what people read
    client.force_login(bob)
    page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "status: New → Investigating" in page and "awaiting reporter: no → yes" in page
    assert Investigation.objects.get(pk=investigation.pk).awaiting_reporter


def test_a_renamed_label_changes_the_page_and_nothing_else(client, bob, monkeypatch):
    """Readers read codes: with "Fixing" renamed, webhooks and the SLA clocks see the same values."""
    from webhooks.models import Message

    webhooks.endpoint_create(url="http://127.0.0.1:9/hooks", event_types=["investigation.status_changed"], owner=bob)
    monkeypatch.setattr(Investigation.Status.FIXING, "_label_", "Repairing")
    investigation, _ = services.investigation_create(
        actor=bob, data={"title": "Renamed", "severity": "low", "status": "root_cause_identified"}
    )
    services.investigation_transition(investigation=investigation, actor=bob, status="fixing")
    (message,) = Message.objects.all()
    assert (message.payload["data"]["from"], message.payload["data"]["to"]) == ("root_cause_identified", "fixing")
    assert message.payload["data"]["investigation"]["status"] == "fixing"
    client.force_login(bob)
    page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "status: Root cause identified → Repairing" in page
