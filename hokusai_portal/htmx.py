"""Typing for htmx-aware views (django-htmx's pattern): `request.htmx` is set by HtmxMiddleware."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
