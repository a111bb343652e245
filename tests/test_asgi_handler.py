"""The ASGI handler's two chains (hokusai_portal/handlers.py, issue 27): a sync view's request crosses from the
event loop to its thread once for the whole middleware chain, not twice per middleware; the requests that wait
(the check page's long poll, the API's `?wait=`) and static files keep Django's async chain. That the waiting
ones hold no thread is proved against the real server in tests/test_check_waiting.py."""

import asyncio

import pytest
from asgiref import sync as asgiref_sync
from django.urls import reverse

from hokusai_portal.handlers import PortalASGIHandler
from onboarding.models import CheckRun

# The sync chain: request_started's receivers, the chain, response.close() (request_finished): one hop each.
SYNC_CHAIN_HOPS = 3


async def _ask(app, path: str, query: str = "", headers: tuple = ()) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    received = False

    async def receive():
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected

    answer = {"status": None, "body": b""}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    """Each crossing from the event loop to a thread (asgiref's SyncToAsync), by the function it runs."""
    crossed = []
    call = asgiref_sync.SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        crossed.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(asgiref_sync.SyncToAsync, "__call__", counted)
    return crossed


@pytest.fixture
def app(db):
    return PortalASGIHandler()


def ask(app, *args, **kwargs) -> tuple[int, bytes]:
    return asyncio.run(_ask(app, *args, **kwargs))


@pytest.mark.parametrize(
    "path",
    [
        reverse("account_login"),  # a sync view
        reverse("onboarding:check_run", args=[1]),  # an async view, answered at once: its sync view
        "/no-such-page/",  # the 404 page
    ],
)
def test_a_request_that_does_not_wait_crosses_to_its_thread_once_for_all_the_middleware(app, hops, path):
    status, _ = ask(app, path)
    assert status in (200, 302, 404)
    assert len(hops) <= SYNC_CHAIN_HOPS, hops


def test_the_check_pages_long_poll_takes_no_async_chain_and_the_apis_wait_keeps_it(app, hops):
    """A long poll without its render's token (anonymous here): answered at once, through the sync chain."""
    check_page = reverse("onboarding:check_run", args=[1])
    status, _ = ask(app, check_page, "seen=queued", headers=((b"hx-request", b"true"),))
    assert status == 302 and len(hops) <= SYNC_CHAIN_HOPS, hops
    hops.clear()
    status, _ = ask(app, check_page, "seen=queued")  # not htmx: the page, at once
    assert status == 302 and len(hops) <= SYNC_CHAIN_HOPS, hops
    hops.clear()
    status, body = ask(app, reverse("api_v1:check", args=[1]), "wait=5")
    assert status == 401 and b"token" in body.lower() and len(hops) > SYNC_CHAIN_HOPS, hops


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_with_its_token_looks_on_the_loop_then_crosses_once_for_the_chain(hops, alice):
    """The token its render signed lets a poll wait before any middleware (onboarding.views.check_run_watch):
    the request's thread given back, one look at the run (a pool thread), then, the run having changed, the sync chain in one hop. Without the
    token (or with another session's, or another run's) it is answered at once, as the chain decides."""
    import re
    from html import unescape

    from django.test import Client

    from tests.conftest import objects_owned_by

    app = PortalASGIHandler()
    client = Client()
    client.force_login(alice)
    cookie = client.cookies["sessionid"].value
    run_id = objects_owned_by(alice)["run_id"]
    CheckRun.objects.filter(pk=run_id).update(status=CheckRun.Status.RUNNING)
    partial = client.get(reverse("onboarding:check_run", args=[run_id]), headers={"HX-Request": "true"})
    poll = unescape(re.search(r'hx-get="([^"]+)"', partial.content.decode())[1])
    path, query = poll.split("?")
    assert "&w=" in f"&{query}"
    headers = ((b"hx-request", b"true"), (b"cookie", f"sessionid={cookie}".encode()))
    CheckRun.objects.filter(pk=run_id).update(status=CheckRun.Status.PASSED)  # changed since the render
    hops.clear()
    status, body = ask(app, path, query, headers=headers)
    assert status == 286 and b'data-status="passed"' in body
    # The sync chain's hops, the request's thread given back before the wait, the look: no middleware's own.
    assert hops.count("BaseHandler.get_response") == 1 and len(hops) <= SYNC_CHAIN_HOPS + 2, hops
    # Another run's token, or the right token with another session, is not trusted: answered at once.
    other = Client()
    other.force_login(alice)
    for cookie_of, on_path in ((other.cookies["sessionid"].value, path), (cookie, path.replace(str(run_id), "99999"))):
        hops.clear()
        headers = ((b"hx-request", b"true"), (b"cookie", f"sessionid={cookie_of}".encode()))
        status, _ = ask(app, on_path, query, headers=headers)
        assert status in (286, 404) and not any("_state_now" in hop for hop in hops), hops


def test_static_files_are_served_whole_through_the_async_chain(app, hops, settings):
    status, body = ask(app, f"{settings.STATIC_URL}js/portal.js")
    assert status == 200 and b"htmx" in body
