import logging
import sys

from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from .faults import is_storage_fault

logger = logging.getLogger(__name__)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and tools ask for /favicon.ico whatever the page says: send them to the real one."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a storage fault is a 503 that says so; anything else the plain 500 page.
    Renders without a request context: no database read, no user, nothing that can fail again."""
    from django.template.loader import render_to_string

    if is_storage_fault(sys.exc_info()[1]):
        logger.error("storage unavailable answering %s %s", request.method, request.path)
        # A connection opened during the fault keeps it (a read-only session) for as long as it is reused
        # (CONN_MAX_AGE): the next request opens a new one, so work is accepted again once storage is back.
        for database in connections.all(initialized_only=True):
            database.close()
        body = render_to_string("503_storage.html", {"title": "The portal cannot save right now", "code": "503"})
        return HttpResponse(body, status=503, headers={"Retry-After": "30"})
    body = render_to_string("500.html", {"title": "Something went wrong", "code": "500"})
    return HttpResponse(body, status=500)
