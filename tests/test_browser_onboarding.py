"""A developer in a real browser (Debian's chromium, driven by Playwright): sign in -> key -> the
connectivity check passes, its steps appearing live through htmx polling -> register -> result page."""

import os

import pytest

from onboarding.models import CheckRun
from tests.conftest import CHROMIUM, PASSWORD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


def test_developer_signs_in_saves_a_key_and_watches_the_check_pass(
    browser_page, live_server, alice, devstack, devstack_keys, settings, celery_worker
):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    page = browser_page
    requests_seen = []
    page.on("request", lambda request: requests_seen.append(request.url))

    page.goto(f"{live_server.url}/")
    page.get_by_label("Username or email").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

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
    # Steps arrived by polling the partial, not by reloading the page.
    polls = [url for url in requests_seen if url.endswith(f"/onboarding/checks/{run.pk}/")]
    assert len(polls) >= 2

    page.get_by_role("link", name="Continue to registration").click()
    run_id = devstack.state()["run_id"]
    page.get_by_label("Model URI").fill(f"runs:/{run_id}/model")
    page.get_by_label("Model name", exact=True).fill("LSCOR_Browser_Model")
    page.get_by_label("Token id").fill("LSCOR")
    page.get_by_label("Metric name").fill("accuracy")
    page.get_by_label("Baseline value").fill("0.92")
    page.get_by_role("button", name="Check and register").click()
    page.locator('[data-step="verify"][data-status="pass"]').wait_for(timeout=60_000)
    assert page.get_by_test_id("version").inner_text() == "1"
    assert "hokusai_token_id" in page.get_by_test_id("registration").inner_text()
    assert 'os.environ["HOKUSAI_API_KEY"]' in page.get_by_test_id("snippet").inner_text()
    assert devstack_keys["writer"] not in page.content()
    # Nothing was fetched from outside the portal (htmx and CSS ship with it).
    assert all(url.startswith(live_server.url) for url in requests_seen)
