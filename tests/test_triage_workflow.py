"""Support engineers work an investigation: validated transitions, verdicts with reasons, action items
ticked without a reload, an append-only timeline; safe Markdown; reporters see only their own."""

import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import SEED_KEY
from triage import services, timeline
from triage.models import ActionItem, Component, Finding, Investigation, TimelineEvent

KEY = SEED_KEY


@pytest.fixture
def investigation(db, bob):
    investigation, _ = services.investigation_create(
        actor=bob,
        data={"title": "Registry 403 for third parties", "severity": "high", "owner": bob},
        findings=[{"title": "403 on write", "description": "Seen with reader keys"}],
        action_items=[{"phase": "Phase 1", "title": "Reproduce", "priority": "high"}],
    )
    return investigation


def test_new_cannot_jump_to_resolved_without_a_resolution_or_skip_steps(client, bob, investigation):
    client.force_login(bob)
    response = client.post(reverse("triage:transition", args=[investigation.pk]), {"status": "resolved"}, follow=True)
    assert "Say how it was resolved" in response.content.decode()
    response = client.post(reverse("triage:transition", args=[investigation.pk]), {"status": "fixing"}, follow=True)
    assert "cannot go from “New” to “Fixing”" in response.content.decode()
    response = client.post(
        reverse("triage:transition", args=[investigation.pk]),
        {"status": "resolved", "resolution": "fixed"},
        follow=True,
    )
    assert "Nothing can be fixed before its root cause is identified" in response.content.decode()
    investigation.refresh_from_db()
    assert investigation.status == "new"


def test_the_whole_path_with_reopen_is_recorded_in_the_timeline(client, bob, investigation):
    client.force_login(bob)
    for status in ("investigating", "root_cause_identified", "fixing", "monitoring"):
        client.post(reverse("triage:transition", args=[investigation.pk]), {"status": status})
    client.post(reverse("triage:transition", args=[investigation.pk]), {"status": "resolved", "resolution": "fixed"})
    investigation.refresh_from_db()
    assert (investigation.status, investigation.resolution) == ("resolved", "fixed")
    assert investigation.resolved_at is not None
    client.post(reverse("triage:transition", args=[investigation.pk]), {"status": "investigating"})  # reopen
    investigation.refresh_from_db()
    assert (investigation.status, investigation.resolution, investigation.resolved_at) == ("investigating", "", None)
    changes = list(TimelineEvent.objects.filter(investigation=investigation, kind="status").values_list("old", "new"))
    assert changes[0] == ("new", "investigating") and changes[-1] == ("resolved", "investigating")
    assert all(event.actor == bob for event in TimelineEvent.objects.filter(investigation=investigation, kind="status"))


def test_a_false_positive_can_be_resolved_from_new_and_a_duplicate_names_its_original(client, bob, investigation):
    original, _ = services.investigation_create(actor=bob, data={"title": "Original"})
    client.force_login(bob)
    response = client.post(
        reverse("triage:transition", args=[investigation.pk]),
        {"status": "resolved", "resolution": "duplicate"},
        follow=True,
    )
    assert "A duplicate names the investigation it duplicates" in response.content.decode()
    client.post(
        reverse("triage:transition", args=[investigation.pk]),
        {"status": "resolved", "resolution": "duplicate", "duplicate_of": original.number},
    )
    investigation.refresh_from_db()
    assert investigation.duplicate_of == original


def test_a_verdict_needs_its_reason_and_changes_inline(client, bob, investigation):
    finding = investigation.findings.get()
    client.force_login(bob)
    url = reverse("triage:finding_status", args=[finding.pk])
    response = client.post(url, {"status": "false_positive", "reason": ""}, headers={"HX-Request": "true"})
    assert "<html" not in response.content.decode()
    assert "needs its reason" in response.content.decode()
    finding.refresh_from_db()
    assert finding.status == Finding.Status.REPORTED
    response = client.post(
        url,
        {"status": "false_positive", "reason": f"Works with the right import path; key {KEY}"},
        headers={"HX-Request": "true"},
    )
    assert 'data-status="false_positive"' in response.content.decode()
    finding.refresh_from_db()
    assert finding.status == Finding.Status.FALSE_POSITIVE
    assert KEY not in finding.verdict_reason and "hk_live_pIDV…tN" in finding.verdict_reason
    assert TimelineEvent.objects.filter(
        investigation=investigation, kind="finding_verdict", target=finding.title, new="false_positive"
    ).exists()


