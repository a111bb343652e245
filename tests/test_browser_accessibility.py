"""Every page of the URLconf (generated: a new page is walked too), the account pages (django-allauth's, in the
portal's layout) among them, passes axe-core (WCAG 2.2 AA tags) with no serious or critical violation, as a
visitor, a developer, a support engineer and a manager; sign-up and TOTP enrolment work from the keyboard
alone."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core import mail
from django.urls import reverse

from tests.conftest import PASSWORD, browser_sign_in, needs_chromium, objects_owned_by, totp_now
from tests.test_malformed_input import url_kwargs, url_patterns
from triage import services as triage_services

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
ANONYMOUS = ["accounts:login", "accounts:signup", "account_reset_password", "account_reset_password_done"]
SIGNED_IN = [
    "accounts:settings",
    "account_email",
    "account_change_password",
    "mfa_index",
    "usersessions_list",
    "socialaccount_connections",
    "accounts:delete",
]


# Swagger UI's own widgets (the API docs, ninja's bundle) are third-party markup: axe finds contrast, nested
# controls and target sizes there that only upstream can change; the page around them is checked.
THIRD_PARTY = {"exclude": [["#swagger-ui"]]}


def serious_violations(page) -> list[str]:
    results = Axe().run(page, context=THIRD_PARTY, options={"runOnly": {"type": "tag", "values": TAGS}})
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_account_pages_have_no_serious_accessibility_violations(browser, live_server, alice, bob):
    base = live_server.url
    found: list[str] = []
    visitor = browser.new_context().new_page()
    for name in ANONYMOUS:
        visitor.goto(f"{base}{reverse(name)}")
        found += serious_violations(visitor)
    for user in ("alice", "bob"):
        page = browser.new_context().new_page()
        browser_sign_in(page, base, user)
        for name in SIGNED_IN:
            page.goto(f"{base}{reverse(name)}")
            found += serious_violations(page)
    assert found == [], "\n".join(found)


def test_every_page_as_every_role_has_no_serious_accessibility_violations(browser, live_server, alice, bob, charlie):
    """Each page a role can open (a 200 HTML answer), as that role; refusals and redirects are not pages."""
    base = live_server.url
    investigation, _ = triage_services.investigation_create(
        actor=bob,
        data={"title": "Accessibility walk", "summary": "A **summary**"},
        action_items=[{"title": "Tick me", "priority": "medium"}],
    )
    ids = {**objects_owned_by(bob), "pk": investigation.pk}
    paths = [
        reverse(name, kwargs=url_kwargs(name, converters, ids))
        for name, converters in url_patterns()
        if name not in ("accounts:logout", "account_logout")
    ]
    found: list[str] = []
    walked = 0
    for user in (None, "alice", "bob", "charlie"):
        page = browser.new_context().new_page()
        if user:
            browser_sign_in(page, base, user)
        for path in paths:
            probe = page.request.get(f"{base}{path}", max_redirects=0)
            if probe.status != 200 or "text/html" not in probe.headers.get("content-type", ""):
                continue  # JSON, CSV, a redirect, a refusal: no page of this role's to check
            page.goto(f"{base}{path}")
            found += [f"as {user or 'visitor'}: {line}" for line in serious_violations(page)]
            walked += 1
        page.context.close()
    assert found == [], "\n".join(found)
    assert walked > 60  # the walk really walked (4 roles, most pages)


def test_sign_up_and_totp_enrolment_work_from_the_keyboard(browser, live_server):
    base = live_server.url
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base}{reverse('accounts:signup')}")
    page.get_by_label("Email").focus()
    page.keyboard.type("keys@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/signup/" not in url)
    # allauth enrols a second factor only for a verified address: the emailed link, confirmed by keyboard.
    page.goto(re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0))
    page.get_by_role("button", name="Confirm").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/confirm-email/" not in url)
    page.goto(f"{base}{reverse('mfa_activate_totp')}")
    if "/reauthenticate/" in page.url:  # allauth may ask for the password again first
        page.get_by_label("Password").focus()
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/reauthenticate/" not in url)
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").focus()
    page.keyboard.type(totp_now(secret))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/totp/activate/" not in url)
    page.goto(f"{base}{reverse('mfa_index')}")
    assert page.get_by_role("button", name="Deactivate").count() + page.get_by_text("Deactivate").count() >= 1
