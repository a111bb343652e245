"""The whole journey in a real browser (Debian's chromium, driven by Playwright), three roles at once:

a developer signs up, verifies their email, saves a key that cannot write, watches the check fail, tells support; a support
engineer gives the verdict (reason and root cause together), replies to the reporter and leaves an
internal note; the developer reads the reply (not the note, not the root cause), saves a writer key,
passes the check, picks the run instead of typing its id, registers and lands on Done; support resolves
the investigation as fixed in one action; a manager follows a dashboard number to a list of that many.
No page logs a console error."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from tests.conftest import PASSWORD, browser_sign_in, needs_chromium
from triage.models import Investigation

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_three_roles_walk_the_journey(
    browser, live_server, bob, charlie, devstack, devstack_keys, settings, celery_worker
):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    base = live_server.url
    errors: list[str] = []

    def person():
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        return page

    def sign_in(page, username):
        browser_sign_in(page, base, username)

    # A developer signs up and saves a key that can read but not write.
    developer = person()
    developer.goto(f"{base}{reverse('accounts:signup')}")
    developer.get_by_label("Email").fill("newcomer@example.com")
    developer.get_by_label("Password").fill(PASSWORD)
    developer.get_by_role("button", name="Sign Up", exact=True).click()
    # No key is stored before the address is verified: the page says so; the emailed link asks to confirm.
    developer.get_by_test_id("email-unverified").wait_for()
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    developer.goto(link)
    developer.get_by_role("button", name="Confirm").click()
    developer.goto(f"{base}{reverse('onboarding:key')}")
    assert developer.get_by_test_id("email-unverified").count() == 0
    developer.get_by_label("API key").fill(devstack_keys["reader"])
    developer.get_by_role("button", name="Save key").click()
    developer.get_by_role("button", name="Run connectivity check").click()
    developer.locator('.run[data-status="failed"]').wait_for()
    assert developer.locator('[data-step="write"]').get_attribute("data-cause") == "WRITE_PERMISSION_DENIED"
    assert "How to fix" in developer.locator('[data-step="write"]').inner_text()
    # Telling support is in the open, and says what is shared.
    report = developer.get_by_test_id("report-problem")
    assert "never in full" in report.inner_text()
    developer.get_by_label("Anything to add (optional)").fill("Blocked on registering LSCOR since this morning.")
    developer.get_by_role("button", name="Send the report to support").click()
    developer.get_by_test_id("my-report").wait_for()
    investigation = Investigation.objects.get()

    # Support gives the verdict with its reason and root cause, replies, and notes internally.
    support = person()
    sign_in(support, "bob")
    support.goto(f"{base}{reverse('triage:index')}")
    support.get_by_role("link", name=investigation.title).click()
    assert "Blocked on registering LSCOR" in support.get_by_test_id("report").inner_text()
    support.get_by_label("Verdict").select_option("verified")
    support.get_by_label("Reason").fill("Reader keys cannot write: that is by design.")
    support.get_by_label("Root cause").fill("The onboarding email sends reader keys.")
    support.get_by_role("button", name="Save the verdict").click()
    support.locator('.finding[data-status="verified"]').wait_for()
    support.get_by_label("Comment").fill("Ask for a writer key in your account settings, then run the check again.")
    support.get_by_role("button", name="Reply to reporter").click()
    support.get_by_text("Reply sent: the reporters see it.").wait_for()
    support.get_by_label("Comment").fill("Onboarding emails need fixing; see the root cause.")
    support.get_by_role("button", name="Internal note").click()
    support.get_by_text("Internal note added").wait_for()

    # The developer reads the reply and the verdict, not the internal note or the root cause.
    developer.reload()
    page_text = developer.content()
    assert "Ask for a writer key" in page_text and "Reader keys cannot write" in page_text
    assert "Onboarding emails need fixing" not in page_text and "The onboarding email sends" not in page_text

    # With a writer key the check passes; the run is picked, not typed; Done is where it ends.
    developer.goto(f"{base}{reverse('onboarding:key')}")
    developer.get_by_label("API key").fill(devstack_keys["writer"])
    developer.get_by_role("button", name="Save key").click()
    developer.get_by_role("button", name="Run connectivity check").click()
    developer.get_by_role("link", name="Continue to registration").click()
    developer.get_by_role("button", name="Use accuracy = 0.93").click()
    developer.get_by_label("Model name", exact=True).fill("LSCOR_Journey")
    developer.get_by_label("Token id").fill("LSCOR")
    developer.get_by_label("Baseline value").fill("0.92")
    developer.get_by_role("button", name="Check and register").click()
    developer.locator('.run[data-status="passed"]').wait_for(timeout=90_000)
    developer.get_by_role("link", name="Done: what next").click()
    assert developer.get_by_test_id("version").inner_text() == "1"

    # Support resolves it as fixed in one action (the root cause is written).
    support.reload()
    support.get_by_label("Move to").select_option("resolved")
    support.get_by_label("Resolution").select_option("fixed")
    support.get_by_role("button", name="Change status").click()
    support.get_by_text("is now Resolved (Fixed)").wait_for()

    # A manager follows the verified-findings number to a list of exactly that many.
    manager = person()
    sign_in(manager, "charlie")
    manager.goto(f"{base}{reverse('dashboard:index')}")
    verified = manager.get_by_test_id("findings-verified")
    count = int(verified.inner_text())
    verified.click()
    assert manager.get_by_test_id("finding-row").count() == count == 1
    assert "finding verdict: Verified" in manager.get_by_test_id("filters-on").inner_text()
    assert errors == []
