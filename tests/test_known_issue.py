"""A failed check that matches an open investigation says so at the failure, before anything else: its
public title and status, how many others hit it, the latest public update, the workaround; "This is me too"
joins it in one click. The dashboard counts joined reports against new investigations, per week."""

import pytest
from django.test import Client

from tests.conftest import objects_owned_by
from triage import services
from triage.models import Investigation, Report

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def known(dave, bob):
    """Dave's failed check opened an investigation; support replied in public and wrote a workaround."""
    run_id = objects_owned_by(dave)["run_id"]
    client_for(dave).post(f"/triage/reports/from-check/{run_id}/", {"note": "mine too"})
    investigation = Investigation.objects.get(reports__reporter=dave, fingerprint__startswith="connectivity:")
    services.investigation_update(
        investigation=investigation, actor=bob, mitigations="Use your hk_test_ key until Friday."
    )
    services.comment_add(
        investigation=investigation, actor=bob, body="We are rotating the gateway's keys.", internal=False
    )
    services.comment_add(investigation=investigation, actor=bob, body="dave's key is in vault/12", internal=True)
    return investigation


def test_the_check_page_names_the_known_issue_and_me_too_joins_it(alice, known):
    run_id = objects_owned_by(alice)["run_id"]
    client = client_for(alice)
    page = client.get(f"/onboarding/checks/{run_id}/").content.decode()
    card = page.split('data-testid="known-issue"')[1].split("</section>")[0]
    assert known.title in card and "1 other developer hit this" in card
    assert "We are rotating the gateway&#x27;s keys." in card and "vault" not in page
    assert "Use your hk_test_ key until Friday." in card
    assert page.index('data-testid="known-issue"') < page.index('data-testid="run-state"')  # before anything else
    before = Investigation.objects.count()
    answer = client.post(f"/triage/reports/from-check/{run_id}/", {})
    assert answer.status_code == 302 and Investigation.objects.count() == before  # joined, nothing new
    report = Report.objects.get(investigation=known, reporter=alice)
    assert report.joined is True
    assert Report.objects.get(investigation=known, reporter=known.reporter).joined is False
    again = client.get(f"/onboarding/checks/{run_id}/").content.decode()
    assert "you and 1 other reported it" in again and 'data-testid="me-too"' not in again


def test_a_resolved_investigation_is_no_known_issue(alice, bob, known):
    services.investigation_transition(investigation=known, actor=bob, status="resolved", resolution="cannot_reproduce")
    page = client_for(alice).get(f"/onboarding/checks/{objects_owned_by(alice)['run_id']}/").content.decode()
    assert 'data-testid="known-issue"' not in page


def test_the_dashboard_counts_joined_against_new_reports(alice, charlie, known):
    client_for(alice).post(f"/triage/reports/from-check/{objects_owned_by(alice)['run_id']}/", {})
    page = client_for(charlie).get("/dashboard/").content.decode()
    row = page.split('data-testid="deflection-week"')[-1].split("</tr>")[0]
    joined, new = Report.objects.filter(joined=True).count(), Report.objects.filter(joined=False).count()
    assert joined == 1  # alice's; the others opened investigations (dave's, and the fixtures' own)
    assert f"<td>{joined}</td><td>{new}</td><td>{round(100 * joined / (joined + new))} %</td>" in row
