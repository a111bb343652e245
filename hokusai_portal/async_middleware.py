"""Middleware that runs in both of Django's modes. Under ASGI a sync-only middleware makes Django run the rest
of the chain through async_to_sync, holding a thread for as long as the request lasts: a long-polled check
page would hold one each (tests/test_check_waiting.py counts them)."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class SyncAndAsync:
    """Subclasses give `sync_call(request)` and `async def __acall__(request)`; this picks one per chain."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        return self.__acall__(request) if self.is_async else self.sync_call(request)

    def sync_call(self, request):
        raise NotImplementedError

    async def __acall__(self, request):
        raise NotImplementedError
