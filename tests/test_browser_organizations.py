"""Organizations in a real browser (issue 24's "done when"): developer A creates an organization, saves the
company's key, fails a check with it and reports it; she invites B by email; B opens the mailed link, joins,
reads A's failed check and report, and runs a check with the organization's key without seeing it; C, the
owner of another organization, gets 404 on each; support sees the organization on the investigation and
filters the list by it; B has everyone in the organization follow it; a manager's dashboard lists the
organization's onboarding stage."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.roles import Role
from organizations.models import Membership, Organization
from tests.conftest import _make_user, browser_sign_in, needs_chromium
from triage.models import Investigation

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_a_team_shares_a_check_a_report_and_a_key(
    browser, live_server, alice, bob, charlie, devstack, devstack_keys, settings, celery_worker
):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    base = live_server.url
    _make_user("erin", Role.DEVELOPER)  # erin@example.com, verified
    frank = _make_user("frank", Role.DEVELOPER)
    Membership.objects.create(
        organization=Organization.objects.create(name="Globex"), user=frank, role=Membership.Role.OWNER
    )
    errors: list[str] = []

    def person(username, console_errors_expected=False):
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        if not console_errors_expected:  # the outsider's 404s are logged by the browser as errors: the point
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        browser_sign_in(page, base, username)
        return page

    # A creates the organization, saves the company's (read-only) key and fails a check with it.
    owner = person("alice")
    owner.goto(f"{base}{reverse('organizations:index')}")
    owner.get_by_label("Organization name").fill("Acme Analytics")
    owner.get_by_role("button", name="Create organization").click()
    assert owner.get_by_test_id("organization-name").inner_text() == "Acme Analytics"
    owner.goto(f"{base}{reverse('onboarding:organization_key')}")
    owner.get_by_label("API key").fill(devstack_keys["reader"])
    owner.get_by_role("button", name="Save the organization's key").click()
    masked = owner.get_by_test_id("organization-masked-key").inner_text()
    owner.goto(f"{base}{reverse('onboarding:connectivity')}")
    owner.get_by_role("button", name="Run connectivity check").click()
    owner.locator('.run[data-status="failed"]').wait_for()
    check_url = owner.url
    owner.get_by_label("Anything to add (optional)").fill("Our team cannot write models.")
    owner.get_by_role("button", name="Send the report to support").click()
    owner.get_by_test_id("my-report").wait_for()
    investigation_url = f"{base}{reverse('triage:detail', args=[Investigation.objects.get().pk])}"

    # A invites B; B opens the mailed link, joins.
    owner.goto(f"{base}{reverse('organizations:index')}")
    owner.get_by_label("Invite by email").fill("erin@example.com")
    owner.get_by_role("button", name="Invite").click()
    owner.get_by_test_id("invitation").wait_for()
    link = re.search(r"http://\S+/organization/join/\S+/", mail.outbox[-1].body).group(0)
    member = person("erin")
    member.goto(link)
    member.get_by_test_id("join").click()
    member.get_by_test_id("organization-name").wait_for()
    assert member.locator("[data-testid=member]").count() == 2

    # B reads A's failed check and the investigation (not A's note), and runs a check with the key unseen.
    member.goto(check_url)
    member.locator('.run[data-status="failed"]').wait_for()
    member.goto(investigation_url)
    assert "Our team cannot write models." not in member.content()
    member.goto(f"{base}{reverse('onboarding:key')}")
    assert masked in member.get_by_test_id("organization-key").inner_text()
    member.goto(f"{base}{reverse('onboarding:connectivity')}")
    member.get_by_role("button", name="Run connectivity check").click()
    member.locator('.run[data-status="failed"]').wait_for()
    page = member.content()
    assert masked in page and "(the organization's)" in page and devstack_keys["reader"] not in page

    # B has everyone in the organization follow the investigation (one choice; members who join later too).
    member.goto(investigation_url)
    member.get_by_role("button", name="Everyone in Acme Analytics follows").click()
    assert "(erin chose it)" in member.get_by_test_id("organization-follows").inner_text()

    # C, of another organization, is told none of it exists.
    outsider = person("frank", console_errors_expected=True)
    for url in (check_url, investigation_url):
        assert outsider.goto(url).status == 404, url

    # Support sees the organization on the investigation and filters the list by it.
    support = person("bob")
    support.goto(investigation_url)
    assert "Acme Analytics" in support.get_by_test_id("report-organization").first.inner_text()
    support.goto(f"{base}{reverse('triage:index')}")
    support.get_by_label("Organization").select_option(label="Globex")
    support.get_by_text("organization: Globex").wait_for()
    assert support.locator(f"a[href$='{reverse('triage:detail', args=[Investigation.objects.get().pk])}']").count() == 0
    support.get_by_label("Organization").select_option(label="Acme Analytics")
    support.get_by_text("organization: Acme Analytics").wait_for()
    assert support.locator(f"a[href$='{reverse('triage:detail', args=[Investigation.objects.get().pk])}']").count() >= 1

    # A manager's dashboard lists each organization's onboarding stage: Acme saved a key (its owner, the
    # organization's) but no check passed yet; Globex's owner only verified the address. Neither is stuck.
    from tests.test_browser_accessibility import serious_violations

    manager = person("charlie")
    manager.goto(f"{base}{reverse('dashboard:index')}")
    acme = manager.locator("[data-testid=organization-onboarding][data-organization='Acme Analytics']")
    assert acme.get_by_test_id("organization-stage").inner_text() == "Key saved (3 of 5)"
    assert acme.get_by_test_id("organization-stuck").inner_text() == "No"
    assert "erin" in acme.inner_text() and "alice (owner)" in acme.inner_text()
    globex = manager.locator("[data-testid=organization-onboarding][data-organization='Globex']")
    assert globex.get_by_test_id("organization-stage").inner_text() == "Email verified (2 of 5)"
    assert serious_violations(manager) == []
    assert not errors, errors


def test_organization_pages_have_no_serious_accessibility_violations(browser, live_server, alice):
    """The organization's pages (members and invitations, a confirmation, the invitation link signed out and
    in, the organization's key) pass axe-core's WCAG 2.2 AA rules with no serious or critical violation."""
    from tests.conftest import objects_owned_by, owned_invitation_token
    from tests.test_browser_accessibility import serious_violations

    ids = objects_owned_by(alice)  # alice owns an organization with a teammate and an open invitation
    base = live_server.url
    join = reverse("organizations:join", kwargs={"invitation_token": owned_invitation_token(alice)})
    found: list[str] = []
    visitor = browser.new_context().new_page()
    visitor.goto(f"{base}{join}")
    found += serious_violations(visitor)
    page = browser.new_context().new_page()
    browser_sign_in(page, base, "alice")
    for url in (
        reverse("organizations:index"),
        reverse("organizations:member_remove", args=[ids["organizations:member_remove"]]),
        reverse("organizations:leave"),
        reverse("onboarding:organization_key"),
        join,
    ):
        page.goto(f"{base}{url}")
        found += serious_violations(page)
    assert found == [], "\n".join(found)
