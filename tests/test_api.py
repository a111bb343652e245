"""The public API (/api/v1/) as a script with only a token meets it: tokens made on the account page and by
the command, a check started and its verdict read in one long poll (a real Celery worker, the devstack
registry), investigations listed, read and commented, refusals as problem+json."""

import json
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openapi_spec_validator import validate

from accounts.roles import Role
from api import services
from api.models import AccessToken
from onboarding import services as onboarding_services
from onboarding.models import CheckRun
from tests.conftest import key_appears_in_database
from triage import services as triage_services
from triage.models import Investigation, TimelineEvent

PROBLEM = "application/problem+json"


def token_for(user, *scopes: str, days: int | None = None) -> str:
    out = StringIO()
    arguments = ["--user", user.username, "--scopes", ",".join(scopes)]
    call_command("create_access_token", *arguments, *(["--days", str(days)] if days else []), stdout=out)
    return out.getvalue().strip()


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def problem(response, status: int, cause: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["cause"] == cause and body["detail"], body
    return body


# --- tokens ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_command_prints_the_token_alone_and_only_its_hash_is_kept(alice):
    token = token_for(alice, "checks:read")
    assert token.startswith("hkp_") and len(token) == 47 and token.isascii() and "\n" not in token
    assert key_appears_in_database(token) == []  # nowhere in clear text, in any row of any model
    row = AccessToken.objects.get(user=alice)
    assert row.token_hash == services.token_digest(token) and row.hint == token[:8]
    assert row.scopes == ["checks:read"]
    assert timedelta(days=89, hours=23) < row.expires_at - timezone.now() <= timedelta(days=90)


@pytest.mark.django_db
def test_the_command_refuses_what_the_user_may_not_have(alice):
    with pytest.raises(Exception, match="does not allow investigations:write"):
        token_for(alice, "investigations:write")
    with pytest.raises(Exception, match="No such scope"):
        token_for(alice, "checks:everything")
    with pytest.raises(Exception, match="1 to 365 days"):
        token_for(alice, "checks:read", days=400)
    assert not AccessToken.objects.exists()


@pytest.mark.django_db
def test_no_bad_expired_or_revoked_token_is_a_401_problem(client, alice):
    url = reverse("api_v1:checks")
    body = problem(client.get(url), 401, "TOKEN_MISSING")
    assert "Bearer" in body["detail"]
    assert client.get(url)["WWW-Authenticate"].startswith("Bearer")
    problem(client.get(url, HTTP_AUTHORIZATION="Basic YWxpY2U6cHc="), 401, "TOKEN_MISSING")
    problem(client.get(url, **bearer("hkp_" + "x" * 43)), 401, "TOKEN_INVALID")
    problem(client.get(url, **bearer("not-a-token")), 401, "TOKEN_INVALID")
    token = token_for(alice, "checks:read")
    assert client.get(url, **bearer(token)).status_code == 200
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    problem(client.get(url, **bearer(token)), 401, "TOKEN_EXPIRED")
    AccessToken.objects.update(expires_at=timezone.now() + timedelta(days=1))
    services.access_token_revoke(token=AccessToken.objects.get())
    problem(client.get(url, **bearer(token)), 401, "TOKEN_REVOKED")
    # A signed-in session admits no one to the API: only a token does.
    client.force_login(alice)
    problem(client.get(url), 401, "TOKEN_MISSING")


@pytest.mark.django_db
def test_a_token_without_the_scope_gets_a_403_naming_it(client, alice):
    token = token_for(alice, "checks:read")
    body = problem(client.get(reverse("api_v1:investigations"), **bearer(token)), 403, "SCOPE_MISSING")
    assert body["scope"] == "investigations:read" and "investigations:read" in body["detail"]
    body = problem(
        client.post(
            reverse("api_v1:checks_start"), {"kind": "connectivity"}, content_type="application/json", **bearer(token)
        ),
        403,
        "SCOPE_MISSING",
    )
    assert body["scope"] == "checks:run"


@pytest.mark.django_db
def test_a_token_never_does_more_than_its_user_now(client, charlie):
    """The role is checked at each use: a manager's dashboard token stops when they stop being a manager."""
    token = token_for(charlie, "dashboard:read")
    assert client.get(reverse("api_v1:dashboard"), **bearer(token)).status_code == 200
    charlie.groups.remove(Group.objects.get(name=Role.MANAGER.value))
    body = problem(client.get(reverse("api_v1:dashboard"), **bearer(token)), 403, "ROLE_MISSING")
    assert body["scope"] == "dashboard:read"
    charlie.is_active = False
    charlie.save()
    problem(client.get(reverse("api_v1:dashboard"), **bearer(token)), 401, "TOKEN_INVALID")


@pytest.mark.django_db
def test_each_token_has_its_own_rate_with_retry_after(client, alice, dave, settings):
    settings.API_TOKEN_REQUESTS_PER_MINUTE = 3
    token, other = token_for(alice, "checks:read"), token_for(dave, "checks:read")
    for _ in range(3):
        assert client.get(reverse("api_v1:checks"), **bearer(token)).status_code == 200
    refused = client.get(reverse("api_v1:checks"), **bearer(token))
    problem(refused, 429, "RATE_LIMITED")
    assert 1 <= int(refused["Retry-After"]) <= 120
    assert client.get(reverse("api_v1:checks"), **bearer(other)).status_code == 200  # another token: its own count


@pytest.mark.django_db
def test_last_use_time_and_address_are_recorded_and_shown(client, alice):
    token = token_for(alice, "checks:read")
    client.get(reverse("api_v1:checks"), REMOTE_ADDR="192.0.2.7", **bearer(token))
    row = AccessToken.objects.get()
    assert row.last_used_from == "192.0.2.7" and timezone.now() - row.last_used_at < timedelta(seconds=10)
    client.force_login(alice)
    page = client.get(reverse("api:tokens")).content.decode()
    assert "192.0.2.7" in page and token not in page and row.hint in page


@pytest.mark.django_db
def test_a_script_calling_often_writes_its_last_use_once_a_minute(client, alice):
    """The last use is shown to the minute; recording it on each call was a row write per API call."""
    token = token_for(alice, "checks:read")
    client.get(reverse("api_v1:checks"), REMOTE_ADDR="192.0.2.7", **bearer(token))
    first = AccessToken.objects.get().last_used_at

    def updates_of_a_call(address: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("api_v1:checks"), REMOTE_ADDR=address, **bearer(token)).status_code == 200
        return sum(query["sql"].startswith('UPDATE "api_accesstoken"') for query in queries)

    assert updates_of_a_call("192.0.2.7") == 0
    assert AccessToken.objects.get().last_used_at == first
    assert updates_of_a_call("192.0.2.8") == 1  # another address is news at once
    assert AccessToken.objects.get().last_used_from == "192.0.2.8"
    AccessToken.objects.update(last_used_at=timezone.now() - services.LAST_USE_RESOLUTION)
    assert updates_of_a_call("192.0.2.8") == 1  # a minute later, recorded again
    assert timezone.now() - AccessToken.objects.get().last_used_at < timedelta(seconds=10)


@pytest.mark.django_db
def test_the_account_page_shows_a_new_token_once_and_revokes(client, alice, dave):
    client.force_login(alice)
    page = client.get(reverse("api:tokens")).content.decode()
    assert 'value="checks:run"' in page and 'value="dashboard:read"' not in page  # only what the role allows
    assert 'value="90"' in page  # the default expiry
    created = client.post(reverse("api:tokens"), {"name": "CI", "scopes": ["checks:run", "checks:read"], "days": "30"})
    assert created.status_code == 201
    html = created.content.decode()
    plain = html.split('<code id="new-token">', 1)[1].split("</code>", 1)[0]
    assert plain.startswith("hkp_") and services.token_digest(plain) == AccessToken.objects.get().token_hash
    assert plain not in client.get(reverse("api:tokens")).content.decode()  # shown once
    assert client.get(reverse("api_v1:checks"), **bearer(plain)).status_code == 200
    # A scope the role does not allow, posted anyway: refused, nothing made.
    refused = client.post(reverse("api:tokens"), {"name": "x", "scopes": ["investigations:write"], "days": "30"})
    assert refused.status_code == 200 and AccessToken.objects.count() == 1
    assert (
        client.post(reverse("api:tokens"), {"name": "x", "scopes": ["checks:read"], "days": "999"}).status_code == 200
    )
    assert AccessToken.objects.count() == 1
    # Another user cannot revoke it (not told it exists); its owner can.
    token = AccessToken.objects.get()
    other = Client()
    other.force_login(dave)
    assert other.post(reverse("api:token_revoke", args=[token.pk])).status_code == 404
    assert client.post(reverse("api:token_revoke", args=[token.pk])).status_code == 302
    problem(Client().get(reverse("api_v1:checks"), **bearer(plain)), 401, "TOKEN_REVOKED")
    assert "revoked" in client.get(reverse("api:tokens")).content.decode()


# --- the schema, the docs, malformed input -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_schema_is_valid_openapi_3_1_and_the_docs_are_served_from_here(client):
    schema = client.get(reverse("api_v1:openapi-json")).json()
    assert schema["openapi"].startswith("3.1")
    validate(schema)  # openapi-spec-validator
    assert {"/api/v1/checks", "/api/v1/checks/{run_id}", "/api/v1/investigations", "/api/v1/dashboard"} <= set(
        schema["paths"]
    )
    refusal = schema["paths"]["/api/v1/checks"]["get"]["responses"]["403"]["content"]
    assert list(refusal) == [PROBLEM]
    docs = client.get(reverse("api_v1:openapi-view"))
    html = docs.content.decode()
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html  # every asset from this origin
    assert "script-src 'self'" in docs["Content-Security-Policy"]
    for asset in ("ninja/swagger-ui-bundle.js", "ninja/swagger-ui-init.js", "ninja/swagger-ui.css"):
        assert f"/static/{asset}" in html


@pytest.mark.django_db
def test_malformed_bodies_and_fields_are_problems_and_change_nothing(client, bob):
    investigation, _ = triage_services.investigation_create(actor=bob, data={"title": "Broken", "severity": "high"})
    token = token_for(bob, "investigations:read", "investigations:write", "checks:run")
    url = reverse("api_v1:investigation_comments", args=[investigation.number])
    events = TimelineEvent.objects.count()
    problem(client.post(url, "{not json", content_type="application/json", **bearer(token)), 400, "REQUEST_MALFORMED")
    body = problem(
        client.post(url, {"body": "x"}, content_type="application/json", **bearer(token)), 422, "VALIDATION_FAILED"
    )
    assert any(error["loc"][-1] == "visibility" for error in body["errors"])
    nul = {"body": "a\x00b", "visibility": "reply"}
    problem(client.post(url, nul, content_type="application/json", **bearer(token)), 422, "VALIDATION_FAILED")
    blank = {"body": "   ", "visibility": "reply"}
    problem(client.post(url, blank, content_type="application/json", **bearer(token)), 422, "COMMENT_EMPTY")
    problem(
        client.post(url, "q=1", content_type="application/x-www-form-urlencoded; charset=utf-16", **bearer(token)),
        400,
        "REQUEST_MALFORMED",
    )  # the edge middleware: a problem for /api/, the plain text page elsewhere
    problem(client.get(reverse("api_v1:check", args=[10**19]), **bearer(token)), 403, "SCOPE_MISSING")
    assert TimelineEvent.objects.count() == events
    reader = token_for(bob, "checks:read")
    problem(client.get(reverse("api_v1:check", args=[10**19]), **bearer(reader)), 422, "VALIDATION_FAILED")
    problem(client.get(reverse("api_v1:check", args=[987654]), **bearer(reader)), 404, "NOT_FOUND")
    problem(client.get(reverse("api_v1:checks") + "?cursor=cD1hYmM%3D", **bearer(reader)), 422, "VALIDATION_FAILED")
    problem(client.get(reverse("api_v1:checks") + "?cursor=%%%", **bearer(reader)), 422, "VALIDATION_FAILED")
    problem(client.get(reverse("api_v1:check", args=[1]) + "?wait=31", **bearer(reader)), 422, "VALIDATION_FAILED")


# --- investigations -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_support_lists_reads_comments_and_moves_an_investigation(client, alice, dave, bob):
    reported, _ = triage_services.investigation_create(
        actor=bob, data={"title": "LSCOR cannot register", "severity": "critical", "reporter": alice}
    )
    other, _ = triage_services.investigation_create(actor=bob, data={"title": "Another", "severity": "low"})
    token = token_for(bob, "investigations:read", "investigations:write")
    listed = client.get(reverse("api_v1:investigations") + "?severity=critical&status=open", **bearer(token)).json()
    assert [row["number"] for row in listed["results"]] == [reported.number]
    assert listed["results"][0]["url"].endswith(reverse("triage:detail", args=[reported.pk]))
    # Cursor paging: one a page, newest first, every one once.
    first = client.get(reverse("api_v1:investigations") + "?page_size=1", **bearer(token)).json()
    second = client.get(first["next"], **bearer(token)).json()
    assert [first["results"][0]["number"], second["results"][0]["number"]] == [other.number, reported.number]
    assert second["next"] is None
    url = reverse("api_v1:investigation_comments", args=[reported.number])
    reply = client.post(
        url, {"body": "Fixed in 3.17.2", "visibility": "reply"}, content_type="application/json", **bearer(token)
    )
    assert reply.status_code == 201 and reply.json()["internal"] is False
    note = {"body": "key hk_live_" + "A" * 32 + " seen in logs", "visibility": "internal"}
    internal = client.post(url, note, content_type="application/json", **bearer(token))
    assert internal.status_code == 201 and internal.json() | {"id": 0, "created_at": 0} == {
        "id": 0,
        "internal": True,
        "created_at": 0,
        "redactions": 1,
    }
    transitions = reverse("api_v1:investigation_transitions", args=[reported.number])
    skipped = client.post(transitions, {"status": "closed"}, content_type="application/json", **bearer(token))
    assert "Next steps from here" in problem(skipped, 409, "TRANSITION_INVALID")["detail"]
    problem(
        client.post(transitions, {"status": "nonsense"}, content_type="application/json", **bearer(token)),
        422,
        "VALIDATION_FAILED",
    )
    moved = client.post(transitions, {"status": "investigating"}, content_type="application/json", **bearer(token))
    assert moved.status_code == 200 and moved.json()["status"] == "investigating"
    assert Investigation.objects.get(pk=reported.pk).status == "investigating"
    detail = client.get(reverse("api_v1:investigation", args=[reported.number]), **bearer(token)).json()
    assert [e["internal"] for e in detail["timeline"] if e["kind"] == "comment"] == [False, True]
    # What happened is given in codes (scripts read those) beside the words the page shows.
    status = [e for e in detail["timeline"] if e["kind"] == "status"][-1]
    assert (status["old"], status["new"], status["new_text"]) == ("new", "investigating", "Investigating")
    assert status["action_id"]
    # The reporter reads it with the public parts only; another developer is not told it exists.
    mine = token_for(alice, "investigations:read")
    seen = client.get(reverse("api_v1:investigation", args=[str(reported.pk)]), **bearer(mine)).json()
    assert [e["body"] for e in seen["timeline"] if e["kind"] == "comment"] == ["Fixed in 3.17.2"]
    listed = client.get(reverse("api_v1:investigations"), **bearer(mine)).json()["results"]
    assert [row["number"] for row in listed] == [reported.number]
    theirs = token_for(dave, "investigations:read")
    problem(client.get(reverse("api_v1:investigation", args=[reported.number]), **bearer(theirs)), 404, "NOT_FOUND")
    assert client.get(reverse("api_v1:investigations"), **bearer(theirs)).json()["results"] == []


@pytest.mark.django_db
def test_the_dashboard_answers_what_api_status_does(client, charlie, settings):
    settings.STATUS_API_TOKENS = ["s3cret-status-token"]
    legacy = client.get(reverse("api_status"), HTTP_AUTHORIZATION="Bearer s3cret-status-token").json()
    api = client.get(reverse("api_v1:dashboard"), **bearer(token_for(charlie, "dashboard:read"))).json()
    for payload in (legacy, api):
        payload.pop("generated_at")
    assert api == legacy and set(api["open_by_severity"]) == {"critical", "high", "medium", "low"}


# --- checks, end to end -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_check_is_started_and_its_verdict_read_in_one_long_poll(
    live_worker, alice, dave, bob, devstack, devstack_keys, registry_url, published_task_messages
):
    onboarding_services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    token = token_for(alice, "checks:run", "checks:read", "registrations:write")
    client = Client()
    started = client.post(
        reverse("api_v1:checks_start"), {"kind": "connectivity"}, content_type="application/json", **bearer(token)
    )
    assert started.status_code == 202, started.content
    run_id = started.json()["id"]
    assert started.json()["url"].endswith(reverse("onboarding:check_run", args=[run_id]))
    clock = time.monotonic()
    verdict = client.get(started.json()["api_url"] + "?wait=30", **bearer(token)).json()
    waited = time.monotonic() - clock
    assert verdict["finished"] and verdict["status"] == "passed" and verdict["cause"] == "OK", (
        waited,
        verdict,
        CheckRun.objects.values().get(),
    )
    assert waited < 10  # answered when the verdict came, not at the end of the wait
    assert {step["status"] for step in verdict["steps"]} <= {"pass", "skip"} and len(verdict["steps"]) >= 4
    assert all(token not in message for message in published_task_messages)
    print(f"API check: verdict in one long poll after {waited * 1000:.0f} ms")
    # A finished check answers at once, whatever the wait.
    clock = time.monotonic()
    client.get(started.json()["api_url"] + "?wait=30", **bearer(token))
    assert time.monotonic() - clock < 2
    # Registration, as on the page: run with the saved key once connectivity passed.
    registration = {
        "kind": "registration",
        "model_uri": "runs:/0123abc/model",
        "model_name": "LSCOR_Api",
        "token_id": "not valid-",
        "metric_name": "accuracy",
        "baseline_value": "0.9",
    }
    refused = client.post(
        reverse("api_v1:checks_start"), registration, content_type="application/json", **bearer(token)
    )
    assert problem(refused, 422, "TOKEN_ID_INVALID")["errors"][0]["loc"] == ["body", "token_id"]
    registration |= {"model_uri": f"runs:/{devstack.state()['run_id']}/model", "token_id": "LSCOR"}
    registration["extra_tags"] = {"source": "api"}
    queued = client.post(reverse("api_v1:checks_start"), registration, content_type="application/json", **bearer(token))
    assert queued.status_code == 202, queued.content
    registered = client.get(queued.json()["api_url"] + "?wait=30", **bearer(token)).json()
    assert registered["kind"] == "registration" and registered["status"] == "passed", registered
    assert alice.registrations.get().tags["source"] == "api"
    # Another developer: no key saved, told so; nothing queued. They cannot read alice's check.
    other = token_for(dave, "checks:run", "checks:read", "registrations:write")
    problem(
        client.post(
            reverse("api_v1:checks_start"), {"kind": "connectivity"}, content_type="application/json", **bearer(other)
        ),
        409,
        "NO_API_KEY",
    )
    problem(client.get(reverse("api_v1:check", args=[run_id]), **bearer(other)), 404, "NOT_FOUND")
    registration_refused = client.post(
        reverse("api_v1:checks_start"),
        {**registration, "token_id": "LSCOR"},
        content_type="application/json",
        **bearer(other),
    )
    problem(registration_refused, 409, "CONNECTIVITY_NOT_PASSED")
    assert CheckRun.objects.filter(user=dave).count() == 0
    # Support reads every check, as on the page; the list pages with a cursor.
    support = token_for(bob, "checks:read")
    listed = client.get(reverse("api_v1:checks") + "?failed=1", **bearer(support)).json()
    assert listed["results"] == []
    listed = client.get(reverse("api_v1:checks"), **bearer(support)).json()
    assert [run["id"] for run in listed["results"]] == [queued.json()["id"], run_id]  # newest first


