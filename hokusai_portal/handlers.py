"""The ASGI handler: two middleware chains, one per kind of view.

Django's ASGI handler runs every middleware in async mode. A MiddlewareMixin middleware (Django's own, most
libraries') then hops from the event loop to the request's thread and back for each of its hooks: ~23 hops a
request here, ~110 µs of CPU each, a fifth of the web's CPU per check (issue 27, py-spy). Only the views
that wait need the async chain: the check page (onboarding.views.check_run) and the API's `?wait=`, which
await a notification and hold no thread, and static files (WhiteNoise's async iterator). Every other view is
sync: its request runs the same middleware, loaded in sync mode, in one hop to its thread. An async view
whose requests wait only sometimes (the check page: only its long poll) names a sync view for the others
(`waits_only_if`).

A view may also wait before any middleware (`waits_only_if(..., before_chain=...)`): the check page's long
poll carries a token its own render signed (who may watch which run), so the wait needs neither the session
nor the database's say; once something changed, the sync chain answers it in one hop, authorising as any
request. The async chain cost ~7 ms of web CPU per check (issue 27, py-spy).

The URL is resolved once here to choose; Django resolves it again inside the chain (a few µs, cached)."""

import functools
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver


def waits_only_if(
    awaits: Callable[[HttpRequest], bool],
    *,
    otherwise: Callable,
    before_chain: Callable[..., Awaitable[HttpResponse | None]] | None = None,
) -> Callable:
    """Marks an async view: a request for which `awaits(request)` is false (read before any middleware: the
    raw headers and query) is answered by the sync view `otherwise`, through the sync chain. With
    `before_chain`, a request for which it is true does not take the async chain either:
    `await before_chain(request, **kwargs)` runs on the event loop before any middleware, and answers with a
    bare response (no middleware: a 204, say) or None, and then the sync view answers through the sync chain.
    The async view itself still serves the servers that are not this handler (WSGI, the test client)."""

    def mark(view):
        view.awaits = awaits
        view.sync_view = otherwise
        view.before_chain = before_chain
        return view

    return mark


class SyncChain(BaseHandler):
    """The middleware in sync mode; an async view marked by `waits_only_if` is answered by its sync view."""

    def resolve_request(self, request):
        match = super().resolve_request(request)
        sync_view = getattr(match.func, "sync_view", None)
        if sync_view is not None:
            match.func = sync_view
        return match


class PortalASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()  # the async chain, as Django loads it
        self.sync_handler = SyncChain()
        self.sync_handler.load_middleware(is_async=False)

    def route(self, request) -> "bool | Callable[[], Awaitable[HttpResponse | None]]":
        """True: this request goes through the async chain (its view is a coroutine function, or it is for a
        static file); False: the sync chain; or what to await before the sync chain (`before_chain`)."""
        path = request.path_info
        if settings.STATIC_URL and path.startswith(settings.STATIC_URL):
            return True
        try:
            match = get_resolver(getattr(request, "urlconf", None)).resolve(path)
        except Resolver404:
            return False  # the sync chain answers: CommonMiddleware's slash redirect, or the 404 page
        if not iscoroutinefunction(match.func):
            return False
        awaits = getattr(match.func, "awaits", None)
        if awaits is not None and not awaits(request):
            return False
        before_chain = getattr(match.func, "before_chain", None)
        if before_chain is not None:
            return functools.partial(before_chain, request, *match.args, **match.kwargs)
        return True

    async def get_response_async(self, request):
        route = self.route(request)
        if route is True:
            return await super().get_response_async(request)
        if route is not False:
            answered = await route()
            if answered is not None:
                return answered
        # The request's thread (ASGIHandler's ThreadSensitiveContext): the whole chain in one hop.
        return await sync_to_async(self.sync_handler.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> PortalASGIHandler:
    import django

    django.setup(set_prefix=False)
    return PortalASGIHandler()
