"""Every page keeps to the Content-Security-Policy in a real browser (Debian's chromium): no inline
script, handler or style is refused, htmx still swaps, and the one confirm() moved out of an inline
handler still asks."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from onboarding import services as onboarding
from onboarding.models import ApiKey
from tests.conftest import browser_sign_in, needs_chromium, objects_owned_by
from tests.test_malformed_input import url_kwargs, url_patterns
from triage import services

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]
# Recorded before any page script runs: every refusal the browser reports.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));
"""


def sign_in(page, base, username):
    browser_sign_in(page, base, username)


def test_pages_keep_to_the_policy_and_still_work(browser_page, live_server, alice, bob, charlie):
    page = browser_page
    page.add_init_script(RECORD_VIOLATIONS)
    investigation, _ = services.investigation_create(
        actor=bob,
        data={"title": "CSP walk", "summary": "**bold** <b style='color:red' onclick='x()'>y</b>"},
        action_items=[{"title": "Tick me", "priority": "medium"}],
    )
    get_user_model().objects.filter(username="bob").update(is_staff=True, is_superuser=True)
    seen: dict[str, list] = {}
    console_errors: list[str] = []  # a missing favicon was one on every new session
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    ids = {**objects_owned_by(bob), "pk": investigation.pk}

    def visit(path):
        probe = page.request.get(f"{live_server.url}{path}")
        if probe.status == 405 or "text/html" not in probe.headers.get("content-type", ""):
            return  # a POST-only action, JSON or an image: no page to keep to the policy
        errors_before = len(console_errors)
        response = page.goto(f"{live_server.url}{path}")
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), path
        page.wait_for_load_state("networkidle")
        seen[path] = page.evaluate("window.__csp")
        if probe.status in (401, 404):  # an answer the matrix expects (allauth's: no such code, no provider)
            del console_errors[errors_before:]  # the browser logs the page's own status as an error

    sign_in(page, live_server.url, "bob")
    # Every page of the URLconf (generated: a new page is walked too), then the admin's.
    for name, converters in url_patterns():
        if name == "accounts:logout":
            continue
        visit(reverse(name, kwargs=url_kwargs(name, converters, ids)))
    for path in (reverse("admin:index"), reverse("admin:triage_investigation_change", args=[investigation.pk])):
        visit(path)
    # htmx swaps under the policy: the action item ticks off without a reload.
    visit(reverse("triage:detail", args=[investigation.pk]))
    page.get_by_role("button", name="Toggle Tick me").click()
    page.locator('li[data-done="true"]').wait_for()
    seen["after the htmx toggle"] = page.evaluate("window.__csp")
    # A filter change swaps the results in place: one #results, not one nested in another per change.
    visit(reverse("triage:index"))
    for status in ("investigating", "resolved", ""):
        page.locator("select[name=status]").select_option(status)
        page.wait_for_load_state("networkidle")
    assert page.locator("#results").count() == 1
    assert {path: refused for path, refused in seen.items() if refused} == {}
    assert console_errors == []
    assert len(seen) > 20


def test_forgetting_a_key_still_asks_first(browser_page, live_server, alice):
    onboarding.api_key_save(user=alice, raw_key="hk_test_Abcdefghijklmnopqrstuvwxyz012345")
    page = browser_page
    sign_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}{reverse('onboarding:key')}")
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_role("button", name="Forget this key").click()
    page.wait_for_timeout(300)
    assert questions == ["Delete your API key from the portal?"]
    assert ApiKey.objects.filter(user=alice).exists()  # kept: the answer was no
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_role("button", name="Forget this key").click()
    page.get_by_text("Your API key was deleted").wait_for()
