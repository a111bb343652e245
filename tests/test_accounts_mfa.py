"""MFA on allauth: staff who sign in with a password must enrol a second factor before any staff page; a
TOTP code completes a password sign-in; developers may go without; demo staff get codes from totp_code."""

from io import StringIO

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.core.management import call_command
from django.urls import reverse

from accounts.roles import Role
from accounts.services import user_create
from tests.conftest import PASSWORD, fresh_totp_window, totp_now


def sign_in(client, login, password=PASSWORD):
    return client.post(reverse("accounts:login"), {"login": login, "password": password})


def test_a_support_user_without_mfa_is_sent_to_enrol_from_every_staff_page(client, db):
    user_create(username="sue", email="sue@example.com", password=PASSWORD, role=Role.SUPPORT)
    assert sign_in(client, "sue").status_code == 302
    for name in ("triage:index", "triage:queue", "dashboard:index", "webhooks:index", "notifications:outbox"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"] == reverse("mfa_index"), name
    assert client.get(reverse("mfa_index")).status_code == 200  # the enrolment pages stay open

    # Enrolment asks for the password again (allauth's reauthentication), then shows the authenticator's
    # secret, kept in the session until a code from it is confirmed.
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_reauthenticate"))
    client.post(response["Location"], {"password": PASSWORD})
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert client.post(reverse("mfa_activate_totp"), {"code": "000000"}).status_code == 200  # a wrong code
    assert not Authenticator.objects.filter(user__username="sue", type="totp").exists()
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_now(secret)})
    assert response.status_code == 302
    assert client.get(reverse("triage:index")).status_code == 200
    stored = Authenticator.objects.get(user__username="sue", type="totp").data["secret"]
    assert secret not in stored  # encrypted at rest with the portal's keys


def test_a_password_sign_in_asks_for_the_code_and_refuses_a_wrong_one(client, bob):
    response = sign_in(client, "bob")
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    assert client.post(reverse("mfa_authenticate"), {"code": "123456"}).status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.post(reverse("mfa_authenticate"), {"code": totp_now(bob.totp_secret)}).status_code == 302
    assert client.get(reverse("triage:index")).status_code == 200


def test_developers_may_go_without_a_second_factor(client, alice):
    assert sign_in(client, "alice").status_code == 302
    assert client.get(reverse("onboarding:index")).status_code in (200, 302)
    assert client.get(reverse("onboarding:history")).status_code == 200


def test_totp_code_prints_a_code_that_signs_the_demo_staff_in(client, charlie):
    fresh_totp_window(20)  # the password sign-in below comes between the printed code and its use
    out = StringIO()
    call_command("totp_code", "charlie", stdout=out)
    code = out.getvalue().strip()
    assert len(code) == 6 and code.isdigit()
    sign_in(client, "charlie")
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    assert client.get(reverse("dashboard:index")).status_code == 200


def test_a_staff_member_cannot_remove_their_last_second_factor(client, bob):
    sign_in(client, "bob")
    client.post(reverse("mfa_authenticate"), {"code": totp_now(bob.totp_secret)})
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 200 and "cannot" in response.content.decode().lower()
    assert Authenticator.objects.filter(user=bob, type="totp").exists()


def test_demo_setup_gives_demo_staff_a_secret_that_makes_valid_codes(client, db):
    """`make run`'s demo support user: var/demo-credentials.json's totp_secret makes the codes that sign in."""
    from devstack.management.commands.demo_setup import Command

    user = user_create(username="support", email="support@example.com", password=PASSWORD, role=Role.SUPPORT)
    secret = Command._totp_secret(user, {})
    assert Command._totp_secret(user, {"totp_secret": secret}) == secret  # a second run keeps it
    assert Authenticator.objects.filter(user=user, type="totp").count() == 1
    sign_in(client, "support")
    assert client.post(reverse("mfa_authenticate"), {"code": totp_now(secret)}).status_code == 302
    assert client.get(reverse("triage:index")).status_code == 200
