"""Waiting for a check run to change without holding a thread (issue 27).

`await watcher.changed(seen=..., timeout=...)`, in `async with watching(run_id) as watcher`, returns the
run's state token (see selectors.check_run_state) as soon as it differs from `seen`, or after `timeout`; one
watcher serves a whole long poll (`check_run_changed` for a single wait). Callers: the check page's long
poll (views.check_run) and the API's `?wait=`.

- **PostgreSQL**: the database says when a run changes, and what its state became. Triggers (migrations
  0009_check_run_notify, 0014_check_run_notify_state), deferred to commit, send
  `NOTIFY check_run_state, '<run id>:<state token>'` when a step is saved or the run's status, attempt or
  queue trouble changes. One listening connection per process and event loop (psycopg 3 async) hands each
  notification to the watchers of that run (`async with watching(run_id) as watcher`, then
  `await watcher.changed(seen=..., timeout=...)`): a thousand waiters cost a thousand watchers, no thread,
  and no query while nothing changes nor when something does (the token says what); a watcher asks the
  database at its first look and when a notification leaves it unsure. While the listener is down (database
  restart), waiters fall back to polling.
- **SQLite** (the embedded default): a poll, one indexed query every POLL_SECONDS.

Under Django's ASGI handler every request gets a thread of its own for its synchronous parts (middleware,
the ORM), kept until the request ends. A waiter gives it back first (its database connection closed,
returned to the pool) and the rest of the request gets a fresh one, so an idle waiter holds no thread.
Under WSGI (the sync path, WEB_SERVER=wsgi) the request's thread is held anyway: callers there use
selectors.check_run_wait."""

import asyncio
import contextlib
import logging
import weakref

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.conf import settings
from django.core import signing
from django.db import connections

from . import selectors

log = logging.getLogger(__name__)

CHANNEL = "check_run_state"  # "<run id>:<state token>" (migration 0014)
POLL_SECONDS = 0.25  # SQLite, and PostgreSQL while the listener reconnects
RECONNECT_SECONDS = 1.0


def _postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _conninfo() -> str:
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    params = {
        "dbname": db.get("NAME"),
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "application_name": "portal-check-run-listener",
    }
    # libpq's own options from the URL (sslmode, sslrootcert, ...); not Django's (pool, isolation_level, ...)
    django_only = {"pool", "isolation_level", "server_side_binding", "assume_role", "cursor_factory", "context"}
    params |= {key: value for key, value in db.get("OPTIONS", {}).items() if key not in django_only}
    return make_conninfo(**{key: str(value) for key, value in params.items() if value})


class _Listener:
    """One LISTEN connection for this event loop; each waiter registers a Watcher per run id."""

    def __init__(self) -> None:
        self.waiters: dict[int, set[Watcher]] = {}
        self.connected = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._listen(), name="check-run-listener")

    def subscribe(self, run_id: int, watcher: "Watcher") -> None:
        self.waiters.setdefault(run_id, set()).add(watcher)

    def unsubscribe(self, run_id: int, watcher: "Watcher") -> None:
        waiting = self.waiters.get(run_id)
        if waiting is not None:
            waiting.discard(watcher)
            if not waiting:
                del self.waiters[run_id]

    def _wake(self, run_id: int | None, state: str | None = None) -> None:
        groups = self.waiters.values() if run_id is None else [self.waiters.get(run_id, ())]
        for group in groups:
            for watcher in group:
                watcher.notified(state)

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(_conninfo(), autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self._wake(None)  # what changed while it was away: every waiter looks again
                    async for notify in conn.notifies():
                        run_id, _, state = notify.payload.partition(":")  # "<run id>:<state token>"
                        try:
                            self._wake(int(run_id), state or None)
                        except ValueError:
                            continue
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database restarting: poll meanwhile, then listen again
                log.warning("check run listener: %s; polling until it reconnects", type(error).__name__)
            self.connected.clear()
            self._wake(None)
            await asyncio.sleep(RECONNECT_SECONDS)


_listeners: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Listener]" = weakref.WeakKeyDictionary()


def _listener() -> "_Listener | None":
    """This loop's listener, on PostgreSQL under an ASGI server (a long-lived loop); else None (poll)."""
    if not _postgresql() or not _in_asgi_request():
        return None
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None or listener.task.done():
        listener = _listeners[loop] = _Listener()
    return listener


def _in_asgi_request() -> bool:
    """Inside Django's ASGI handler (a ThreadSensitiveContext with a thread of its own), not nested in
    async_to_sync (WSGI, the test client), whose calling thread is held anyway."""
    return (
        SyncToAsync.thread_sensitive_context.get(None) is not None
        and getattr(AsyncToSync.executors, "current", None) is None
    )


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close()  # with a pool: back to the pool
        del connections[connection.alias]  # a wrapper belongs to its thread: the next thread makes its own


