"""Password reset by email (a link whose form POSTs, expiring, rate limited) ends the other sessions; password
change keeps Django's validators; an email change re-verifies; the sessions page signs the others out."""

import re

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

NEW_PASSWORD = "a-brand-new-unusual-passphrase"


def sign_in(client, login="alice", password=PASSWORD):
    return client.post(reverse("accounts:login"), {"login": login, "password": password})


def reset_link(message) -> str:
    return "/" + re.search(r"https?://[^/\s]+/(accounts/password/reset/key/\S+/)", message.body).group(1)


def test_a_reset_by_email_sets_a_new_password_and_signs_out_the_other_sessions(client, alice, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    elsewhere = Client()
    assert sign_in(elsewhere).status_code == 302
    assert elsewhere.get(reverse("onboarding:history")).status_code == 200

    client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    (message,) = mail.outbox
    link = reset_link(message)
    form = client.get(link, follow=True)  # opening the link changes nothing: it shows a form
    assert form.status_code == 200 and get_user_model().objects.get(pk=alice.pk).check_password(PASSWORD)
    weak = client.post(form.redirect_chain[-1][0], {"password1": "password", "password2": "password"})
    assert "This password is too common." in weak.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302

    assert elsewhere.get(reverse("onboarding:history")).status_code == 302  # signed out there
    assert sign_in(Client(), password=PASSWORD).status_code == 200  # the old password fails
    assert sign_in(Client(), password=NEW_PASSWORD).status_code == 302


def test_a_reset_link_expires(client, alice, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    settings.PASSWORD_RESET_TIMEOUT = -1  # every link is already past its time
    page = client.get(reset_link(mail.outbox[0]), follow=True).content.decode()
    assert "Bad Token" in page or "invalid" in page.lower()


def test_reset_requests_are_rate_limited(client, alice, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    answers = [
        client.post(reverse("account_reset_password"), {"email": "alice@example.com"}).status_code for _ in range(5)
    ]
    assert 429 in answers and len(mail.outbox) <= 3


def test_changing_the_password_checks_djangos_validators(client, alice):
    sign_in(client)
    weak = client.post(
        reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": "12345678", "password2": "12345678"}
    )
    assert "This password is entirely numeric." in weak.content.decode()
    client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert get_user_model().objects.get(pk=alice.pk).check_password(NEW_PASSWORD)


def test_a_new_email_address_is_used_only_once_verified(client, alice, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sign_in(client)
    client.post(reverse("account_email"), {"action_add": "", "email": "alice.new@example.com"})
    new = EmailAddress.objects.get(email="alice.new@example.com")
    assert not new.verified and get_user_model().objects.get(pk=alice.pk).email == "alice@example.com"
    assert mail.outbox[-1].to == ["alice.new@example.com"]


def test_the_sessions_page_lists_the_devices_and_signs_out_the_others(client, alice):
    other = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    sign_in(other)
    client.defaults["HTTP_USER_AGENT"] = "Mozilla/5.0 (Macintosh) Safari/17"
    sign_in(client)
    page = client.get(reverse("usersessions_list")).content.decode()
    assert "Firefox" in page and "Safari" in page
    client.post(reverse("usersessions_list"))  # "Sign Out Other Sessions"
    assert other.get(reverse("onboarding:history")).status_code == 302
    assert client.get(reverse("onboarding:history")).status_code == 200
