"""Every URL in the URLconf, as every role, gets malformed input in every form field and query filter,
and never answers 5xx. Nothing here is hand-listed: the URLs come from the URLconf (a new URL is
covered, or the test fails asking for an object to address it), the field names from every form class
of the project's apps, the filter names from the selectors that read query strings.

CI runs this on PostgreSQL, where a NUL byte or an out-of-range integer reaching a query is an error."""

import dataclasses
import inspect
from urllib.parse import quote

import pytest
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.http import QueryDict
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

import accounts.forms
import onboarding.forms
import triage.forms
from dashboard.selectors import DashboardFilters
from onboarding import selectors as onboarding_selectors
from tests.conftest import objects_owned_by
from triage import selectors as triage_selectors

MALFORMED = [
    "abc",
    "²",  # str.isdigit() says yes, int() says no
    "9" * 23,  # overflows every integer column
    "-1",
    "0",
    "INV-²",
    "INV-" + "9" * 23,
    "2025-13-45",
    "2025-02-30",
    "9999-12-31",
    "0001-01-01",
    "nul\x00byte",
    "' OR 1=1 --",
    "é" * 300,
    " ",
]
# /healthz answers 503 by contract when a part is down (here: no worker, no registry); any other 5xx fails.
HOSTILE_ONE_AT_A_TIME = ["²", "9" * 23, "9999-12-31", "nul\x00byte"]


def url_patterns(resolver=None, namespace=None):
    """(name, converters) of every URL except Django's own admin."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            yield from url_patterns(pattern, pattern.namespace or namespace)
        else:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), list(pattern.pattern.converters)


def parameter_names() -> list[str]:
    names = {"page", "timeline"}
    for module in (accounts.forms, onboarding.forms, triage.forms):
        for _, form_class in inspect.getmembers(module, inspect.isclass):
            if issubclass(form_class, forms.BaseForm) and form_class.__module__ == module.__name__:
                names |= set(form_class.base_fields)
    names |= set(AuthenticationForm.base_fields)
    names |= set(triage_selectors.FILTER_READERS)
    names |= {field.name for field in dataclasses.fields(DashboardFilters)} | {"start", "end"}
    names |= set(onboarding_selectors.history_filters(QueryDict()))
    return sorted(names)


@pytest.fixture
def world(alice, dave, bob, charlie):
    """Objects for every kind of id a URL takes, owned by developer A (alice)."""
    users = {"developer A": alice, "developer B": dave, "support": bob, "manager": charlie}
    return {"users": users, "ids": objects_owned_by(alice)}


def addresses(name: str, converters: list[str], ids: dict) -> list[str]:
    """The URL with a real object's id, a missing one and one too large for any column."""
    if not converters:
        return [reverse(name)]
    (argument,) = converters
    real = ids.get(name, ids.get(argument))
    assert real is not None, f"{name} takes <{argument}>: give the fuzz test an object to address it"
    return [reverse(name, kwargs={argument: value}) for value in (real, 987654, int("9" * 19))]


def test_no_url_answers_5xx_to_malformed_input(world):
    names = parameter_names()
    assert {"api_key", "model_uri", "duplicate_of", "status", "owner", "component", "q", "since"} <= set(names)
    requests = failures = 0
    failed = []
    roles = {"anonymous": None, **world["users"]}
    for name, converters in url_patterns():
        for url in addresses(name, converters, world["ids"]):
            for role, user in roles.items():
                client = Client(raise_request_exception=False)
                if user is not None:
                    client.force_login(user)
                for value in MALFORMED:
                    every = {parameter: value for parameter in names}
                    query = "&".join(f"{p}={quote(value)}" for p in names)
                    for method in ("GET", "POST"):
                        answer = client.get(f"{url}?{query}") if method == "GET" else client.post(url, every)
                        requests += 1
                        if answer.status_code >= 500 and not (name == "healthz" and answer.status_code == 503):
                            failures += 1
                            failed.append(f"{method} {url} as {role} with {value!r}: {answer.status_code}")
                if role in ("support", "developer A"):
                    for parameter in names:
                        for value in HOSTILE_ONE_AT_A_TIME:
                            answer = client.get(f"{url}?{parameter}={quote(value)}")
                            requests += 1
                            if answer.status_code >= 500 and not (name == "healthz" and answer.status_code == 503):
                                failures += 1
                                failed.append(f"GET {url}?{parameter}={value!r} as {role}: {answer.status_code}")
    print(f"malformed input: {requests} requests, {failures} answered 5xx")
    assert requests >= 1000
    assert not failed, "\n".join(failed[:60])
