"""The API's authorization matrix, generated from its routes (the OpenAPI schema ninja builds from them):
every operation × no token, a bad, an expired and a revoked token (401, each with its cause), × a token with
every scope but the one it needs (403 naming it), × each role with every scope that role may hold (as
ROLES_EXPECT says). An operation with no row in OPERATIONS fails the test: a new route cannot ship
without a decision on its scope and who may use it."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api import services
from api.endpoints import api
from api.models import AccessToken
from api.scopes import SCOPES, scopes_allowed
from tests.conftest import objects_owned_by

ROLES = ("developer A", "developer B", "support", "manager")


def expect(a, b, support, manager) -> dict[str, int]:
    return dict(zip(ROLES, (a, b, support, manager), strict=True))


# (method, path) -> the variants to call: (scope it needs, JSON body, status per role). Developer A owns the
# objects addressed (a check, the investigation they reported); nobody has a saved API key, so starting a
# check answers 409 NO_API_KEY (or 409 CONNECTIVITY_NOT_PASSED) once authorized: nothing is queued.
REGISTRATION = {
    "kind": "registration",
    "model_uri": "runs:/abc/model",
    "model_name": "M",
    "token_id": "T",
    "metric_name": "accuracy",
    "baseline_value": "0.9",
}
OPERATIONS = {
    ("post", "/api/v1/checks"): [
        ("checks:run", {"kind": "connectivity"}, expect(409, 409, 409, 403)),
        ("registrations:write", REGISTRATION, expect(409, 409, 409, 403)),
    ],
    ("get", "/api/v1/checks"): [("checks:read", None, expect(200, 200, 200, 200))],
    ("get", "/api/v1/checks/{run_id}"): [("checks:read", None, expect(200, 404, 200, 200))],
    ("get", "/api/v1/investigations"): [("investigations:read", None, expect(200, 200, 200, 200))],
    ("get", "/api/v1/investigations/{number}"): [("investigations:read", None, expect(200, 404, 200, 200))],
    ("post", "/api/v1/investigations/{number}/comments"): [
        ("investigations:write", {"body": "Looking", "visibility": "reply"}, expect(403, 403, 201, 403))
    ],
    ("post", "/api/v1/investigations/{number}/transitions"): [
        ("investigations:write", {"status": "investigating"}, expect(403, 403, 200, 403))
    ],
    ("get", "/api/v1/dashboard"): [("dashboard:read", None, expect(403, 403, 200, 200))],
}


def routes() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return sorted((method, path) for path, item in schema["paths"].items() for method in item)


def test_every_route_of_the_api_has_a_row():
    assert sorted(OPERATIONS) == routes(), "a route with no row in OPERATIONS, or a row for a route that is gone"
    for variants in OPERATIONS.values():
        assert all(scope in SCOPES for scope, _, _ in variants)


@pytest.fixture
def world(alice, dave, bob, charlie):
    users = {"developer A": alice, "developer B": dave, "support": bob, "manager": charlie}
    ids = objects_owned_by(alice)
    return users, {"run_id": ids["run_id"], "number": f"INV-{ids['number']}"}


def call(method: str, path: str, ids: dict, body, token: str | None):
    url = path.format(**ids)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    client = Client()
    if method == "get":
        return client.get(url, **headers)
    return client.post(url, body or {}, content_type="application/json", **headers)


def made(user, scopes: list[str], **changes) -> str:
    token, plain = services.access_token_create(user=user, name="matrix", scopes=scopes)
    if changes:
        AccessToken.objects.filter(pk=token.pk).update(**changes)
    return plain


@pytest.mark.django_db
def test_every_route_x_token_x_scope_x_role(world, settings):
    settings.API_TOKEN_REQUESTS_PER_MINUTE = 10_000
    users, ids = world
    support = users["support"]
    every_scope = list(SCOPES)
    refused_tokens = {
        "TOKEN_MISSING": None,
        "TOKEN_INVALID": "hkp_" + "0" * 43,
        "TOKEN_EXPIRED": made(support, every_scope, expires_at=timezone.now() - timedelta(minutes=1)),
        "TOKEN_REVOKED": made(support, every_scope, revoked_at=timezone.now()),
    }
    role_tokens = {role: made(user, scopes_allowed(user)) for role, user in users.items()}
    wrong, cells = [], 0
    for (method, path), variants in OPERATIONS.items():
        for scope, body, per_role in variants:
            for cause, token in refused_tokens.items():
                answer = call(method, path, ids, body, token)
                cells += 1
                if answer.status_code != 401 or answer.json().get("cause") != cause:
                    wrong.append(f"{method} {path} with {cause}: {answer.status_code} {answer.content[:120]}")
            # Every scope but this one, held by support (who may hold them all): 403 naming it.
            answer = call(method, path, ids, body, made(support, [s for s in every_scope if s != scope]))
            cells += 1
            if answer.status_code != 403 or answer.json().get("scope") != scope:
                wrong.append(f"{method} {path} without {scope}: {answer.status_code} {answer.content[:120]}")
            for role, token in role_tokens.items():
                answer = call(method, path, ids, body, token)
                cells += 1
                if answer.status_code != per_role[role]:
                    wrong.append(
                        f"{method} {path} ({scope}) as {role}: expected {per_role[role]}, got {answer.status_code}"
                    )
                if answer.status_code >= 400 and answer["Content-Type"] != "application/problem+json":
                    wrong.append(f"{method} {path} as {role}: a {answer.status_code} that is not problem+json")
    assert not wrong, "\n".join(wrong)
    print(f"API token matrix: {len(OPERATIONS)} routes, {cells} cells")
