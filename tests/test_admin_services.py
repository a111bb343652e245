"""The admin writes through the services: a change leaves a timeline event and keys pasted into it are
masked; the workflow's fields (status, verdicts) cannot be changed there, only on the investigation's page
where transitions are checked."""

from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.conftest import PASSWORD
from triage import services
from triage.models import Investigation, TimelineEvent

KEY = "hk_live_Abcdefghijklmnopqrstuvwxyz012345"


def admin_client(client):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client.login(username="root", password=PASSWORD)
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
    subjects = set(TimelineEvent.objects.filter(investigation=investigation).values_list("subject", flat=True))
    assert {"summary", "severity"} <= subjects
    assert "replaced by their masked form" in client.get(response["Location"]).content.decode()


def test_an_investigation_added_in_the_admin_has_its_created_event(client, db):
    client = admin_client(client)
    response = client.post(
        reverse("admin:triage_investigation_add"),
        change_data(Investigation(title="Added in admin", severity="medium", summary="")),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    investigation = Investigation.objects.get(title="Added in admin")
    assert investigation.timeline.filter(subject="created").exists()
