"""The authorization matrix: every URL in the URLconf × every role (anonymous, developer A who owns the
objects and her organization, developer B who is in none, support, manager, a member of A's organization,
the owner of another organization) answers as ACCESS says. Generated from the URLconf:
a URL with no row in ACCESS fails the test, so a new page cannot ship without a decision on who may
open it. README's roles table is checked against the same rows.

Outcomes: ok (2xx, or a redirect that is not to sign-in), login (sent to sign in), deny (403),
hidden (404: the object exists but this user may not know it), token (401: the API wants a token)."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from tests.conftest import objects_owned_by
from tests.test_malformed_input import url_kwargs, url_patterns

ROLES = ("anonymous", "developer A", "developer B", "support", "manager", "member of A's org", "other org")
OK, LOGIN, DENY, HIDDEN, TOKEN = "ok", "login", "deny", "hidden", "token"


def row(anonymous, a, b, support, manager, member=None, other=None):
    """A member of A's organization and a member (the owner) of another answer as developer B unless the row
    says otherwise: what an organization shares is written out where it is shared."""
    member = b if member is None else member
    other = b if other is None else other
    return dict(zip(ROLES, (anonymous, a, b, support, manager, member, other), strict=True))


EVERYONE = row(OK, OK, OK, OK, OK)
DEVELOPERS = row(LOGIN, OK, OK, OK, DENY)  # onboarding: developers (and support, who helps them)
SUPPORT = row(LOGIN, DENY, DENY, OK, DENY)
STAFF_READ = row(LOGIN, DENY, DENY, OK, OK)
API_TOKEN = row(TOKEN, TOKEN, TOKEN, TOKEN, TOKEN)
ACCESS = {
    "home": row(LOGIN, OK, OK, OK, OK),
    "healthz": EVERYONE,
    "favicon": EVERYONE,
    "api_status": row(TOKEN, DENY, DENY, OK, OK),
    "accounts:login": EVERYONE,
    "accounts:logout": row(LOGIN, OK, OK, OK, OK),  # GET asks to confirm; the POST signs out
    "accounts:signup": EVERYONE,
    "onboarding:index": DEVELOPERS,
    "onboarding:key": DEVELOPERS,
    "onboarding:key_forget": DEVELOPERS,
    # The organization's key: its owner only (a member runs checks with it, never sees or changes it); no
    # organization, 404. The other organization's owner reaches their own organization's key.
    "onboarding:organization_key": row(LOGIN, OK, HIDDEN, HIDDEN, DENY, DENY, OK),
    "onboarding:organization_key_forget": row(LOGIN, OK, HIDDEN, HIDDEN, DENY, DENY, OK),
    "onboarding:connectivity": DEVELOPERS,
    "onboarding:history": row(LOGIN, OK, OK, OK, OK),
    "onboarding:registration": DEVELOPERS,
    "onboarding:run_picker": DEVELOPERS,  # lists what the user's own saved key sees
    "onboarding:done": DEVELOPERS,  # before a registration: sent on to the step they are at
    # A's registered version, read live with A's key: only A (support cannot borrow a developer's key).
    # A's organization shares it (read with the key it was registered with); another organization does not.
    "onboarding:registered_version": row(LOGIN, OK, HIDDEN, HIDDEN, DENY, OK, HIDDEN),
    # A's check: A, her organization and staff read it; B and another organization are not told it exists.
    "onboarding:check_run": row(LOGIN, OK, HIDDEN, OK, OK, OK, HIDDEN),
    "onboarding:check_run_retry": row(LOGIN, OK, DENY, DENY, DENY),
    "triage:report_problem": row(LOGIN, OK, DENY, DENY, DENY),
    "onboarding:environment": DEVELOPERS,
    # A's environment report: A and staff (it is evidence support reads); B is not told it exists.
    "onboarding:environment_report": row(LOGIN, OK, HIDDEN, OK, OK),
    "onboarding:doctor_script": EVERYONE,  # a `curl` in a terminal has no session; the file holds no secret
    "triage:index": STAFF_READ,
    "triage:queue": SUPPORT,
    "triage:create": SUPPORT,
    "triage:import": SUPPORT,
    "triage:my_reports": row(LOGIN, OK, OK, OK, DENY),
    "triage:findings": STAFF_READ,
    # The investigation A reported: A reads it (public parts and A's own report), B does not see it.
    # A's organization reads it too (its public parts: A's note and evidence stay hers and staff's).
    "triage:detail": row(LOGIN, OK, HIDDEN, OK, OK, OK, HIDDEN),
    "triage:edit": SUPPORT,
    "triage:transition": SUPPORT,
    "triage:awaiting": SUPPORT,
    "triage:comment": SUPPORT,
    "triage:export": SUPPORT,
    "triage:finding_status": SUPPORT,
    "triage:action_toggle": SUPPORT,
    "triage:rerun": SUPPORT,
    "status:page": EVERYONE,  # the public status page, its JSON and badges: no login
    "status:json": EVERYONE,
    "status:badge": EVERYONE,
    "notifications:settings": row(LOGIN, OK, OK, OK, OK),
    # Following needs reading: A follows what A reported; B is not told it exists.
    "notifications:follow": row(LOGIN, OK, HIDDEN, OK, OK, OK, HIDDEN),
    "notifications:unsubscribe": EVERYONE,  # the signed token is the proof (RFC 8058 one-click, no session)
    "notifications:outbox": SUPPORT,
    "webhooks:index": SUPPORT,  # outgoing webhooks: managed by support engineers (and the admin)
    "webhooks:endpoint": SUPPORT,
    "webhooks:endpoint_action": SUPPORT,
    "webhooks:redeliver_range": SUPPORT,
    "webhooks:redeliver_one": SUPPORT,
    # Organizations (issue 24): developers' pages. Owner-only actions: no organization 404, a member 403,
    # another organization's object 404; every action's GET asks to confirm. The invitation link opens
    # for anyone (it says to sign up or sign in with the invited address; joining needs that account).
    "organizations:index": row(LOGIN, OK, OK, DENY, DENY, OK, OK),
    "organizations:invite": row(LOGIN, OK, HIDDEN, DENY, DENY, DENY, OK),
    "organizations:invitation_resend": row(LOGIN, OK, HIDDEN, DENY, DENY, DENY, HIDDEN),
    "organizations:invitation_revoke": row(LOGIN, OK, HIDDEN, DENY, DENY, DENY, HIDDEN),
    "organizations:member_remove": row(LOGIN, OK, HIDDEN, DENY, DENY, DENY, HIDDEN),
    "organizations:member_make_owner": row(LOGIN, OK, HIDDEN, DENY, DENY, DENY, HIDDEN),
    "organizations:leave": row(LOGIN, OK, HIDDEN, DENY, DENY, OK, OK),
    "organizations:join": EVERYONE,
    "dashboard:index": STAFF_READ,
    "dashboard:csv": STAFF_READ,
    # The public API: a bearer token or nothing (a session cookie admits no one; tests/test_api_matrix.py
    # walks every route × token × scope × role). Its schema and docs are public: they hold no data.
    "api_v1:api-root": EVERYONE,  # sent on to the docs
    "api_v1:openapi-json": EVERYONE,
    "api_v1:openapi-view": EVERYONE,
    "api_v1:checks_start": API_TOKEN,
    "api_v1:checks": API_TOKEN,
    "api_v1:check": API_TOKEN,
    "api_v1:investigations": API_TOKEN,
    "api_v1:investigation": API_TOKEN,
    "api_v1:investigation_comments": API_TOKEN,
    "api_v1:investigation_transitions": API_TOKEN,
    "api_v1:dashboard": API_TOKEN,
    # Each user's own access tokens; another's is not admitted to exist.
    "api:tokens": row(LOGIN, OK, OK, OK, OK),
    "api:token_revoke": row(LOGIN, OK, HIDDEN, HIDDEN, HIDDEN),
    # Accounts on django-allauth: email, password, MFA, sessions, SSO (issue 23).
    "accounts:settings": row(LOGIN, OK, OK, OK, OK),
    "accounts:data_export": row(LOGIN, OK, OK, OK, OK),  # one's own data only
    "accounts:delete": row(LOGIN, OK, OK, OK, OK),  # GET asks to confirm; one's own account only
    "account_login": row(OK, OK, OK, OK, OK),
    "account_logout": row(LOGIN, OK, OK, OK, OK),
    "account_inactive": row(OK, OK, OK, OK, OK),
    "account_signup": row(OK, OK, OK, OK, OK),
    "account_reauthenticate": row(LOGIN, OK, OK, OK, OK),
    "account_request_reauthentication_code": row(LOGIN, OK, OK, OK, OK),
    "account_confirm_reauthentication_code": row(LOGIN, OK, OK, OK, OK),
    "account_email": row(LOGIN, OK, OK, OK, OK),
    "account_email_verification_sent": row(OK, OK, OK, OK, OK),
    "account_change_password": row(LOGIN, OK, OK, OK, OK),
    "account_set_password": row(LOGIN, OK, OK, OK, OK),
    "account_reset_password": row(OK, OK, OK, OK, OK),
    "account_confirm_login_code": row(LOGIN, OK, OK, OK, OK),
    "account_confirm_email": row(OK, OK, OK, OK, OK),
    "account_reset_password_from_key_done": row(OK, OK, OK, OK, OK),
    "account_reset_password_from_key": row(OK, OK, OK, OK, OK),
    "account_reset_password_done": row(OK, OK, OK, OK, OK),
    "mfa_index": row(LOGIN, OK, OK, OK, OK),
    "mfa_authenticate": row(LOGIN, OK, OK, OK, OK),
    "mfa_reauthenticate": row(LOGIN, OK, OK, OK, OK),
    "mfa_activate_totp": row(LOGIN, OK, OK, OK, OK),
    "mfa_deactivate_totp": row(LOGIN, HIDDEN, HIDDEN, OK, OK),  # only who has TOTP (fixture staff do): 404 otherwise
    "mfa_view_recovery_codes": row(LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN),  # 404 until recovery codes are generated
    "mfa_generate_recovery_codes": row(LOGIN, OK, OK, OK, OK),
    "mfa_download_recovery_codes": row(LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN),  # 404 until recovery codes are generated
    "mfa_list_webauthn": row(LOGIN, OK, OK, OK, OK),
    "mfa_add_webauthn": row(LOGIN, OK, OK, OK, OK),
    "mfa_reauthenticate_webauthn": row(LOGIN, OK, OK, OK, OK),
    "mfa_remove_webauthn": row(LOGIN, OK, OK, OK, OK),  # first to re-authentication; then only one's own passkey
    "mfa_edit_webauthn": row(LOGIN, OK, OK, OK, OK),  # first to re-authentication; then only one's own passkey
    "mfa_login_webauthn": row(LOGIN, OK, OK, OK, OK),
    "socialaccount_login_cancelled": row(OK, OK, OK, OK, OK),
    "socialaccount_login_error": row(
        TOKEN, TOKEN, TOKEN, TOKEN, TOKEN
    ),  # allauth answers a failed provider sign-in 401
    "socialaccount_signup": row(
        LOGIN, LOGIN, LOGIN, LOGIN, LOGIN
    ),  # only inside an SSO sign-in; otherwise back to sign in
    "socialaccount_connections": row(LOGIN, OK, OK, OK, OK),
    "openid_connect_login": row(
        HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN
    ),  # 404: no provider in the tests' settings (OIDC_ISSUER empty)
    "openid_connect_callback": row(
        HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN
    ),  # 404: no provider in the tests' settings (OIDC_ISSUER empty)
    "usersessions_list": row(LOGIN, OK, OK, OK, OK),
    # Prometheus's scrape: a bearer token (METRICS_TOKEN), never a session; unset (as here), it does not exist.
    "metrics": row(HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN),
}


@pytest.fixture
def world(alice, dave, bob, charlie):
    """Objects owned by developer A (alice): a failed check, the investigation she reported from it, a
    registered version, her organization (with a teammate and an open invitation). Erin is a member of
    A's organization; Frank owns another one (an owner there: still nothing of A's)."""
    from organizations.models import Membership, Organization
    from tests.conftest import _make_user

    ids = objects_owned_by(alice)
    erin, frank = _make_user("erin", Role.DEVELOPER), _make_user("frank", Role.DEVELOPER)
    Membership.objects.create(organization=Membership.objects.get(user=alice).organization, user=erin)
    other = Organization.objects.create(name="Other org")
    Membership.objects.create(organization=other, user=frank, role=Membership.Role.OWNER)
    users = {
        "anonymous": None,
        "developer A": alice,
        "developer B": dave,
        "support": bob,
        "manager": charlie,
        "member of A's org": erin,
        "other org": frank,
    }
    return users, ids


def outcome(response) -> str:
    code = response.status_code
    if code in (301, 302, 303):
        return LOGIN if response["Location"].startswith(reverse("accounts:login")) else OK
    if code in (200, 204, 503):  # /healthz answers 503 when a part is down: still an answer, not a refusal
        return OK
    return {401: TOKEN, 403: DENY, 404: HIDDEN}.get(code, f"status {code}")


def observed(world) -> dict[str, dict[str, str]]:
    users, ids = world
    found: dict[str, dict[str, str]] = {}
    for name, converters in url_patterns():
        url = reverse(name, kwargs=url_kwargs(name, converters, ids))
        found[name] = {}
        for role, user in users.items():
            client = Client()  # one per cell: a logout or a POST in one cell never leaks into the next
            if user is not None:
                client.force_login(user)
            response = client.get(url)
            if response.status_code == 405:  # a POST-only action: the same request a form sends, empty
                response = client.post(url)
            found[name][role] = outcome(response)
    return found


def test_every_url_answers_every_role_as_the_matrix_says(world):
    found = observed(world)
    missing = sorted(set(found) - set(ACCESS))
    assert not missing, f"URLs with no row in ACCESS (decide who may open them): {missing}"
    assert not set(ACCESS) - set(found), f"rows for URLs that are gone: {sorted(set(ACCESS) - set(found))}"
    wrong = [
        f"{name} as {role}: expected {ACCESS[name][role]}, got {got}"
        for name, cells in found.items()
        for role, got in cells.items()
        if got != ACCESS[name][role]
    ]
    assert not wrong, "\n".join(wrong)
    print(f"authorization matrix: {len(found)} URLs × {len(ROLES)} roles = {len(found) * len(ROLES)} cells")


README_CELL = {"✓": OK, "own": OK, "sign in": LOGIN, "403": DENY, "404": HIDDEN, "token": TOKEN, "—": DENY}


def test_readmes_roles_table_matches_the_matrix():
    """README's "Roles" table: one row per URL (its path pattern), a column per role."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("<!-- roles-table -->")[1]
    rows = {}
    for line in section.strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [README_CELL.get(re.sub(r"\s*\(.*\)$", "", c), c) for c in cells[2:]]
    expected = {name: [ACCESS[name][role] for role in ROLES] for name in ACCESS}
    assert {name: rows.get(f"`{name}`") for name in expected} == expected