async def release_request_thread() -> None:
    """Give back the thread Django's ASGI handler keeps for this request (see the module's docstring)."""
    if not _in_asgi_request():
        return
    context = SyncToAsync.thread_sensitive_context.get()
    if context not in SyncToAsync.context_to_thread_executor:
        return
    await sync_to_async(_close_connections)()
    executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)  # its idle thread ends; a later sync call gets a new one


def _state_now(run_id: int) -> str:
    try:
        return selectors.check_run_state(run_id=run_id)
    finally:
        _close_connections()


async def _state(run_id: int) -> str:
    # On a shared pool thread, not the request's (given back), its connection closed after.
    return await sync_to_async(_state_now, thread_sensitive=False)(run_id)


class Watcher:
    """One waiter's view of one run, subscribed for as long as it is open (`watching`): the state token the
    latest notification carried. A notification says what the run's state became (migration
    0014_check_run_notify_state), so a waiter woken by it needs no query to know; it asks the database only
    at the start, where a notification carried no state (the listener reconnecting), where polling (SQLite,
    the listener down), and where a notification claims the state it already has (a notification computed
    before a concurrent change committed: the database is then the judge)."""

    def __init__(self, run_id: int, listener: "_Listener | None") -> None:
        self.run_id = run_id
        self.listener = listener
        self.state: str | None = None  # the latest known; None: ask the database
        self._woken = asyncio.Event()
        self._latest: str | None = None  # the state the latest notification carried since the last look
        self._must_ask = False  # a notification without a state came since the last look

    def notified(self, state: str | None) -> None:
        if state is None:
            self._must_ask = True
        elif self._latest is not None and selectors.check_run_state_is_final(self._latest):
            if state != self._latest:
                self._must_ask = True  # a verdict, then something else: the database says which is last
        else:
            self._latest = state
        self._woken.set()

    def _take(self) -> str | None:
        """What the notifications since the last look say the state is; None: ask the database."""
        latest = None if self._must_ask else self._latest
        self._woken.clear()
        self._latest, self._must_ask = None, False
        return latest

    async def changed(self, *, seen: str, timeout: float) -> str:
        """The run's state token once it differs from `seen`, or after `timeout` seconds (then the same)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        state = self.state if self.state is not None else await _state(self.run_id)
        while state == seen and (remaining := deadline - loop.time()) > 0:
            if self.listener is not None and self.listener.connected.is_set():
                try:
                    await asyncio.wait_for(self._woken.wait(), remaining)
                except TimeoutError:
                    break
                notified = self._take()
                state = notified if notified is not None and notified != seen else await _state(self.run_id)
            else:
                await asyncio.sleep(min(POLL_SECONDS, remaining))
                state = await _state(self.run_id)
        self.state = state
        return state


@contextlib.asynccontextmanager
async def watching(run_id: int):
    """A Watcher of the run, subscribed before its first look (a change committed between that look and the
    wait still wakes it), its request's thread given back first (see the module's docstring)."""
    await release_request_thread()
    listener = _listener()
    watcher = Watcher(run_id, listener)
    if listener is not None:
        listener.subscribe(run_id, watcher)
    try:
        yield watcher
    finally:
        if listener is not None:
            listener.unsubscribe(run_id, watcher)


# A check page's long poll carries a token its render signed: this session may watch this run. The poll then
# waits before any middleware (hokusai_portal/handlers.py): no session read, no query, no thread until the run
# changes; what it is then answered goes through the whole chain and its authorisation, as any request. The
# token binds the run to the session cookie; it lasts WATCH_TOKEN_SECONDS (each render signs a new one, so only
# a page whose run stayed unchanged that long is answered at once, and its next poll waits again).
WATCH_TOKEN_SECONDS = 15 * 60
_WATCH_SALT = "onboarding.waiting.watch"


def _watch_value(request, run_id: int) -> str:
    return f"{run_id}:{request.COOKIES.get(settings.SESSION_COOKIE_NAME, '')}"


def watch_token(request, run_id: int) -> str:
    """`<timestamp>:<signature>` (the session cookie itself stays out of the URL: it is signed, not sent)."""
    value = _watch_value(request, run_id)
    return signing.TimestampSigner(salt=_WATCH_SALT).sign(value).removeprefix(value + ":")


def watch_token_valid(request, run_id: int) -> bool:
    """Whether the request's `w` is a token signed for this run and this request's session cookie."""
    token = request.GET.get("w", "")
    if not token or len(token) > 100 or settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    try:
        signing.TimestampSigner(salt=_WATCH_SALT).unsign(
            f"{_watch_value(request, run_id)}:{token}", max_age=WATCH_TOKEN_SECONDS
        )
    except signing.BadSignature:  # SignatureExpired included
        return False
    return True


async def check_run_changed(run_id: int, *, seen: str, timeout: float) -> str:
    """The run's state token once it differs from `seen`, or after `timeout` seconds (then the same)."""
    async with watching(run_id) as watcher:
        return await watcher.changed(seen=seen, timeout=timeout)
