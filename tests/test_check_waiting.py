"""The check page's long poll on the ASGI path (issue 27): a real gunicorn with uvicorn workers, as `make run`
and `make production` start it, serving the test database. Watchers wait without a thread each, get the
step and the verdict as soon as they are saved, and a browser with JavaScript off still ends on the verdict."""

import asyncio
import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.test import Client
from django.utils import timezone

from hokusai_portal import supervise
from onboarding import selectors, views
from onboarding.diagnosis import StepStatus
from onboarding.models import CheckRun, CheckStep
from tests.conftest import ROOT, database_url_for_worker, free_port
from tests.test_api import token_for

pytestmark = pytest.mark.slow


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M)[1])


async def threads_once_waiting(pid: int, below: int = 40, within: float = 20) -> int:
    """The web process's threads once the requests are waiting. Each request holds a thread while its
    middleware and authorisation run, so on a loaded machine a burst of them takes a few seconds to reach
    the wait; a request that held its thread while waiting would keep the count up for the whole wait."""
    deadline = time.monotonic() + within
    while threads_of(pid) >= below and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)  # settled: the stragglers are waiting too
    return threads_of(pid)


@pytest.fixture
def step_render_ms() -> str:
    """The server's CHECK_STEP_RENDER_MS (its default); a test parametrizes it to see the pacing clearly."""
    return "250"


