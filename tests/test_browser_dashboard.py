"""A manager in a real browser (Debian's chromium, driven by Playwright): the dashboard loads with
nothing fetched from elsewhere, a filter narrows it, and a number leads to the investigations it counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import browser_sign_in, needs_chromium
from triage import services

pytestmark = [
    pytest.mark.django_db(transaction=True),  # real commits: the dashboard's stats refresh on commit
    needs_chromium,
]


def test_a_manager_filters_the_dashboard_and_follows_a_number(browser_page, live_server, bob, charlie):
    now = timezone.now()
    for title, severity, days_ago in (
        ("Registry lock blocks uploads", "critical", 3),
        ("SDK docs disagree", "medium", 10),
        ("Token prefix confusion", "low", 40),
    ):
        services.investigation_create(
            actor=bob, data={"title": title, "severity": severity, "created_at": now - timedelta(days=days_ago)}
        )
    page = browser_page
    requests_seen = []
    page.on("request", lambda request: requests_seen.append(request.url))

    # allauth's sign-in page (with "Sign in with a passkey" beside it); staff then give their TOTP code.
    browser_sign_in(page, live_server.url, "charlie")
    page.goto(f"{live_server.url}/")
    page.get_by_role("heading", name="Resolution dashboard").wait_for()  # a manager lands here
    assert page.get_by_test_id("open").inner_text() == "3 open"
    assert page.locator("svg").count() >= 2  # the trend and the funnel, drawn by the server

    page.get_by_label("Severity").select_option("critical")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**severity=critical**")
    assert page.get_by_test_id("open").inner_text() == "1 open"
    assert page.locator("table tbody th", has_text="Medium").count() == 0  # only the filtered severity's rows

    page.get_by_test_id("open").click()
    page.get_by_text("1 investigations").wait_for()
    assert "Registry lock blocks uploads" in page.content() and "SDK docs disagree" not in page.content()
    assert all(url.startswith(live_server.url) for url in requests_seen), "the pages fetched something from elsewhere"
