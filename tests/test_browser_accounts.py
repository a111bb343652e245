"""Accounts in a real browser (Chromium): a support engineer without a second factor is sent to enrol from
/triage/, enrols a passkey in Chromium's virtual authenticator (WebAuthn over CDP), opens /triage/, and
later signs in with the passkey alone."""

import pytest
from django.urls import reverse

from accounts.roles import Role
from accounts.services import user_create
from tests.conftest import PASSWORD, browser_sign_in, needs_chromium

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_a_support_engineer_enrols_a_passkey_and_signs_in_with_it(browser, live_server):
    user_create(username="sue", email="sue@example.com", password=PASSWORD, role=Role.SUPPORT)
    base = live_server.url
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )

    browser_sign_in(page, base, "sue")
    page.goto(f"{base}{reverse('triage:index')}")
    assert page.url.endswith(reverse("mfa_index")), page.url  # no staff page before a second factor

    page.goto(f"{base}{reverse('mfa_add_webauthn')}")
    if reverse("account_reauthenticate") in page.url:  # allauth asks for the password again first
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_load_state()
    page.get_by_label("Passwordless").check()
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    assert cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator["authenticatorId"]})["credentials"]
    page.goto(f"{base}{reverse('triage:index')}")
    assert page.url.endswith(reverse("triage:index")), page.url

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    page.goto(f"{base}{reverse('accounts:login')}")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(f"{base}{reverse('triage:index')}")
    assert page.url.endswith(reverse("triage:index")), page.url
    assert errors == []
