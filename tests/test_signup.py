"""Self sign-up on django-allauth: a developer account, signed in at once, whose address must be verified
(by a link confirmed with a POST) before the portal stores a key for it."""

import re
from pathlib import Path

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from accounts.roles import Role, roles_of
from onboarding.models import ApiKey, DeveloperProgress

KEY = "hk_test_Abcdefghijklmnopqrstuvwxyz012345"


def sign_up(client, email="Dev@Example.com", password="a-long-unusual-passphrase"):
    return client.post(reverse("accounts:signup"), {"email": email, "password1": password})


def confirmation_link(message) -> str:
    return re.search(r"http://\S+/accounts/confirm-email/\S+/", message.body).group(0)


def test_it_creates_a_developer_and_signs_them_in(client, db):
    response = sign_up(client)
    assert response.status_code == 302
    user = get_user_model().objects.get(username="dev@example.com")
    assert roles_of(user) == {Role.DEVELOPER}
    assert client.get(reverse("onboarding:history")).status_code == 200
    assert DeveloperProgress.objects.get(user=user).email_verified_at is None


def test_no_key_is_stored_until_the_address_is_verified_by_a_post(client, db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sign_up(client)
    page = client.get(reverse("onboarding:key")).content.decode()
    assert "Verify your email address" in page
    refused = client.post(reverse("onboarding:key"), {"api_key": KEY})
    assert refused.status_code == 403 and "Verify your email address first" in refused.content.decode()
    assert not ApiKey.objects.exists()

    (message,) = mail.outbox
    assert message.to == ["dev@example.com"]
    link = confirmation_link(message)
    path = link.split("://", 1)[1].split("/", 1)[1]
    client.get("/" + path)  # what a mail scanner does: nothing is confirmed by opening the link
    assert not EmailAddress.objects.get(email="dev@example.com").verified
    client.post("/" + path)
    assert EmailAddress.objects.get(email="dev@example.com").verified
    assert DeveloperProgress.objects.get().email_verified_at is not None
    assert client.post(reverse("onboarding:key"), {"api_key": KEY}).status_code == 302
    assert ApiKey.objects.filter(user__username="dev@example.com").exists()


def test_every_page_says_so_while_the_address_is_unverified_and_none_after(client, db):
    """The banner's question is answered by the wizard's query on the pages that show the wizard, and by a
    query of its own on the others: both say the same."""
    sign_up(client)
    pages = [reverse("onboarding:key"), reverse("onboarding:history")]  # with the wizard, without it
    for url in pages:
        assert 'data-testid="email-unverified"' in client.get(url).content.decode(), url
    EmailAddress.objects.filter(email="dev@example.com").update(verified=True)
    for url in pages:
        assert 'data-testid="email-unverified"' not in client.get(url).content.decode(), url


def test_send_again_is_rate_limited(client, db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sign_up(client)
    for _ in range(3):
        client.post(reverse("account_email"), {"action_send": "", "email": "dev@example.com"})
    assert len(mail.outbox) == 1  # the sign-up's; "send again" waits out the 3-minute cooldown


def test_sign_up_does_not_fail_when_the_mail_server_is_down(client, db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    response = sign_up(client, email="smtp-down@example.com")
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="smtp-down@example.com").exists()
    page = client.get(response["Location"], follow=True).content.decode()
    assert "We could not send the email just now" in page


def test_weak_password_is_refused_and_nothing_is_saved(client, db):
    response = sign_up(client, email="dev@example.com", password="password")
    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert not get_user_model().objects.exists()


def test_duplicate_email_is_refused(client, alice):
    response = sign_up(client, email="ALICE@example.com")
    assert "already registered" in response.content.decode()
    assert get_user_model().objects.count() == 1


def test_bad_email_gets_a_message_not_a_500(client, db):
    response = sign_up(client, email="not an email", password="x")
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()


def test_readme_names_the_flows():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "OIDC_ISSUER" in readme and "totp_code" in readme
