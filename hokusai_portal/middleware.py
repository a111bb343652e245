"""The edge: input refused before any view or query sees it, and headers every answer carries."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class RefuseNulBytes:
    """A NUL character in a query string or form field is never meaningful here, and PostgreSQL refuses it
    in text (a DataError, so a 500): answer 400 with a message instead, and change nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.method == "POST" and request.content_type not in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            params = [request.GET]
        else:
            params = [request.GET, request.POST]
        for query in params:
            for key, values in query.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    return HttpResponse(
                        "Bad request: a field or query parameter contains a NUL character. Nothing was changed.",
                        status=400,
                        content_type="text/plain; charset=utf-8",
                    )
        return self.get_response(request)


class ContentSecurityPolicy:
    """`Content-Security-Policy` on every answer (settings.CONTENT_SECURITY_POLICY): scripts and styles
    from this origin only, no inline script, handler or style attribute, no framing. A stored XSS that slips
    past the sanitiser still cannot run. Pages keep to it: behaviour lives in static/js/portal.js, looks in
    static/css/portal.css, and htmx is configured not to inject its own <style> or eval anything."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(
            f"{name} {' '.join(sources)}" for name, sources in settings.CONTENT_SECURITY_POLICY.items()
        )

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
