import logging
import sys

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.roles import Role, roles_of

from .faults import is_storage_fault
from .health import health_report

logger = logging.getLogger(__name__)


@login_required
def home(request: HttpRequest):
    """Send each user to the page of their main role."""
    roles = roles_of(request.user)
    if Role.SUPPORT in roles:
        return redirect("triage:index")
    if Role.MANAGER in roles:
        return redirect("dashboard:index")
    return redirect("onboarding:index")


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and tools ask for /favicon.ico whatever the page says: send them to the real one."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


@never_cache
@require_GET
def healthz(request: HttpRequest):
    report = health_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a storage fault is a 503 that says so; anything else the plain 500 page.
    Renders without a request context: no database read, no user, nothing that can fail again."""
    from django.template.loader import render_to_string

    if is_storage_fault(sys.exc_info()[1]):
        logger.error("storage unavailable answering %s %s", request.method, request.path)
        body = render_to_string("503_storage.html", {"title": "The portal cannot save right now", "code": "503"})
        return HttpResponse(body, status=503, headers={"Retry-After": "30"})
    body = render_to_string("500.html", {"title": "Something went wrong", "code": "500"})
    return HttpResponse(body, status=500)
