"""The Key step: saved encrypted, shown masked, replaceable, forgettable, rate limited."""

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.urls import reverse

from onboarding import services
from onboarding.models import ApiKey
from tests.conftest import key_appears_in_database

KEY = "hk_test_Abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture(autouse=True)
def _clear_rate_limits():
    cache.clear()


def test_it_saves_the_key_encrypted_and_shows_it_masked(client, alice):
    client.force_login(alice)
    response = client.post(reverse("onboarding:key"), {"api_key": f"Bearer {KEY}\n"}, follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("onboarding:connectivity")
    assert "Removed the “Bearer” prefix" in html
    assert "hk_test_Abcd…45" in html
    assert KEY not in html
    stored = ApiKey.objects.get(user=alice)
    assert stored.masked == "hk_test_Abcd…45"
    assert key_appears_in_database(KEY) == []
    assert services.api_key_reveal(stored) == KEY


def test_a_bad_key_gets_a_message_and_nothing_is_saved(client, alice):
    client.force_login(alice)
    response = client.post(reverse("onboarding:key"), {"api_key": "hk_live_tooshort"})
    assert response.status_code == 200
    assert "It may have been cut off when copying." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_bad_replacement_keeps_the_old_key(client, alice):
    client.force_login(alice)
    client.post(reverse("onboarding:key"), {"api_key": KEY})
    client.post(reverse("onboarding:key"), {"api_key": "hk_live_ with space"})
    assert services.api_key_reveal(ApiKey.objects.get(user=alice)) == KEY


def test_replacing_the_key_keeps_one_row(client, alice):
    client.force_login(alice)
    client.post(reverse("onboarding:key"), {"api_key": KEY})
    other = "hk_live_" + "Z" * 36
    client.post(reverse("onboarding:key"), {"api_key": other})
    assert ApiKey.objects.count() == 1
    assert services.api_key_reveal(ApiKey.objects.get()) == other


def test_forget_really_deletes_the_ciphertext(client, alice):
    client.force_login(alice)
    client.post(reverse("onboarding:key"), {"api_key": KEY})
    response = client.post(reverse("onboarding:key_forget"), follow=True)
    assert "Your API key was deleted" in response.content.decode()
    assert not ApiKey.objects.exists()
    assert client.get(reverse("onboarding:index"))["Location"] == reverse("onboarding:key")


def test_key_submissions_are_rate_limited_per_user(client, alice, bob):
    client.force_login(alice)
    for _ in range(services.KEY_SUBMISSIONS_PER_WINDOW):
        client.post(reverse("onboarding:key"), {"api_key": "nonsense"})
    response = client.post(reverse("onboarding:key"), {"api_key": KEY})
    assert "Too many key submissions" in response.content.decode()
    assert not ApiKey.objects.filter(user=alice).exists()
    client.force_login(bob)  # another user is not affected
    client.post(reverse("onboarding:key"), {"api_key": KEY})
    assert ApiKey.objects.filter(user=bob).exists()


def test_rotating_encryption_keys_keeps_keys_readable_and_re_encrypts(settings, alice):
    api_key, _ = services.api_key_save(user=alice, raw_key=KEY)
    old_ciphertext = api_key.ciphertext
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    assert services.api_key_reveal(api_key) == KEY  # old ciphertext still decrypts
    api_key.refresh_from_db()
    assert api_key.ciphertext != old_ciphertext
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key retired: still readable
    assert services.api_key_reveal(api_key) == KEY


def test_connectivity_page_needs_a_key_first(client, alice):
    client.force_login(alice)
    assert client.get(reverse("onboarding:connectivity"))["Location"] == reverse("onboarding:key")


def test_managers_cannot_onboard(client, charlie):
    client.force_login(charlie)
    assert client.post(reverse("onboarding:key"), {"api_key": KEY}).status_code == 403


def test_an_empty_submission_says_what_to_paste(client, alice):
    client.force_login(alice)
    response = client.post(reverse("onboarding:key"), {})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_wizard_shows_where_the_user_is(client, alice):
    client.force_login(alice)
    html = client.get(reverse("onboarding:key")).content.decode()
    assert 'aria-current="step">\n    1. Key' in html
    services.api_key_save(user=alice, raw_key=KEY)
    html = client.get(reverse("onboarding:connectivity")).content.decode()
    assert "1. Key ✓" in html
    assert 'aria-current="step">\n    2. Connectivity' in html