@pytest.fixture
def asgi_server(transactional_db, tmp_path, step_render_ms):
    """gunicorn + one uvicorn worker on hokusai_portal.asgi, as supervise.py starts the web."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_worker(),
        "WEB_SERVER": "asgi",
        "DEBUG": "0",
        "CHECK_STEP_RENDER_MS": step_render_ms,
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), *supervise.web_server()]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--graceful-timeout", "2"]
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/accounts/login/", timeout=2)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail((tmp_path / "gunicorn.log").read_text())
            time.sleep(0.2)
    yield url, process
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def long_poll(url: str, path: str, cookie: str, timeout: float = 30) -> tuple[int, str, float]:
    """One htmx long poll over a raw HTTP/1.1 connection: (status, body, the monotonic time it ended)."""
    return await raw_get(url, path, f"HX-Request: true\r\nCookie: sessionid={cookie}\r\n", timeout)


async def raw_get(url: str, path: str, headers: str, timeout: float = 30) -> tuple[int, str, float]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}Connection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout)
    ended = time.monotonic()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), (body or head).decode(errors="replace"), ended


def poll_of(url: str, run: CheckRun, cookie: str) -> str:
    """The long poll the page's render asks (its `seen`, `at` and `w`, the token that lets it wait before any
    middleware), as htmx would."""
    partial = requests.get(
        f"{url}/onboarding/checks/{run.pk}/", headers={"HX-Request": "true"}, cookies={"sessionid": cookie}, timeout=10
    ).text
    return html.unescape(re.search(r'hx-get="([^"]+)"', partial)[1])


def run_for(user) -> CheckRun:
    return CheckRun.objects.create(
        user=user, status=CheckRun.Status.RUNNING, registry_url="http://registry.test", deadline_at=timezone.now()
    )


def test_watchers_hold_no_thread_and_get_the_step_and_the_verdict_as_saved(asgi_server, alice):
    url, master = asgi_server
    cookie = session_cookie(alice)
    run = run_for(alice)
    path = poll_of(url, run, cookie)
    assert f"seen={selectors.check_run_state(run_id=run.pk)}" in path
    [worker] = worker_pids(master.pid)
    watchers = 200

    async def watch() -> tuple[list, float, int]:
        tasks = [asyncio.create_task(long_poll(url, path, cookie)) for _ in range(watchers)]
        await asyncio.sleep(3)  # every watcher connected, authorised and waiting
        early = [task.result()[:2] for task in tasks if task.done()]
        assert not early, f"a long poll returned with nothing changed: {early[:1]}"
        threads_while_waiting = await threads_once_waiting(worker)
        saved = time.monotonic()
        # What the worker saves: a step (its own commit), each watcher is told at once.
        await asyncio.to_thread(
            CheckStep.objects.create,
            run=run,
            position=1,
            name="dns",
            title="DNS",
            status=StepStatus.PASS,
            cause="OK",
            message="registry.test resolves.",
        )
        return await asyncio.gather(*tasks), saved, threads_while_waiting

    answers, saved, threads_while_waiting = asyncio.run(watch())
    # 200 pages waiting, and the web process has a handful of threads (uvicorn's, the pool's): not one each.
    assert threads_while_waiting < 40, threads_while_waiting
    assert all(status == 200 and 'data-step="dns"' in body for status, body, _ in answers)
    delays = sorted(ended - saved for _, _, ended in answers)
    assert delays[-1] < views.LONG_POLL_SECONDS / 4, delays[-1]  # told by the save, not by the timeout

    # The verdict: the next long poll (with the new state) answers 286 (htmx stops) with it.
    poll = html.unescape(re.search(r'hx-get="([^"]+)"', answers[0][1])[1])

    def verdict_later():
        time.sleep(0.5)
        CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.PASSED)

    threading.Thread(target=verdict_later).start()
    started = time.monotonic()
    status, body, ended = asyncio.run(long_poll(url, poll, cookie))
    assert status == 286 and 'data-status="passed"' in body and "Check passed" in body
    assert 0.4 < ended - started < views.LONG_POLL_SECONDS / 4


def save_step(run: CheckRun, position: int, name: str) -> None:
    CheckStep.objects.create(
        run=run, position=position, name=name, title=name, status=StepStatus.PASS, cause="OK", message="ok"
    )


@pytest.mark.parametrize("step_render_ms", ["3000"])
def test_steps_saved_together_reach_the_page_in_one_render_and_the_verdict_is_not_held(asgi_server, alice):
    """A running check's page is answered no sooner than CHECK_STEP_RENDER_MS after the render it polls from:
    three steps saved 0.1 s apart arrive in one render (each render a page does not need is web CPU); a
    verdict ends the pause at once."""
    url, _ = asgi_server
    cookie = session_cookie(alice)
    run = run_for(alice)
    poll = poll_of(url, run, cookie)
    assert "&at=" in poll  # the page asks from the time of its render
    # A time that is not one (the client writes the URL it polls) is read as "no pause", never a 500.
    absurd = re.sub(
        r"&at=\d+", f"&at=-{'9' * 400}", poll.replace(selectors.check_run_state(run_id=run.pk), "queued.0.0.0")
    )
    status, body, _ = asyncio.run(long_poll(url, absurd, cookie))
    assert status == 200 and 'data-status="running"' in body

    def three_steps():
        for position, name in enumerate(["key_format", "dns", "tcp"], start=1):
            time.sleep(0.1)
            save_step(run, position, name)

    threading.Thread(target=three_steps).start()
    status, body, _ = asyncio.run(long_poll(url, poll, cookie))
    assert status == 200 and body.count("data-step=") == 3, body[-1500:]

    def a_step_then_the_verdict():
        time.sleep(0.1)
        save_step(run, 4, "identity")
        time.sleep(0.1)
        CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.PASSED)

    poll = html.unescape(re.search(r'hx-get="([^"]+)"', body)[1])
    threading.Thread(target=a_step_then_the_verdict).start()
    started = time.monotonic()
    status, body, ended = asyncio.run(long_poll(url, poll, cookie))
    assert status == 286 and 'data-status="passed"' in body and body.count("data-step=") == 4
    assert ended - started < 2, ended - started  # not held for the 3 s: the verdict ended the pause


def test_api_waits_hold_no_thread_and_answer_with_the_verdict_as_saved(asgi_server, alice):
    """`GET /api/v1/checks/{id}?wait=30` (a CI job waiting for its check) waits as the page does: no thread."""
    url, master = asgi_server
    token = token_for(alice, "checks:read")
    run = run_for(alice)
    [worker] = worker_pids(master.pid)
    waiters = 100
    path = f"/api/v1/checks/{run.pk}?wait=30"

    async def wait() -> tuple[list, float, int]:
        tasks = [
            asyncio.create_task(raw_get(url, path, f"Authorization: Bearer {token}\r\n", timeout=40))
            for _ in range(waiters)
        ]
        await asyncio.sleep(3)  # every wait authorised and waiting
        threads_while_waiting = await threads_once_waiting(worker)
        # A step saved is no verdict: the waits go on.
        await asyncio.to_thread(
            CheckStep.objects.create,
            run=run,
            position=1,
            name="dns",
            title="DNS",
            status=StepStatus.PASS,
            cause="OK",
            message="registry.test resolves.",
        )
        await asyncio.sleep(1)
        early = [task.result()[:2] for task in tasks if task.done()]
        assert not early, f"a wait returned before the verdict: {early[:1]}"
        saved = time.monotonic()
        await asyncio.to_thread(CheckRun.objects.filter(pk=run.pk).update, status=CheckRun.Status.PASSED)
        return await asyncio.gather(*tasks), saved, threads_while_waiting

    answers, saved, threads_while_waiting = asyncio.run(wait())
    assert threads_while_waiting < 40, threads_while_waiting  # 100 waits, a handful of threads: not one each
    for status, body, _ in answers:
        assert status == 200, body
        verdict = json.loads(body)
        assert verdict["finished"] and verdict["status"] == "passed", verdict
        assert [step["name"] for step in verdict["steps"]] == ["dns"]
    delays = sorted(ended - saved for _, _, ended in answers)
    assert delays[-1] < 5, delays[-1]  # told by the save, not by the end of the 30 s wait
    print(
        f"API waits: {waiters} held with {threads_while_waiting} threads; verdict p50 "
        f"{delays[len(delays) // 2] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms after the save"
    )


def test_another_developers_watcher_waits_for_nothing(asgi_server, alice, dave):
    """Neither with no token, nor with the token of dave's own page (another session's), nor with one of
    alice's for another run: the poll is answered at once, by the chain, which says 404."""
    url, _ = asgi_server
    run = run_for(dave)
    seen = selectors.check_run_state(run_id=run.pk)
    daves_poll = poll_of(url, run, session_cookie(dave))
    alices_poll = poll_of(url, run_for(alice), cookie := session_cookie(alice))
    alices_token_on_daves_run = re.sub(r"/checks/\d+/", f"/checks/{run.pk}/", alices_poll)
    for path in (f"/onboarding/checks/{run.pk}/?seen={seen}", daves_poll, alices_token_on_daves_run):
        started = time.monotonic()
        status, _, ended = asyncio.run(long_poll(url, path, cookie))
        assert status == 404 and ended - started < 5, path


