"""Waiting for a check run to change without holding a thread (issue 27).

`await check_run_changed(run_id, seen=..., timeout=...)` returns the run's state token (see
selectors.check_run_state) as soon as it differs from `seen`, or after `timeout`. Callers: the check page's
long poll (views.check_run) and, later, the API's `?wait=`.

- **PostgreSQL**: the database says when a run changes. Triggers (migration 0009_check_run_notify) send
  `NOTIFY check_run_changed, '<run id>'` when a step is saved or the run's status, attempt or queue trouble
  changes; the notification is delivered at commit, so what woke a waiter is visible to its next query.
  One listening connection per process and event loop (psycopg 3 async) fans each notification out to
  the waiters of that run: a thousand waiters cost a thousand futures, no thread and no query while
  nothing changes. While the listener is down (database restart), waiters fall back to polling.
- **SQLite** (the embedded default): a poll, one indexed query every POLL_SECONDS.

Under Django's ASGI handler every request gets a thread of its own for its synchronous parts (middleware,
the ORM), kept until the request ends. A waiter gives it back first (its database connection closed,
returned to the pool) and the rest of the request gets a fresh one, so an idle waiter holds no thread.
Under WSGI (the sync path, WEB_SERVER=wsgi) the request's thread is held anyway: callers there use
selectors.check_run_wait."""

import asyncio
import logging
import weakref

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections

from . import selectors

log = logging.getLogger(__name__)

CHANNEL = "check_run_changed"
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
    """One LISTEN connection for this event loop; waiters register a future per run id."""

    def __init__(self) -> None:
        self.waiters: dict[int, set[asyncio.Future]] = {}
        self.connected = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._listen(), name="check-run-listener")

    def subscribe(self, run_id: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(run_id, set()).add(future)
        return future

    def unsubscribe(self, run_id: int, future: asyncio.Future) -> None:
        waiting = self.waiters.get(run_id)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self.waiters[run_id]

    def _wake(self, run_id: int | None) -> None:
        groups = self.waiters.values() if run_id is None else [self.waiters.get(run_id, ())]
        for group in groups:
            for future in group:
                if not future.done():
                    future.set_result(None)

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(_conninfo(), autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self._wake(None)  # what changed while it was away: every waiter looks again
                    async for notify in conn.notifies():
                        try:
                            self._wake(int(notify.payload))
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


async def check_run_changed(run_id: int, *, seen: str, timeout: float) -> str:
    """The run's state token once it differs from `seen`, or after `timeout` seconds (then the same)."""
    await release_request_thread()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    listener = _listener()
    while True:
        # Subscribe before reading: a change committed between the read and the wait still wakes it.
        future = listener.subscribe(run_id) if listener else None
        try:
            state = await _state(run_id)
            remaining = deadline - loop.time()
            if state != seen or remaining <= 0:
                return state
            if future is not None and listener.connected.is_set():
                try:
                    await asyncio.wait_for(asyncio.shield(future), remaining)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(min(POLL_SECONDS, remaining))
        finally:
            if future is not None:
                listener.unsubscribe(run_id, future)
