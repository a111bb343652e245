"""Ordinary refusals are one line in the log, real errors keep their traceback: Django logs a 403
(PermissionDenied) and a 400 (a suspicious request) with the exception's traceback, which drowned the 500s."""

import logging

import pytest
from django.test import Client
from django.urls import reverse

from hokusai_portal.logs import ExpectedRefusalsOneLine
from triage import selectors, services

pytestmark = pytest.mark.django_db


def console() -> logging.Handler:
    """The handler settings.LOGGING puts on the root logger (what `make run` and the workers print)."""
    (handler,) = [  # a stream handler: the suite's own log-line watcher (conftest) carries the same filters
        h
        for h in logging.getLogger().handlers
        if type(h) is logging.StreamHandler and any(isinstance(f, ExpectedRefusalsOneLine) for f in h.filters)
    ]
    return handler


def test_a_permission_refusal_is_one_line_and_a_500_keeps_its_traceback(alice, bob, caplog, monkeypatch):
    developer = Client()
    developer.force_login(alice)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert developer.get(reverse("triage:index")).status_code == 403
    (refusal,) = [r for r in caplog.records if r.name == "django.request"]
    assert refusal.exc_info is None and "Traceback" not in caplog.text
    assert refusal.getMessage() == "Forbidden (Permission denied): /triage/ [PermissionDenied]"
    assert "\n" not in console().format(refusal)

    caplog.clear()
    monkeypatch.setattr(selectors, "sla_view", lambda investigation: 1 / 0)
    investigation, _ = services.investigation_create(actor=bob, data={"title": "Broken page", "severity": "low"})
    support = Client(raise_request_exception=False)
    support.force_login(bob)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert support.get(reverse("triage:detail", args=[investigation.pk])).status_code == 500
    (error,) = [r for r in caplog.records if r.name == "django.request"]
    assert error.exc_info is not None and "ZeroDivisionError" in console().format(error)
    assert "Traceback (most recent call last)" in caplog.text


def test_a_suspicious_request_is_one_line_on_the_console(db, caplog):
    with caplog.at_level(logging.WARNING):
        assert Client().get("/", HTTP_HOST="evil.example").status_code == 400
    (record,) = [r for r in caplog.records if r.name.startswith("django.security")]
    handler = console()
    assert handler.filter(record)
    line = handler.format(record)
    assert "\n" not in line and "DisallowedHost" in line