def test_a_poll_without_its_token_is_answered_at_once_and_the_next_one_waits(asgi_server, alice):
    """A page of the version before (its poll carries no `w`), or a token expired: answered at once with the
    run as it is, whose poll carries a fresh token and waits (nothing lost across a deploy)."""
    url, _ = asgi_server
    cookie = session_cookie(alice)
    run = run_for(alice)
    seen = selectors.check_run_state(run_id=run.pk)
    status, body, _ = asyncio.run(long_poll(url, f"/onboarding/checks/{run.pk}/?seen={seen}", cookie))
    assert status == 200 and 'data-status="running"' in body
    poll = html.unescape(re.search(r'hx-get="([^"]+)"', body)[1])
    assert "&w=" in poll

    async def waits() -> bool:
        task = asyncio.create_task(long_poll(url, poll, cookie))
        await asyncio.sleep(2)
        waited = not task.done()
        await asyncio.to_thread(CheckRun.objects.filter(pk=run.pk).update, status=CheckRun.Status.PASSED)
        status, body, _ = await task
        return waited and status == 286 and 'data-status="passed"' in body

    assert asyncio.run(waits())


def test_javascript_off_the_page_refreshes_itself_until_the_verdict(asgi_server, alice, browser):
    url, _ = asgi_server
    run = run_for(alice)
    context = browser.new_context(java_script_enabled=False)
    context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": url}])
    page = context.new_page()
    page.goto(f"{url}/onboarding/checks/{run.pk}/")
    assert page.locator("[data-testid=run-state]").text_content() == "Running"
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.FAILED, cause="DNS_NXDOMAIN")
    page.locator("[data-testid=run-state]", has_text="Failed").wait_for(timeout=10_000)
    assert "DNS_NXDOMAIN" in page.content()
    # The verdict's page stops refreshing.
    assert 'http-equiv="refresh"' not in page.content()


