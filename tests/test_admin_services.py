"""The admin writes through the services: a change leaves a timeline event and keys pasted into it are
masked; the workflow's fields (status, verdicts) cannot be changed there, only on the investigation's page
where transitions are checked."""

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.services import totp_enrol
from tests.conftest import PASSWORD
from triage import services
from triage.models import Investigation, TimelineEvent

KEY = "hk_live_Abcdefghijklmnopqrstuvwxyz012345"


def admin_client(client):
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    totp_enrol(user=root)  # administrators need a second factor (accounts.middleware)
    client.force_login(root)
    return client


def change_data(investigation, **overrides) -> dict:
    data = {
        "title": investigation.title,
        "summary": investigation.summary,
        "severity": investigation.severity,
        "owner": "",
        "environment": "{}",
        "notes": "[]",
        "impact_user": "",
        "impact_business": "",
        "impact_platform": "",
        "reproduction_steps": "",
        "risks": "",
        "mitigations": "",
        "owner_label": "",
        "review_cadence": "",
        "component_details": "",
        "next_review": "",
        "findings-TOTAL_FORMS": "0",
        "findings-INITIAL_FORMS": "0",
        "action_items-TOTAL_FORMS": "0",
        "action_items-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_an_admin_edit_is_redacted_and_on_the_timeline(client, bob):
    investigation, _ = services.investigation_create(actor=bob, data={"title": "Admin edit", "severity": "low"})
    client = admin_client(client)
    url = reverse("admin:triage_investigation_change", args=[investigation.pk])
    response = client.post(
        url,
        change_data(investigation, summary=f"curl -H 'Authorization: Bearer {KEY}'", severity="high", status="closed"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    investigation.refresh_from_db()
    assert KEY not in investigation.summary and "hk_live_Abcd…45" in investigation.summary
    assert investigation.severity == "high"
    assert investigation.status == Investigation.Status.NEW  # not a field the admin can change
    changes = set(TimelineEvent.objects.filter(investigation=investigation).values_list("kind", "field", "new"))
    assert {("field", "summary", investigation.summary), ("severity", "", "high")} <= changes
    assert "replaced by their masked form" in client.get(response["Location"]).content.decode()


def test_an_investigation_added_in_the_admin_has_its_created_event(client, db):
    client = admin_client(client)
    response = client.post(
        reverse("admin:triage_investigation_add"),
        change_data(Investigation(title="Added in admin", severity="medium", summary="")),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    investigation = Investigation.objects.get(title="Added in admin")
    assert investigation.timeline.filter(kind="created").exists()


def test_a_key_pasted_into_a_finding_in_the_admin_is_masked_and_on_the_timeline(client, bob):
    """The investigation admin's inlines save through the services: the real change form, posted."""
    investigation, _ = services.investigation_create(actor=bob, data={"title": "Inline edit", "severity": "low"})
    item = investigation.action_items.create(title="Rotate the keys")
    client = admin_client(client)
    url = reverse("admin:triage_investigation_change", args=[investigation.pk])
    response = client.post(
        url,
        change_data(
            investigation,
            **{
                "findings-TOTAL_FORMS": "1",
                "findings-0-position": "1",
                "findings-0-title": "Key in the logs",
                "findings-0-description": f"The client logged {KEY} at debug level.",
                "findings-0-root_cause": "",
                "findings-0-possible_causes": "",
                "findings-0-evidence": "",
                "findings-0-investigation": str(investigation.pk),
                "action_items-TOTAL_FORMS": "1",
                "action_items-INITIAL_FORMS": "1",
                "action_items-0-id": str(item.pk),
                "action_items-0-investigation": str(investigation.pk),
                "action_items-0-position": "0",
                "action_items-0-phase": "",
                "action_items-0-priority": "medium",
                "action_items-0-title": "Rotate the keys",
                "action_items-0-done": "on",
                "action_items-0-timeframe": "",
                "action_items-0-due": "",
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    finding = investigation.findings.get()
    assert KEY not in finding.description and "hk_live_Abcd…45" in finding.description
    kinds = set(investigation.timeline.values_list("kind", "target"))
    assert {("finding_added", "Key in the logs"), ("action_item_done", "Rotate the keys")} <= kinds
    assert not investigation.timeline.filter(body__contains=KEY).exists()
    assert "replaced by their masked form" in client.get(response["Location"]).content.decode()
    detail = Client()
    detail.force_login(bob)
    page = detail.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "finding “Key in the logs”" in page and KEY not in page
