"""Staff single sign-on against a real OpenID Connect provider (oidc-provider-mock, started here in a thread:
discovery, authorization, token, JWKS and userinfo over HTTP), through allauth's openid_connect provider."""

from urllib.parse import urlsplit

import pytest
import requests
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from oidc_provider_mock import run_server_in_thread

from accounts.roles import Role, roles_of
from accounts.services import user_create
from tests.conftest import PASSWORD


@pytest.fixture(scope="module")
def provider():
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def sso(settings, provider, db):
    settings.OIDC_SUPPORT_GROUPS = ["hokusai-support"]
    settings.OIDC_MANAGER_GROUPS = ["hokusai-managers"]
    settings.OIDC_ROLE_CLAIM = "groups"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Acme SSO",
                    "client_id": "hokusai-portal",
                    "secret": "client-secret-for-tests",
                    "settings": {"server_url": provider, "oauth_pkce_enabled": True},
                }
            ]
        }
    }
    return provider


def provider_user(provider: str, sub: str, **claims) -> None:
    assert requests.put(f"{provider}/users/{sub}", json=claims, timeout=10).status_code == 204


def sso_sign_in(client: Client, provider: str, sub: str):
    """The button (a POST), the provider's consent form (the person picks `sub`), back to the portal."""
    start = client.post(reverse("openid_connect_login", kwargs={"provider_id": "sso"}), {"process": "login"})
    assert start.status_code == 302 and start["Location"].startswith(provider), start
    authorized = requests.post(start["Location"], data={"sub": sub}, allow_redirects=False, timeout=10)
    assert authorized.status_code == 302, authorized.text[:500]
    callback = urlsplit(authorized.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}", follow=True)


def test_the_sign_in_page_offers_the_provider_by_name(client, sso):
    assert "Sign in with Acme SSO" in client.get(reverse("accounts:login")).content.decode()


def test_groups_give_the_support_role_and_taking_the_group_away_removes_it(client, sso):
    provider_user(sso, "sam", email="sam@acme.example", email_verified=True, groups=["hokusai-support"])
    page = sso_sign_in(client, sso, "sam")
    sam = get_user_model().objects.get(email="sam@acme.example")
    assert roles_of(sam) == {Role.SUPPORT}
    # SSO satisfies the staff second-factor rule (the provider enforces its own): no detour to enrolment.
    assert client.get(reverse("triage:index")).status_code == 200, page.redirect_chain

    client.post(reverse("accounts:logout"))
    provider_user(sso, "sam", email="sam@acme.example", email_verified=True, groups=["hokusai-managers"])
    sso_sign_in(client, sso, "sam")
    sam = get_user_model().objects.get(pk=sam.pk)
    assert roles_of(sam) == {Role.MANAGER}  # re-synced: support gone with its group
    assert client.get(reverse("triage:queue")).status_code == 403


def test_an_unverified_provider_email_never_reaches_an_existing_local_account(client, sso):
    victim = user_create(username="vic", email="vic@acme.example", password=PASSWORD, role=Role.SUPPORT)
    provider_user(sso, "mallory", email="vic@acme.example", email_verified=False, groups=[])
    sso_sign_in(client, sso, "mallory")
    assert client.session.get("_auth_user_id") != str(victim.pk)
    assert not victim.socialaccount_set.exists()
    assert get_user_model().objects.filter(email__iexact="vic@acme.example").count() == 1


def test_a_verified_provider_email_signs_in_to_the_existing_account(client, sso):
    local = user_create(username="val", email="val@acme.example", password=PASSWORD, role=Role.DEVELOPER)
    assert EmailAddress.objects.get(user=local).verified
    provider_user(sso, "val-at-acme", email="val@acme.example", email_verified=True, groups=["hokusai-support"])
    sso_sign_in(client, sso, "val-at-acme")
    assert client.session.get("_auth_user_id") == str(local.pk)
    assert local.socialaccount_set.filter(provider="sso").exists()
    assert Role.SUPPORT in roles_of(get_user_model().objects.get(pk=local.pk))