def test_a_browser_sees_every_step_and_the_verdict_arrive_over_the_asgi_path(asgi_server, alice, browser):
    url, _ = asgi_server
    run = run_for(alice)
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": url}])
    page = context.new_page()
    page.goto(f"{url}/onboarding/checks/{run.pk}/")
    steps = page.locator(f"#run-{run.pk} [data-step]")
    for position, name in enumerate(["key_format", "dns", "tcp"], start=1):
        CheckStep.objects.create(
            run=run, position=position, name=name, title=name, status=StepStatus.PASS, cause="OK", message="ok"
        )
        page.locator(f'#run-{run.pk} [data-step="{name}"]').wait_for(timeout=5_000)  # pushed, not reloaded
        assert steps.count() == position
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.PASSED)
    page.locator("[data-testid=run-state]", has_text="Passed").wait_for(timeout=5_000)
    assert page.locator(f"#run-live-{run.pk}").text_content().startswith("Check passed")


def test_a_watcher_knows_each_new_state_from_its_notification_without_asking_the_database(
    transactional_db, alice, monkeypatch
):
    """A notification carries the state the run became (migration 0014): a waiting page asks the database
    once, when it starts, not once per step saved (each look was a thread hop and a query in the web, ~10 a
    check). A notification without a state (the triggers of a version before, during a deploy) still wakes
    it, and it asks."""
    from django.db import connection

    from onboarding import waiting

    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; the embedded SQLite set polls")
    run = run_for(alice)
    looks = []
    ask = waiting._state

    async def counted(run_id):
        looks.append(run_id)
        return await ask(run_id)

    monkeypatch.setattr(waiting, "_state", counted)

    async def watch() -> list[tuple[str, str]]:
        listener = waiting._Listener()
        await asyncio.wait_for(listener.connected.wait(), 10)
        watcher = waiting.Watcher(run.pk, listener)
        listener.subscribe(run.pk, watcher)
        seen = await watcher.changed(seen="", timeout=5)  # the first look asks
        told = []
        for position, name in enumerate(["key_format", "dns", "tcp"], start=1):
            await asyncio.to_thread(save_step, run, position, name)
            seen = await watcher.changed(seen=seen, timeout=5)
            told.append((seen, await asyncio.to_thread(selectors.check_run_state, run_id=run.pk)))
        await asyncio.to_thread(CheckRun.objects.filter(pk=run.pk).update, status=CheckRun.Status.PASSED)
        seen = await watcher.changed(seen=seen, timeout=5)
        told.append((seen, await asyncio.to_thread(selectors.check_run_state, run_id=run.pk)))
        assert len(looks) == 1, looks
        # A notification of the run id alone: the watcher asks.
        await asyncio.to_thread(_notify, f"{run.pk}")
        await asyncio.to_thread(CheckRun.objects.filter(pk=run.pk).update, status=CheckRun.Status.FAILED)
        told.append((await watcher.changed(seen=seen, timeout=5), "failed.3.0.0"))
        listener.task.cancel()
        return told

    told = asyncio.run(watch())
    assert [state for state, _ in told] == [truth for _, truth in told]
    assert told[-2][0] == "passed.3.0.0" and len(looks) >= 2


def _notify(payload: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify('check_run_state', %s)", [payload])
