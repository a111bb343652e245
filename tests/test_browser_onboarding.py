"""A developer in a real browser (Debian's chromium, driven by Playwright): sign in -> key -> the
connectivity check passes, its steps appearing live through htmx polling -> register -> result page."""

import pytest

from onboarding.models import CheckRun
from tests.conftest import browser_sign_in, needs_chromium

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_developer_signs_in_saves_a_key_and_watches_the_check_pass(
    browser_page, live_server, alice, devstack, devstack_keys, settings, celery_worker
):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    page = browser_page
    requests_seen = []
    page.on("request", lambda request: requests_seen.append(request.url))

    # allauth's sign-in page (with "Sign in with a passkey" beside it); staff then give their TOTP code.
    browser_sign_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/")

    page.get_by_label("API key").fill(f"Bearer {devstack_keys['writer']}")
    page.get_by_role("button", name="Save key").click()
    page.get_by_text("Removed the “Bearer” prefix").wait_for()
    masked = devstack_keys["writer"][:12] + "…" + devstack_keys["writer"][-2:]
    assert masked in page.content()

    page.get_by_role("button", name="Run connectivity check").click()
    page.locator('[data-step="write"][data-status="pass"]').wait_for()
    page.locator('.run[data-status="passed"]').wait_for()
    assert page.locator(".steps li").count() == 8
    assert devstack_keys["writer"] not in page.content()
    assert page.get_by_text("Continue to registration").is_visible()
    run = CheckRun.objects.get()
    assert run.status == CheckRun.Status.PASSED
    # Steps arrived by long-polling the partial, not by reloading the page.
    polls = [url for url in requests_seen if f"/onboarding/checks/{run.pk}/?seen=" in url]
    assert len(polls) >= 1
    # The boosted form landed on the check page in one request (answered with the page, its URL pushed): no
    # redirect, no second GET of the page; the address bar names the check, and a reload shows it.
    assert page.url == f"{live_server.url}/onboarding/checks/{run.pk}/"
    assert f"{live_server.url}/onboarding/checks/{run.pk}/" not in requests_seen
    assert f"Check #{run.pk}" in page.title()
    page.reload()
    page.locator('.run[data-status="passed"]').wait_for()

    page.get_by_role("link", name="Continue to registration").click()
    # Pick, don't type: the run the key can see, with its metric, fills the form.
    page.get_by_role("button", name="Use accuracy = 0.93").click()
    assert page.get_by_label("Model URI").input_value() == f"models:/{devstack.state()['logged_model_id']}"
    assert page.get_by_label("Metric name").input_value() == "accuracy"
    assert "The run's accuracy: 0.93" in page.locator("#run-metric-hint").inner_text()
    page.get_by_label("Model name", exact=True).fill("LSCOR_Browser_Model")
    page.get_by_label("Token id").fill("LSCOR")
    page.get_by_label("Baseline value").fill("0.92")
    page.get_by_role("button", name="Check and register").click()
    page.locator('[data-step="verify"][data-status="pass"]').wait_for(timeout=60_000)
    assert page.get_by_test_id("version").inner_text() == "1"
    assert "hokusai_token_id" in page.get_by_test_id("registration").inner_text()
    assert 'os.environ["HOKUSAI_API_KEY"]' in page.get_by_test_id("snippet").inner_text()
    assert devstack_keys["writer"] not in page.content()
    # Done is a place: the wizard's last step is current, with the version, its tags and what next.
    page.get_by_role("link", name="Done: what next").click()
    page.get_by_test_id("done").wait_for()
    assert page.locator('.wizard li[aria-current="step"]').inner_text().strip() == "5. Done"
    assert page.get_by_test_id("version").inner_text() == "1"
    page.goto(f"{live_server.url}/onboarding/")  # a registered developer is sent to Done, not the form
    page.get_by_test_id("done").wait_for()
    # The version as the registry has it now, read with the saved key (the registry UI would answer 401).
    page.get_by_role("link", name="See it as the registry has it now").click()
    assert page.get_by_test_id("version-status").inner_text() == "READY"
    assert page.locator('tr[data-tag="hokusai_token_id"]').inner_text().split() == ["hokusai_token_id", "LSCOR", "same"]
    assert devstack_keys["writer"] not in page.content()
    # Nothing was fetched from outside the portal (htmx and CSS ship with it).
    assert all(url.startswith(live_server.url) for url in requests_seen)
