"""A developer downloads their data (JSON, never a key) and deletes their account: the key is destroyed,
their reports stay on investigations from "a deleted developer"; staff owning open investigations cannot."""

import json

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from onboarding import services as onboarding
from onboarding.models import ApiKey
from organizations.models import Membership
from organizations.services import ownership_hand_over
from tests.conftest import PASSWORD, key_appears_in_database, objects_owned_by
from triage.models import Investigation, Report

KEY = "hk_test_Abcdefghijklmnopqrstuvwxyz012345"


def test_a_developer_downloads_their_data_without_the_key(client, alice):
    onboarding.api_key_save(user=alice, raw_key=KEY)
    objects_owned_by(alice)
    client.force_login(alice)
    response = client.get(reverse("accounts:data_export"))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["profile"]["email"] == "alice@example.com"
    assert data["checks"] and data["reports"] and "environment_reports" in data and "registrations" in data
    assert KEY not in response.content.decode() and data["api_key"]["masked"].startswith("hk_test_")


def test_deleting_the_account_destroys_the_key_and_keeps_the_reports(client, alice, bob):
    onboarding.api_key_save(user=alice, raw_key=KEY)
    ids = objects_owned_by(alice)
    # alice owns an organization with a teammate: she hands it over first (it always keeps an owner)
    ownership_hand_over(actor=alice, membership=Membership.objects.exclude(user=alice).get())
    client.force_login(alice)
    assert client.post(reverse("accounts:delete"), {"confirm": "not-alice"}).status_code == 400
    assert ApiKey.objects.filter(user=alice).exists()
    response = client.post(reverse("accounts:delete"), {"confirm": "alice"})
    assert response.status_code == 302
    assert not ApiKey.objects.filter(user_id=alice.pk).exists() and not key_appears_in_database(KEY)
    gone = get_user_model().objects.get(pk=alice.pk)
    assert not gone.is_active and gone.email == "" and not gone.has_usable_password()
    assert Report.objects.filter(reporter_id=alice.pk).exists()  # the report stays on its investigation
    assert client.post(reverse("accounts:login"), {"login": "alice", "password": PASSWORD}).status_code == 200
    client.force_login(bob)
    detail = client.get(reverse("triage:detail", args=[ids["pk"]])).content.decode()
    assert "a deleted developer" in detail


def test_a_staff_account_owning_open_investigations_cannot_delete_itself(client, bob):
    Investigation.objects.create(title="Mine", owner=bob, created_at=timezone.now())
    client.force_login(bob)
    response = client.post(reverse("accounts:delete"), {"confirm": "bob"})
    assert response.status_code == 409 and "open investigation" in response.content.decode()
    assert get_user_model().objects.get(pk=bob.pk).is_active