def test_action_items_tick_off_without_a_reload(client, bob, investigation):
    item = investigation.action_items.get()
    client.force_login(bob)
    response = client.post(reverse("triage:action_toggle", args=[item.pk]), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html and 'data-done="true"' in html
    assert ActionItem.objects.get(pk=item.pk).done


def test_markdown_renders_and_script_or_onerror_is_inert(client, bob):
    client.force_login(bob)
    payload = "**bold**\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n```python\nprint('hi')\n```"
    investigation, _ = services.investigation_create(
        actor=bob, data={"title": "<script>alert(3)</script>", "summary": payload}
    )
    services.comment_add(investigation=investigation, actor=bob, body='<a href="javascript:alert(4)">x</a>')
    html = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "<strong>bold</strong>" in html
    assert "<code" in html and ("print(&#x27;hi&#x27;)" in html or "print('hi')" in html)
    assert "<script>alert" not in html
    assert "onerror" not in html
    assert "javascript:alert" not in html


def test_keys_pasted_into_the_form_are_masked_and_the_user_is_told(client, bob):
    client.force_login(bob)
    response = client.post(
        reverse("triage:create"),
        {
            "title": "curl fails",
            "severity": "medium",
            "summary": f'curl -H "Authorization: Bearer {KEY}" https://registry',
        },
        follow=True,
    )
    assert "replaced by their masked form" in response.content.decode()
    investigation = Investigation.objects.get()
    assert KEY not in investigation.summary and "hk_live_pIDV…tN" in investigation.summary


def test_list_filters_search_sort_and_pagination(client, bob, charlie):
    for index in range(60):
        services.investigation_create(
            actor=bob,
            data={
                "title": f"Issue {index}",
                "severity": "critical" if index % 10 == 0 else "low",
                "created_at": timezone.now() - timezone.timedelta(days=index),
            },
        )
    client.force_login(bob)
    first = client.get(reverse("triage:index")).content.decode()
    assert "Page 1 of 2" in first and "Issue 0<" in first and "Issue 59<" not in first
    assert "Issue 59<" in client.get(reverse("triage:index") + "?page=2").content.decode()
    critical = client.get(reverse("triage:index") + "?severity=critical").content.decode()
    assert "6 investigations" in critical
    target = Investigation.objects.get(title="Issue 42")
    found = client.get(reverse("triage:index") + f"?q={target.number}").content.decode()
    assert "1 investigations" in found and "Issue 42" in found
    partial = client.get(reverse("triage:index") + "?sort=oldest", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and partial.index("Issue 59") < partial.index("Issue 58")
    assert client.get(reverse("triage:index") + "?page=999").status_code == 200  # out of range: last page, not a 500
    client.force_login(charlie)  # a manager reads the list, without the buttons that change things
    html = client.get(reverse("triage:index")).content.decode()
    assert "Issue 0<" in html and "New investigation" not in html
    assert client.get(reverse("triage:create")).status_code == 403


def test_my_queue_shows_open_investigations_i_own(client, bob, investigation):
    other, _ = services.investigation_create(actor=bob, data={"title": "Someone else's"})
    client.force_login(bob)
    html = client.get(reverse("triage:queue")).content.decode()
    assert investigation.title in html and other.title not in html


def test_the_timeline_is_append_only_in_the_admin(admin_client, investigation):
    event = investigation.timeline.first()
    assert (
        admin_client.post(reverse("admin:triage_timelineevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert TimelineEvent.objects.filter(pk=event.pk).exists()


def test_a_broad_search_counts_up_to_a_cap_and_says_so(client, bob, monkeypatch):
    from triage import selectors

    monkeypatch.setattr(selectors, "SEARCH_COUNT_CAP", 5)
    component = Component.objects.order_by("name").first()  # the seeded list
    for index in range(8):
        services.investigation_create(
            actor=bob,
            data={"title": f"Token rejected {index}", "severity": "high", "owner": bob},
            component_names=[component.name],
        )
    client.force_login(bob)
    found = client.get(reverse("triage:index") + "?q=token").content.decode()
    assert "more than 5 investigations match: narrow the search" in found
    assert found.count("Token rejected") == 5  # the first (newest) 5: more are reached by narrowing
    row = found.split("Token rejected 7")[1].split("</tr>")[0]
    assert "High" in row and "New" in row and bob.username in row and component.name in row
    exact = client.get(reverse("triage:index") + "?severity=high").content.decode()
    assert "8 investigations" in exact and "narrow the search" not in exact


def test_a_long_timeline_opens_on_its_latest_events_and_pages_back(client, bob, investigation):
    for index in range(120):
        services.comment_add(investigation=investigation, actor=bob, body=f"update number {index:03d}")
    client.force_login(bob)
    url = reverse("triage:detail", args=[investigation.pk])
    latest = client.get(url).content.decode()
    assert "update number 119" in latest and "update number 000" not in latest
    assert latest.count('data-kind="comment"') == 50
    earlier = re.search(r'data-testid="timeline-earlier" href="([^"]+)"', latest)[1]
    older = client.get(url + unescape(earlier).split("#")[0]).content.decode()
    assert "update number 069" in older and "update number 119" not in older and 'data-testid="timeline-later"' in older
    assert client.get(url + "?timeline=not-a-page").status_code == 200


def test_a_comment_says_who_sees_it_and_an_internal_note_never_reaches_the_reporter(client, bob, alice, investigation):
    from triage.models import Report

    Report.objects.create(investigation=investigation, reporter=alice)
    client.force_login(bob)
    url = reverse("triage:comment", args=[investigation.pk])
    reply = client.post(url, {"body": "We reproduced it.", "visibility": "reporter"}, follow=True)
    assert "Reply sent: the reporters see it." in reply.content.decode()
    client.post(url, {"body": "Gateway scope bug, do not share yet.", "visibility": "internal"})
    refused = client.post(url, {"body": "No button pressed"}, follow=True)
    assert "Choose reply or internal note." in refused.content.decode()
    staff_page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "Reply · the reporters see it" in staff_page and "Internal note · support and managers only" in staff_page
    client.force_login(alice)
    page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "We reproduced it." in page and "Gateway scope bug" not in page and "No button pressed" not in page


def test_timeline_events_render_their_markdown(client, bob, investigation):
    timeline.record(investigation, "report", actor=bob, target="bob", new="1", body="- **Key format**: pass `OK`")
    client.force_login(bob)
    page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "<strong>Key format</strong>: pass <code>OK</code>" in page and "**Key format**" not in page


def test_verdict_reason_and_root_cause_are_given_together_and_the_root_cause_stays_internal(
    client, bob, alice, investigation
):
    from triage.models import Report

    Report.objects.create(investigation=investigation, reporter=alice)
    finding = investigation.findings.get()
    client.force_login(bob)
    page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "Reason <small>· the reporters see it" in page and "Root cause <small>· support and managers only" in page
    client.post(
        reverse("triage:finding_status", args=[finding.pk]),
        {
            "status": "verified",
            "reason": "Reproduced with a reader key.",
            "root_cause": "Gateway maps write scope wrong.",
        },
        headers={"HX-Request": "true"},
    )
    finding.refresh_from_db()
    assert (finding.status, finding.verdict_reason, finding.root_cause) == (
        "verified",
        "Reproduced with a reader key.",
        "Gateway maps write scope wrong.",
    )
    client.force_login(alice)
    reporter_page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "Reproduced with a reader key." in reporter_page and "Gateway maps write scope" not in reporter_page


def test_resolving_as_fixed_is_one_action_once_the_root_cause_is_written(client, bob):
    """Seen: five separate submits to reach "resolved", and an investigation resolved with no owner."""
    investigation, _ = services.investigation_create(
        actor=bob, data={"title": "One-step resolve"}, findings=[{"title": "403 on write"}]
    )
    client.force_login(bob)
    url = reverse("triage:transition", args=[investigation.pk])
    refused = client.post(url, {"status": "resolved", "resolution": "fixed"}, follow=True).content.decode()
    assert "write the root cause on the finding" in refused
    investigation.findings.update(root_cause="The gateway mapped model:write to read.")
    done = client.post(url, {"status": "resolved", "resolution": "fixed"}, follow=True).content.decode()
    investigation.refresh_from_db()
    assert (investigation.status, investigation.resolution, investigation.owner) == ("resolved", "fixed", bob)
    assert "is now Resolved (Fixed); you are its owner now." in done
    assert '<option value="fixed" selected>' in done  # the resolution shows after resolving
    walked = list(investigation.timeline.filter(kind="status").values_list("old", "new"))
    assert walked == [
        ("new", "investigating"),
        ("investigating", "root_cause_identified"),
        ("root_cause_identified", "fixing"),
        ("fixing", "resolved"),
    ]
    assert "Root cause identified → Fixing" in done  # the page shows the labels, derived from the codes
    assert investigation.timeline.filter(kind="owner").exists()
    assert len(set(investigation.timeline.filter(kind__in=["status", "owner"]).values_list("action_id"))) == 1
