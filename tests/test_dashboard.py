"""Managers' dashboard: headline numbers on a hand-built data set with known answers, access, CSV,
and a query count that does not grow with the data."""

import csv
import io
import random
import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.services import user_create
from onboarding.models import CheckRun, DeveloperProgress
from triage import services, stats
from triage.models import Component, Finding, Investigation

NOW = timezone.now()


def make(
    bob,
    title,
    *,
    days_ago=30,
    resolved_after_days=None,
    severity="high",
    status="investigating",
    component_names=(),
    **extra,
):
    investigation, _ = services.investigation_create(
        actor=bob,
        data={
            "title": title,
            "severity": severity,
            "status": status,
            "created_at": NOW - timedelta(days=days_ago),
            **extra,
        },
        findings=[{"title": f"{title} finding", "status": "verified", "verdict_reason": "seen"}],
        component_names=component_names,
    )
    if resolved_after_days is not None:
        Investigation.objects.filter(pk=investigation.pk).update(
            status="resolved",
            resolution="fixed",
            resolved_at=investigation.created_at + timedelta(days=resolved_after_days),
        )
        stats.refresh_investigations([investigation.pk])  # update() bypasses the signals
    return investigation


@pytest.fixture
def known_data(bob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the stats refresh when a transaction commits
        make(bob, "A", resolved_after_days=2, days_ago=20)
        make(bob, "B", resolved_after_days=4, days_ago=20, severity="critical")
        make(bob, "C", resolved_after_days=9, days_ago=20)
        make(bob, "D open critical", severity="critical", days_ago=5, next_review=(NOW - timedelta(days=1)).date())
        make(bob, "E open low", severity="low", days_ago=50)
    Investigation.objects.filter(title="D open critical").update(updated_at=NOW - timedelta(hours=30))


def test_headline_numbers_match_the_known_answers(client, charlie, known_data):
    client.force_login(charlie)
    html = client.get(reverse("dashboard:index")).content.decode()
    assert 'data-testid="ttr-p50">4.0<' in html  # 2, 4, 9 days -> p50 4
    assert 'data-testid="ttr-p90">8.0<' in html  # percentile_cont: 4 + 0.8 * (9 - 4)
    assert re.search(r'<th scope="row">High</th><td>5.5</td><td>8.3</td><td><a [^>]*>2</a>', html)  # A, C: 2, 9 days
    assert re.search(r'<th scope="row">Critical</th><td>4.0</td><td>4.0</td><td><a [^>]*>1</a>', html)
    assert "<strong>2</strong> open" in html
    assert "<strong>1</strong> past their next review" in html
    assert "<strong>1</strong> critical without an update for 24 h" in html
    assert re.search(r'data-testid="findings-verified" href="[^"]*">5<', html)  # one verified finding each
    assert "E open low" in html.split("Oldest unresolved")[1].split("</ol>")[0]  # oldest first
    assert html.count("<svg") >= 2  # the trend and the funnel, drawn by the server
    assert "<script" not in html.split("</head>")[1]  # no script in the body: the CSP would refuse it


def test_filters_narrow_the_numbers_and_links_carry_them(client, charlie, known_data):
    client.force_login(charlie)
    html = client.get(reverse("dashboard:index") + "?severity=critical").content.decode()
    assert "<strong>1</strong> open" in html
    assert 'data-testid="ttr-p50">4.0<' in html  # only B: 4 days
    assert "?status=open&severity=critical" in html
    link_target = client.get(reverse("triage:index") + "?overdue=1").content.decode()
    assert "D open critical" in link_target and "E open low" not in link_target
    assert client.get(reverse("dashboard:index") + "?start=not-a-date&component=x").status_code == 200
    assert client.get(reverse("dashboard:index") + "?start=0001-01-01&end=9999-12-31").status_code == 200  # ignored


def test_developers_get_403_on_the_dashboard_and_the_api(client, alice):
    client.force_login(alice)
    assert client.get(reverse("dashboard:index")).status_code == 403
    assert client.get(reverse("api_status")).status_code == 403
    client.logout()
    assert client.get(reverse("api_status")).status_code == 401


def test_the_api_answers_a_token_or_a_manager_session(client, settings, charlie, known_data):
    settings.STATUS_API_TOKENS = ["s3cret-status-token"]
    payload = client.get(reverse("api_status"), headers={"Authorization": "Bearer s3cret-status-token"}).json()
    assert payload["open"] == 2
    assert payload["time_to_resolution_days"] == {"p50": 4.0, "p90": 8.0, "n": 3}
    assert client.get(reverse("api_status"), headers={"Authorization": "Bearer wrong"}).status_code == 401
    # Non-ASCII made str comparison raise (a 500, and a debug page showing the token with DEBUG on).
    assert client.get(reverse("api_status"), headers={"Authorization": "Bearer é"}).status_code == 401
    client.force_login(charlie)
    assert client.get(reverse("api_status")).json()["open_by_severity"]["critical"] == 1
    assert client.post(reverse("api_status")).status_code == 405  # read-only


def test_the_csv_opens_with_the_filters_applied(client, charlie, known_data):
    client.force_login(charlie)
    response = client.get(reverse("dashboard:csv") + "?severity=critical")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["number", "title", "severity", "status"]
    assert sorted(r[1] for r in rows[1:]) == ["B", "D open critical"]


def test_the_funnel_counts_milestones(client, charlie, db):
    for index in range(4):
        dev = user_create(username=f"dev{index}", password="x-long-password-1", role=Role.DEVELOPER)
        progress = DeveloperProgress.objects.get(user=dev)
        if index < 3:
            progress.key_saved_at = NOW
        if index < 2:
            progress.connectivity_passed_at = NOW
        if index < 1:
            progress.registered_at = progress.signed_up_at + timedelta(hours=5)
        progress.save()
        CheckRun.objects.create(
            user=dev, status="failed", cause="REGISTRY_ADMIN_REQUIRED", registry_url="x", deadline_at=NOW
        )
    client.force_login(charlie)
    html = client.get(reverse("dashboard:index")).content.decode()
    for key, count in (("signed_up", 4), ("key_saved", 3), ("connectivity_passed", 2), ("registered", 1)):
        assert f'data-testid="funnel-{key}">{count}<' in html
    assert "REGISTRY_ADMIN_REQUIRED" in html and "5.0 h" in html


def build(bob, size: int) -> Investigation:
    dev = user_create(username=f"qdev{size}", password="x-long-password-1", role=Role.DEVELOPER)
    last = None
    for index in range(size):
        last = make(
            bob,
            f"Q{size}-{index}",
            days_ago=index % 80,
            resolved_after_days=(index % 7) if index % 3 == 0 else None,
            severity=("critical", "high", "medium", "low")[index % 4],
        )
        services.comment_add(investigation=last, actor=bob, body="note")
        CheckRun.objects.create(user=dev, status="failed", cause="AUTH_KEY_REJECTED", registry_url="x", deadline_at=NOW)
    return last


def query_counts(client, investigation) -> dict[str, int]:
    pages = {
        "dashboard": reverse("dashboard:index"),
        "dashboard filtered": reverse("dashboard:index") + "?severity=high&start=2020-01-01",
        "api": reverse("api_status"),
        "list": reverse("triage:index"),
        "list filtered": reverse("triage:index") + "?severity=critical&status=open",
        "list search": reverse("triage:index") + "?q=Q",
        "detail": reverse("triage:detail", args=[investigation.pk]),
    }
    counts = {}
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts[name] = len(queries)
    return counts


def test_query_counts_do_not_grow_with_the_data(client, bob, django_capture_on_commit_callbacks):
    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        small_data = build(bob, 6)
    small = query_counts(client, small_data)
    with django_capture_on_commit_callbacks(execute=True):
        large_data = build(bob, 60)
    large = query_counts(client, large_data)
    assert small == large


NUMBER_LINK = re.compile(
    r'<a [^>]*href="(?P<href>/(?:triage|onboarding)/[^"]*)"[^>]*>(?:<strong>)?(?P<n>\d+)(?:</strong>)?'
)


def test_every_number_links_to_a_list_of_that_many(client, bob, charlie, django_capture_on_commit_callbacks):
    """Follow each number's link and count what the list shows. Some investigations hold two findings with
    the same verdict, so a finding number must lead to a list of findings, not of investigations."""
    rng = random.Random(2)
    component = Component.objects.order_by("name").first()
    dev = user_create(username="linkdev", password="x-long-password-1", role=Role.DEVELOPER)
    with django_capture_on_commit_callbacks(execute=True):
        for index in range(40):
            days_ago = rng.randint(0, 90)
            investigation = make(
                bob,
                f"L{index}",
                days_ago=days_ago,
                severity=rng.choice(["critical", "high", "medium", "low"]),
                status=rng.choice(["new", "investigating", "fixing"]),
                component_names=[component.name] if index % 3 == 0 else [],
                resolved_after_days=rng.choice([None, rng.uniform(0, days_ago)]),
                next_review=(NOW + timedelta(days=rng.randint(-5, 5))).date(),
            )
            verdict = rng.choice(Finding.Status.values)
            if index % 4 == 0:  # a second finding with the same verdict
                Finding.objects.create(investigation=investigation, title="twin", position=2)
            investigation.findings.update(status=verdict)
            if index % 2:  # closed keeps its resolved_at: time to resolution counts it too
                Investigation.objects.filter(pk=investigation.pk, status="resolved").update(status="closed")
            stats.refresh_investigations([investigation.pk])
    for cause in ("AUTH_KEY_REJECTED", "AUTH_KEY_REJECTED", "REGISTRY_ADMIN_REQUIRED"):
        CheckRun.objects.create(user=dev, status="failed", cause=cause, registry_url="x", deadline_at=NOW)
    client.force_login(charlie)
    checked = 0
    for query in ("", f"?severity=high&start={(NOW - timedelta(days=40)).date()}", f"?component={component.pk}"):
        html = client.get(reverse("dashboard:index") + query).content.decode()
        for link in NUMBER_LINK.finditer(html):
            href, shown = unescape(link["href"]), int(link["n"])
            page = client.get(href).content.decode()
            if href.startswith("/onboarding/"):
                listed = int(re.search(r'data-testid="history-count">(\d+)<', page)[1])
            elif href.startswith(reverse("triage:findings")):
                found = re.search(r"· (\d+) findings?\b", page)
                listed = int(found[1]) if found else 0
                assert found or "No findings match" in page, page[page.find("<main>") :][:3000]
                assert "Showing only:" in page, href  # the list says which filters are on
            else:
                found = re.search(r"(\d+) investigations", page)
                listed = int(found[1]) if found else 0
                assert found or "No investigation matches" in page, href
            assert listed == shown, (
                f"{query or 'unfiltered'}: {href} lists {listed}, the dashboard says {shown}",
                page[page.find("<main>") :][:1500],
            )
            checked += 1
    assert checked > 60


def test_a_manager_reads_the_runs_a_cause_counts_without_their_owners_buttons(client, charlie, db):
    dev = user_create(username="causedev", password="x-long-password-1", role=Role.DEVELOPER)
    runs = [
        CheckRun.objects.create(
            user=dev, status="failed", cause="REGISTRY_ADMIN_REQUIRED", registry_url="x", deadline_at=NOW
        )
        for _ in range(27)
    ]
    CheckRun.objects.create(user=dev, status="passed", cause="OK", registry_url="x", deadline_at=NOW)
    client.force_login(charlie)
    since = (NOW - timedelta(days=7)).date().isoformat()
    first = client.get(reverse("onboarding:history") + f"?cause=REGISTRY_ADMIN_REQUIRED&failed=1&since={since}")
    html = first.content.decode()
    assert 'data-testid="history-count">27<' in html and "causedev" in html
    older = re.search(r'href="\?([^"]*)">Older', html)[1]
    assert older == f"cause=REGISTRY_ADMIN_REQUIRED&amp;failed=1&amp;since={since}&page=2", older  # keeps the filters
    run_page = client.get(reverse("onboarding:check_run", args=[runs[0].pk])).content.decode()
    assert "REGISTRY_ADMIN_REQUIRED" in run_page
    assert "Run the check again" not in run_page and "report-problem" not in run_page
    for query in ("?since=not-a-date&failed=x", "?since=9999-12-31", "?since=0001-01-01"):
        assert client.get(reverse("onboarding:history") + query).status_code == 200