@pytest.mark.django_db(transaction=True)
def test_waiting_for_a_check_that_does_not_finish_returns_after_the_wait(alice, settings):
    run = CheckRun.objects.create(
        user=alice, registry_url="http://127.0.0.1:1", key_masked="hk_test_ab…yz", deadline_at=timezone.now()
    )
    token = token_for(alice, "checks:read")
    clock = time.monotonic()
    answer = Client().get(reverse("api_v1:check", args=[run.pk]) + "?wait=1", **bearer(token))
    assert 0.9 < time.monotonic() - clock < 3
    assert answer.json()["finished"] is False and answer.json()["status"] == "queued"
    assert json.loads(answer.content)["steps"] == []


@pytest.mark.django_db
def test_the_admin_revokes_tokens_and_cannot_show_or_make_one(client, alice, admin_user):
    token = token_for(alice, "checks:read")
    client.force_login(admin_user)
    changelist = reverse("admin:api_accesstoken_changelist")
    page = client.get(changelist).content.decode()
    assert AccessToken.objects.get().hint in page and token not in page
    assert client.get(reverse("admin:api_accesstoken_add")).status_code == 403
    row = AccessToken.objects.get()
    client.post(changelist, {"action": "revoke", "_selected_action": [row.pk]})
    problem(Client().get(reverse("api_v1:checks"), **bearer(token)), 401, "TOKEN_REVOKED")
