from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.roles import Role, roles_of

from .health import health_report


@login_required
def home(request: HttpRequest):
    """Send each user to the page of their main role."""
    roles = roles_of(request.user)
    if Role.SUPPORT in roles:
        return redirect("triage:index")
    if Role.MANAGER in roles:
        return redirect("dashboard:index")
    return redirect("onboarding:index")


@never_cache
@require_GET
def healthz(request: HttpRequest):
    report = health_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)
