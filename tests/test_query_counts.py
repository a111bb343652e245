"""Queries per check run, per check page render and per poll (issue 27): counted, so that a change that
adds queries to the hottest paths of launch day fails here and says where. When a change removes some,
lower the number."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from onboarding import lifecycle, selectors, services
from onboarding.models import CheckRun, WorkerHeartbeat

# As measured. A check run: the run with its developer, their progress and their key, the claim (2), per step
# one insert conditional on the attempt still holding the run (8 steps: 8), the verdict (1), the first pass
# recorded in the progress (1; a developer's later checks: none). Was 30: a lease guard apart from each insert,
# transactions around single statements, the run and its user read again after the verdict; then 15: the
# run read apart for its attempt and again after the claim, the progress read before its write; then 13: the
# developer's key read apart (issue 27).
CHECK_RUN_QUERIES = 12
# The page: session, user, roles (3), the developer's organization (who else may read the run, 1), the run and
# its steps (2), the wizard (what is done, a key included, and whether the address is verified, for the banner: 1).
# Was 8: the banner's question was a query of its own.
# Was 12: what is done was three queries; then 10: the wizard read the key and the latest run it does not show.
PAGE_QUERIES = 7
# The form's submit: session, user, roles (3), the key it runs with, the organization, the new run (3). Was 12:
# the wizard's whole state was read to show a form the submit does not show, and the new run's (empty)
# enqueue error was cleared.
SUBMIT_QUERIES = 6
# The boosted submit (htmx posts the form): the submit and the page it lands on, in one request: the submit's,
# then how many runs are queued ahead of it, the wizard with the banner's question (the new run's steps: none
# yet, not read; were read: 10; the banner's own query: 9). The redirect and
# the page's GET were SUBMIT_QUERIES + PAGE_QUERIES (the second request's session, user, roles and organization,
# the run read back).
BOOSTED_SUBMIT_QUERIES = 8
# The partial of a finished run: session, user, roles, the organization, the run, its steps.
PARTIAL_QUERIES = 6
# A long poll that finds a change: session, user, roles, the organization, the run (may it wait?), the state
# probe, the run and its steps as they are now.
POLL_QUERIES = 8
# An idle second (no run to touch, no run held): the sweep's probe, each worker's heartbeat. Were 8 and 5: every
# kind of due run looked for apart, the dead workers' rows pruned every second; a locked read of the worker's
# row, its update, the transaction around them and the lease update of no run.
IDLE_SWEEP_QUERIES = 1
IDLE_BEAT_QUERIES = 1
# What a waiting poll costs per look (the WSGI path's every 50 ms; the ASGI path's once per notification).
LONG_POLL_PROBE_QUERIES = 1


def queries_of(call) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        call()
    return [query["sql"] for query in captured.captured_queries]


@pytest.fixture
def passed_run(db, alice, settings, devstack, devstack_keys):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    run = services.connectivity_check_start(user=alice, model_name="")  # in the test's transaction: not queued
    return run


def test_queries_per_check_run(passed_run):
    queries = queries_of(lambda: services.check_run_execute(run_id=passed_run.pk))
    passed_run.refresh_from_db()
    assert passed_run.status == CheckRun.Status.PASSED, passed_run.cause
    assert len(queries) == CHECK_RUN_QUERIES, "\n".join(queries)
    again = services.connectivity_check_start(user=passed_run.user, model_name="")
    queries = queries_of(lambda: services.check_run_execute(run_id=again.pk))
    assert CheckRun.objects.get(pk=again.pk).status == CheckRun.Status.PASSED
    assert len(queries) == CHECK_RUN_QUERIES - 1, "\n".join(queries)  # the first pass is recorded already


def test_queries_per_page_render_and_poll(passed_run, client, alice):
    services.check_run_execute(run_id=passed_run.pk)
    client.force_login(alice)
    url = reverse("onboarding:check_run", args=[passed_run.pk])
    client.get(url)  # the session and the user loaded once, as on any page
    page = queries_of(lambda: client.get(url))
    partial = queries_of(lambda: client.get(url, headers={"HX-Request": "true"}))
    probe = queries_of(lambda: selectors.check_run_state(run_id=passed_run.pk))
    CheckRun.objects.filter(pk=passed_run.pk).update(status=CheckRun.Status.RUNNING)
    poll = queries_of(lambda: client.get(f"{url}?seen=queued.0.0.0", headers={"HX-Request": "true"}))
    assert len(page) == PAGE_QUERIES, "\n".join(page)
    assert len(partial) == PARTIAL_QUERIES, "\n".join(partial)
    assert len(probe) == LONG_POLL_PROBE_QUERIES, "\n".join(probe)
    assert len(poll) == POLL_QUERIES, "\n".join(poll)


def test_queries_per_submit(passed_run, client, alice):
    client.force_login(alice)
    url = reverse("onboarding:connectivity")
    client.get(url)  # the session and the user loaded once, as on any page
    response = None

    def submit():
        nonlocal response
        response = client.post(url, {"model_name": ""})

    queries = queries_of(submit)
    assert response.status_code == 302 and "/onboarding/checks/" in response["Location"]
    assert len(queries) == SUBMIT_QUERIES, "\n".join(queries)


def test_a_long_poll_with_nothing_new_answers_204_and_renders_nothing(passed_run, client, alice, monkeypatch):
    from onboarding import views

    monkeypatch.setattr(views, "LONG_POLL_SECONDS", 0.3)
    CheckRun.objects.filter(pk=passed_run.pk).update(status=CheckRun.Status.RUNNING)
    client.force_login(alice)
    seen = selectors.check_run_state(run_id=passed_run.pk)
    url = reverse("onboarding:check_run", args=[passed_run.pk]) + f"?seen={seen}"
    queries = []
    response = None

    def poll():
        nonlocal response
        response = client.get(url, headers={"HX-Request": "true"})

    queries = queries_of(poll)
    # The page asks again at once (static/js/portal.js); the server rendered nothing and read no steps.
    assert response.status_code == 204 and response.content == b""
    assert not any("onboarding_checkstep" in sql and sql.startswith('SELECT "onboarding_checkstep"') for sql in queries)


def test_submits_share_one_broker_connection(passed_run, monkeypatch):
    """Each submit used to open a broker connection, declare the queue and close it again (~5 % of the web's
    CPU per check): submits now take a pooled producer, so ten of them open at most one connection."""
    from kombu import Connection

    opened = []
    establish = Connection._establish_connection

    def counted(self):
        opened.append(self.as_uri())
        return establish(self)

    monkeypatch.setattr(Connection, "_establish_connection", counted)
    # Not committed (the test's transaction): the worker that receives these finds no run and does nothing.
    assert all(services.check_run_enqueue(run_id=passed_run.pk) for _ in range(10))
    assert len(opened) <= 1, opened


def test_a_boosted_submit_lands_on_the_check_page_in_one_request(passed_run, client, alice):
    """The form as the browser posts it (htmx, boosted): answered with the check page itself and its URL
    pushed, not a redirect and a second request; without htmx the redirect stays (a reload never resubmits)."""
    client.force_login(alice)
    url = reverse("onboarding:connectivity")
    client.get(reverse("onboarding:check_run", args=[passed_run.pk]))  # the status answer cached, as on any page
    response = None

    def submit():
        nonlocal response
        response = client.post(url, {"model_name": ""}, headers={"HX-Request": "true", "HX-Boosted": "true"})

    queries = queries_of(submit)
    run = CheckRun.objects.latest("pk")
    page = response.content.decode()
    assert response.status_code == 200 and response["HX-Push-Url"] == reverse("onboarding:check_run", args=[run.pk])
    assert f"<title>Check #{run.pk}" in page and f'id="run-{run.pk}"' in page and "&amp;w=" in page
    assert "hx-swap-oob" not in page  # the whole body is swapped in: nothing out of band to aim at
    assert len(queries) == BOOSTED_SUBMIT_QUERIES < SUBMIT_QUERIES + PAGE_QUERIES, "\n".join(queries)
    retried = client.post(
        reverse("onboarding:check_run_retry", args=[run.pk]), headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    assert retried.status_code == 200 and retried["HX-Push-Url"] != response["HX-Push-Url"]
    assert client.post(url, {"model_name": ""}).status_code == 302


def test_an_idle_second_costs_the_sweep_one_query_and_each_worker_one(passed_run, monkeypatch):
    """A portal nobody uses still sweeps every second and each worker process beats every second: on launch day
    the database does this all day long, so an idle second is counted too."""
    lifecycle.worker_beat(name="host:1")  # a worker's first beat inserts its row
    monkeypatch.setattr(lifecycle, "_pruned_at", None)
    lifecycle.check_runs_sweep()  # the first sweep prunes the dead workers' rows; later ones not for a minute
    sweep = queries_of(lifecycle.check_runs_sweep)  # passed_run is queued, inside its grace: nothing due
    beat = queries_of(lambda: lifecycle.worker_beat(name="host:1"))
    assert len(sweep) == IDLE_SWEEP_QUERIES, "\n".join(sweep)
    assert len(beat) == IDLE_BEAT_QUERIES, "\n".join(beat)
    assert CheckRun.objects.get(pk=passed_run.pk).status == CheckRun.Status.QUEUED
    assert WorkerHeartbeat.objects.get(name="host:1").beat_at > passed_run.created_at
    # A worker with a run in hand keeps its lease in the same beat: one statement more.
    CheckRun.objects.filter(pk=passed_run.pk).update(status=CheckRun.Status.RUNNING, worker="host:1")
    with lifecycle.lease_kept(passed_run.pk):
        held = queries_of(lambda: lifecycle.worker_beat(name="host:1"))
    assert len(held) == IDLE_BEAT_QUERIES + 1, "\n".join(held)
    assert CheckRun.objects.get(pk=passed_run.pk).heartbeat_at is not None
