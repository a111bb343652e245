"""/metrics for Prometheus: `Authorization: Bearer <METRICS_TOKEN>`; 404 while no token is configured (the
endpoint does not exist), 401 for a missing or wrong token. A session never opens it."""

import os
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.http import require_http_methods
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from .collectors import DatabaseCollector


def _token_matches(request: HttpRequest) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return secrets.compare_digest(given.strip().encode(), settings.METRICS_TOKEN.encode())


@require_http_methods(["GET", "HEAD"])
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:  # plain text, as every answer of this machine endpoint
        return HttpResponseNotFound("Not found.\n", content_type="text/plain; charset=utf-8")
    if not _token_matches(request):
        response = HttpResponse("A bearer token (METRICS_TOKEN) is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if os.getenv("PROMETHEUS_MULTIPROC_DIR"):
        # Every process's files added up (prometheus-client's multiprocess mode), as django-prometheus's
        # ExportToDjangoView does; a fresh registry per scrape.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessRegistry())
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _ProcessRegistry:
    """One process (runserver, the tests): this process's own metrics, as prometheus-client's default registry."""

    def collect(self):
        return REGISTRY.collect()
