"""The ASGI handler's two chains (hokusai_portal/handlers.py, issue 27): a sync view's request crosses from the
event loop to its thread once for the whole middleware chain, not twice per middleware; the requests that wait
(the check page's long poll, the API's `?wait=`) and static files keep Django's async chain. That the waiting
ones hold no thread is proved against the real server in tests/test_check_waiting.py."""

import asyncio

import pytest
from asgiref import sync as asgiref_sync
from django.urls import reverse

from hokusai_portal.handlers import PortalASGIHandler

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


def test_the_check_pages_long_poll_and_the_apis_wait_keep_the_async_chain(app, hops):
    """Anonymous: answered without waiting, but through the chain that can wait (its middleware hop each)."""
    check_page = reverse("onboarding:check_run", args=[1])
    status, _ = ask(app, check_page, "seen=queued", headers=((b"hx-request", b"true"),))
    assert status == 302 and len(hops) > SYNC_CHAIN_HOPS, hops
    hops.clear()
    status, _ = ask(app, check_page, "seen=queued")  # not htmx: the page, at once
    assert status == 302 and len(hops) <= SYNC_CHAIN_HOPS, hops
    hops.clear()
    status, body = ask(app, reverse("api_v1:check", args=[1]), "wait=5")
    assert status == 401 and b"token" in body.lower() and len(hops) > SYNC_CHAIN_HOPS, hops


def test_static_files_are_served_whole_through_the_async_chain(app, hops, settings):
    status, body = ask(app, f"{settings.STATIC_URL}js/portal.js")
    assert status == 200 and b"htmx" in body
