"""Every URL in the URLconf, as every role, gets malformed input in every form field and query filter, and
bodies in every transport (charsets, content types, multipart bodies, absurd lengths), and never answers 5xx.
One test per URL (generated at collection), so a run can spread them. Nothing here is hand-listed: the URLs come from the URLconf (a new URL is
covered, or the test fails asking for an object to address it), the field names from every form class
of the project's apps, the filter names from the selectors that read query strings.

CI runs this on PostgreSQL, where a NUL byte or an out-of-range integer reaching a query is an error."""

import dataclasses
import inspect
from urllib.parse import quote

import allauth.account.forms
import allauth.mfa.base.forms
import allauth.mfa.recovery_codes.forms
import allauth.mfa.totp.forms
import allauth.mfa.webauthn.forms
import allauth.usersessions.forms
import pytest
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.http import QueryDict
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

import api.forms
import onboarding.forms
import organizations.forms
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
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "hokusaiBoundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*parts: bytes) -> bytes:
    return b"".join(f"--{BOUNDARY}\r\n".encode() + part + b"\r\n" for part in parts) + f"--{BOUNDARY}--\r\n".encode()


# (what, content type, body, extra WSGI environ): the transport, not the values, is what is malformed.
TRANSPORTS = [
    ("form body in UTF-16", f"{FORM}; charset=utf-16", "q=é&page=1&api_key=x".encode("utf-16"), {}),
    ("form body in Latin-1", f"{FORM}; charset=latin-1", "q=é&page=1".encode("latin-1"), {}),
    ("form body in an unknown charset", f"{FORM}; charset=x-no-such-charset", b"q=1", {}),
    ("form body that is not UTF-8", FORM, b"q=\xff\xfe\xfd&page=\xc3", {}),
    ("form body with a NUL in a name", FORM, b"q%00=1", {}),
    ("multipart without a boundary", "multipart/form-data", multipart(b"x"), {}),
    ("multipart with an empty boundary", "multipart/form-data; boundary=", b"--\r\n", {}),
    ("multipart cut short", MULTIPART, f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=q\r\n\r\nv".encode(), {}),
    (
        "multipart with a NUL in a field name",
        MULTIPART,
        multipart(b'Content-Disposition: form-data; name="q\x00"\r\n\r\nv'),
        {},
    ),
    (
        "multipart part in UTF-16",
        MULTIPART,
        multipart(
            b'Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfeq\x00'
        ),
        {},
    ),
    (
        "multipart whose body charset is UTF-16",
        f"{MULTIPART}; charset=utf-16",
        multipart(b'Content-Disposition: form-data; name="q"\r\n\r\n\xff\xfeq\x00'),
        {},
    ),
    (
        "multipart with a file in every field",
        MULTIPART,
        multipart(
            b'Content-Disposition: form-data; name="api_key"; filename="k.txt"\r\nContent-Type: text/plain\r\n\r\n\x00\xff',
            b'Content-Disposition: form-data; name="environment_file"; filename="../../etc/passwd"\r\n\r\n\xfe\xff',
        ),
        {},
    ),
    ("a JSON body", "application/json", b'{"q": 1, "api_key": null}', {}),
    ("a UTF-16 text body", "text/plain; charset=utf-16", "q=1".encode("utf-16"), {}),
    ("no content type", "", b"q=1&page=2", {}),
    ("an absurd Content-Length", FORM, b"q=1", {"CONTENT_LENGTH": "99999999999999999999"}),
    ("a negative Content-Length", FORM, b"q=1", {"CONTENT_LENGTH": "-5"}),
    ("a Content-Length that is not a number", FORM, b"q=1", {"CONTENT_LENGTH": "twelve"}),
    ("a compressed form body", FORM, b"\x1f\x8b\x08\x00garbage", {"HTTP_CONTENT_ENCODING": "gzip"}),
]


def _arguments(pattern) -> list[str]:
    """A pattern's arguments: path converters, or a regex's named groups (allauth's include() uses re_path)."""
    return list(pattern.pattern.converters) or list(pattern.pattern.regex.groupindex)


def url_patterns(resolver=None, namespace=None, outer=()):
    """(name, arguments) of every named URL except Django's own admin (unnamed ones are allauth's old-path
    redirects to the named ones)."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            yield from url_patterns(pattern, pattern.namespace or namespace, (*outer, *_arguments(pattern)))
        elif pattern.name is not None:
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield name, [*outer, *_arguments(pattern)]


def url_kwargs(name: str, arguments: list[str], ids: dict, value=None) -> dict:
    """The URL's arguments from the world's ids (by URL name, then by argument name); `value` replaces a
    single id argument (a missing or too-large id)."""
    if isinstance(ids.get(name), dict):
        return dict(ids[name])
    kwargs = {}
    for argument in arguments:
        kwargs[argument] = ids.get(name, ids.get(argument)) if value is None else value
        assert kwargs[argument] is not None, f"{name} takes <{argument}>: give the walks an object to address it"
    return kwargs


def parameter_names() -> list[str]:
    names = {"page", "timeline"}
    for module in (
        onboarding.forms,
        organizations.forms,
        triage.forms,
        api.forms,
        allauth.account.forms,  # the accounts pages are django-allauth's: their forms' fields
        allauth.mfa.base.forms,
        allauth.mfa.recovery_codes.forms,
        allauth.mfa.totp.forms,
        allauth.mfa.webauthn.forms,
        allauth.usersessions.forms,
    ):
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
    real = reverse(name, kwargs=url_kwargs(name, converters, ids))
    if len(converters) > 1 or isinstance(ids.get(name), dict) or converters[0] in ("key", "provider_id"):
        return [real]  # several arguments or a string (allauth's keys): the real address only
    return [real, *(reverse(name, kwargs=url_kwargs(name, converters, ids, v)) for v in (987654, int("9" * 19)))]


URLS = sorted(url_patterns())


def admits(client: Client, url: str) -> bool:
    """The view itself answers this client (a page, a 400, a 405 for a POST-only action), not a sign-in redirect
    or a refusal that reads no parameter."""
    return client.get(url).status_code not in (302, 401, 403, 404)


def answered_5xx(name: str, status: int) -> bool:
    return status >= 500 and not (name == "healthz" and status == 503)


@pytest.mark.parametrize(("name", "converters"), URLS, ids=[name for name, _ in URLS])
def test_no_url_answers_5xx_to_malformed_input(world, name, converters):
    """Every malformed value in every parameter at once, GET and POST, as every role at the real object; at a
    missing or too-large id, as the two roles that own or may read objects (the lookup is what is tried there);
    then each hostile value alone in each parameter (one bad parameter must not hide another's 500)."""
    names = parameter_names()
    failed = []
    roles = {"anonymous": None, **world["users"]}
    real, *missing = addresses(name, converters, world["ids"])
    for url in (real, *missing):
        for role, user in roles.items():
            if url != real and role not in ("support", "developer A"):
                continue
            client = Client(raise_request_exception=False)
            if user is not None:
                client.force_login(user)
            for value in MALFORMED:
                every = {parameter: value for parameter in names}
                query = "&".join(f"{p}={quote(value)}" for p in names)
                for method in ("GET", "POST"):
                    answer = client.get(f"{url}?{query}") if method == "GET" else client.post(url, every)
                    if answered_5xx(name, answer.status_code):
                        failed.append(f"{method} {url} as {role} with {value!r}: {answer.status_code}")
            # Each hostile value alone, as the owning roles the view admits (a refusal parses no parameter).
            if url == real and role in ("support", "developer A") and admits(client, url):
                for parameter in names:
                    for value in HOSTILE_ONE_AT_A_TIME:
                        answer = client.get(f"{url}?{parameter}={quote(value)}")
                        if answered_5xx(name, answer.status_code):
                            failed.append(f"GET {url}?{parameter}={value!r} as {role}: {answer.status_code}")
    assert not failed, "\n".join(failed[:60])


@pytest.mark.parametrize(("name", "converters"), URLS, ids=[name for name, _ in URLS])
def test_no_url_answers_5xx_to_a_malformed_transport(world, name, converters):
    """Charsets, content types, multipart bodies and lengths: a 4xx that says so, never a 500."""
    failed = []
    url = addresses(name, converters, world["ids"])[0]
    for role in ("anonymous", "developer A", "support"):
        client = Client(raise_request_exception=False)
        if role != "anonymous":
            client.force_login(world["users"][role])
        for what, content_type, body, extra in TRANSPORTS:
            for method in ("POST", "PUT", "PATCH"):
                answer = client.generic(method, url, body, content_type=content_type, **extra)
                if answered_5xx(name, answer.status_code):
                    failed.append(f"{method} {url} as {role} with {what}: {answer.status_code}")
    assert not failed, "\n".join(failed)


def test_every_url_of_the_urlconf_is_walked():
    """The lists above are the URLconf's (a URL added later is walked by both tests, or they fail)."""
    assert {name for name, _ in URLS} == {name for name, _ in url_patterns()}
    assert {"triage:report_problem", "onboarding:check_run", "healthz", "accounts:login"} <= {name for name, _ in URLS}


@pytest.mark.django_db
def test_a_form_body_in_another_charset_is_refused_with_a_reason_and_changes_nothing():
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.count()
    body = "email=new@example.com&password=correct horse battery staple".encode("utf-16")
    answer = Client().generic("POST", "/accounts/signup/", body, content_type=f"{FORM}; charset=utf-16")
    assert answer.status_code == 400
    assert "send it as UTF-8" in answer.content.decode() and "Nothing was changed" in answer.content.decode()
    assert get_user_model().objects.count() == users
    answer = Client().generic("POST", "/accounts/signup/", b"a=1", content_type=FORM, CONTENT_LENGTH="twelve")
    assert answer.status_code == 400 and "Content-Length" in answer.content.decode()
