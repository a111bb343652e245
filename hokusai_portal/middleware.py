"""The edge: input refused before any view or query sees it, and headers every answer carries."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.deprecation import MiddlewareMixin
from whitenoise.middleware import WhiteNoiseMiddleware

from .problems import problem_response

# Every middleware here is async-capable (MiddlewareMixin or its own __acall__): under ASGI a sync-only one
# would run the rest of the chain through async_to_sync, holding a thread for each long-polled check page.


class StaticFiles(WhiteNoiseMiddleware):
    """WhiteNoise (sync-only in 6.x), able to sit in an async chain: a static file is served as WhiteNoise
    serves it; anything else is awaited."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, **kwargs):
        super().__init__(get_response, **kwargs)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        return self.__acall__(request) if self.is_async else super().__call__(request)

    async def __acall__(self, request):
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            response = await sync_to_async(self.serve)(static_file, request)
            if response.streaming and not response.is_async:
                # The portal's static files are small: read in a thread, handed over as an async iterator
                # (Django warns at every sync iterator it has to consume under ASGI).
                chunks = await sync_to_async(list)(response.streaming_content)

                async def body():
                    for chunk in chunks:
                        yield chunk

                response.streaming_content = body()
            return response
        return await self.get_response(request)


class RefuseMalformedInput(MiddlewareMixin):
    """The request itself, before any view reads it: a Content-Length that is not a number, a form body Django
    cannot parse (a charset other than UTF-8, a multipart body without or past its boundary, too many fields or
    bytes) or a NUL character in a query string or form field (PostgreSQL refuses NUL in text: a DataError,
    so a 500) each get a 400 that says what was wrong, and nothing changes."""

    def process_request(self, request: HttpRequest):
        length = request.META.get("CONTENT_LENGTH") or ""
        if length and not (length.isascii() and length.isdigit()):
            return bad_request(request, "Content-Length must be a whole number of bytes.")
        try:
            if request.method == "POST" and request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                params = [request.GET, request.POST]
            else:
                params = [request.GET]
            for query in params:
                for key, values in query.lists():
                    if "\x00" in key or any("\x00" in value for value in values):
                        return bad_request(request, "a field or query parameter contains a NUL character.")
        except RequestDataTooBig:
            return bad_request(request, "the request body is larger than this portal accepts.", status=413)
        except TooManyFieldsSent:
            return bad_request(request, "the request has more fields than any form of this portal.")
        except (BadRequest, MultiPartParserError, UnicodeDecodeError):
            return bad_request(
                request,
                "the form data could not be read: send it as UTF-8 (application/x-www-form-urlencoded) or as "
                "multipart/form-data with its boundary.",
            )
        return None


def bad_request(request: HttpRequest, reason: str, status: int = 400) -> HttpResponse:
    """Plain text for pages; problem+json (RFC 9457) for the API's clients, who parse what they get."""
    if request.path.startswith("/api/"):
        return problem_response(status, "REQUEST_MALFORMED", f"Bad request: {reason} Nothing was changed.")
    return HttpResponse(
        f"Bad request: {reason} Nothing was changed.", status=status, content_type="text/plain; charset=utf-8"
    )


class ContentSecurityPolicy(MiddlewareMixin):
    """`Content-Security-Policy` on every answer (settings.CONTENT_SECURITY_POLICY): scripts and styles
    from this origin only, no inline script, handler or style attribute, no framing. A stored XSS that slips
    past the sanitiser still cannot run. Pages keep to it: behaviour lives in static/js/portal.js, looks in
    static/css/portal.css, and htmx is configured not to inject its own <style> or eval anything."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.policy = "; ".join(
            f"{name} {' '.join(sources)}" for name, sources in settings.CONTENT_SECURITY_POLICY.items()
        )

    def process_response(self, request: HttpRequest, response: HttpResponse):
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
