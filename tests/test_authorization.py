"""The authorization matrix: every URL in the URLconf × every role (anonymous, developer A who owns the
objects, developer B who does not, support, manager) answers as ACCESS says. Generated from the URLconf:
a URL with no row in ACCESS fails the test, so a new page cannot ship without a decision on who may
open it. README's roles table is checked against the same rows.

Outcomes: ok (2xx, or a redirect that is not to sign-in), login (sent to sign in), deny (403),
hidden (404: the object exists but this user may not know it), token (401: the API wants a token)."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import objects_owned_by
from tests.test_malformed_input import url_patterns

ROLES = ("anonymous", "developer A", "developer B", "support", "manager")
OK, LOGIN, DENY, HIDDEN, TOKEN = "ok", "login", "deny", "hidden", "token"


def row(anonymous, a, b, support, manager):
    return dict(zip(ROLES, (anonymous, a, b, support, manager), strict=True))


EVERYONE = row(OK, OK, OK, OK, OK)
DEVELOPERS = row(LOGIN, OK, OK, OK, DENY)  # onboarding: developers (and support, who helps them)
SUPPORT = row(LOGIN, DENY, DENY, OK, DENY)
STAFF_READ = row(LOGIN, DENY, DENY, OK, OK)
ACCESS = {
    "home": row(LOGIN, OK, OK, OK, OK),
    "healthz": EVERYONE,
    "favicon": EVERYONE,
    "api_status": row(TOKEN, DENY, DENY, OK, OK),
    "accounts:login": EVERYONE,
    "accounts:logout": row(LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),  # signed out, then to the sign-in page
    "accounts:signup": EVERYONE,
    "onboarding:index": DEVELOPERS,
    "onboarding:key": DEVELOPERS,
    "onboarding:key_forget": DEVELOPERS,
    "onboarding:connectivity": DEVELOPERS,
    "onboarding:history": row(LOGIN, OK, OK, OK, OK),
    "onboarding:registration": DEVELOPERS,
    "onboarding:run_picker": DEVELOPERS,  # lists what the user's own saved key sees
    "onboarding:done": DEVELOPERS,  # before a registration: sent on to the step they are at
    # A's registered version, read live with A's key: only A (support cannot borrow a developer's key).
    "onboarding:registered_version": row(LOGIN, OK, HIDDEN, HIDDEN, DENY),
    # A's check: A and staff read it; B is not told it exists.
    "onboarding:check_run": row(LOGIN, OK, HIDDEN, OK, OK),
    "onboarding:check_run_retry": row(LOGIN, OK, DENY, DENY, DENY),
    "onboarding:report_problem": row(LOGIN, OK, DENY, DENY, DENY),
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
    "triage:detail": row(LOGIN, OK, HIDDEN, OK, OK),
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
    "notifications:follow": row(LOGIN, OK, HIDDEN, OK, OK),
    "notifications:unsubscribe": EVERYONE,  # the signed token is the proof (RFC 8058 one-click, no session)
    "notifications:outbox": SUPPORT,
    "webhooks:index": SUPPORT,  # outgoing webhooks: managed by support engineers (and the admin)
    "webhooks:endpoint": SUPPORT,
    "webhooks:endpoint_action": SUPPORT,
    "webhooks:redeliver_range": SUPPORT,
    "webhooks:redeliver_one": SUPPORT,
    "dashboard:index": STAFF_READ,
    "dashboard:csv": STAFF_READ,
}


@pytest.fixture
def world(alice, dave, bob, charlie):
    """Objects owned by developer A (alice): a failed check, the investigation she reported from it, a
    registered version."""
    users = {"anonymous": None, "developer A": alice, "developer B": dave, "support": bob, "manager": charlie}
    return users, objects_owned_by(alice)


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
        kwargs = {}
        if converters:
            (argument,) = converters
            kwargs[argument] = ids.get(name, ids.get(argument))
            assert kwargs[argument] is not None, f"{name} takes <{argument}>: give the matrix an object"
        url = reverse(name, kwargs=kwargs)
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
