"""Managers' dashboard: headline numbers on a hand-built data set with known answers, access, CSV,
and a query count that does not grow with the data."""

import csv
import io
import random
import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth import get_user_model
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
            progress.email_verified_at = progress.key_saved_at = NOW
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
    for key, count in (
        ("signed_up", 4),
        ("email_verified", 3),
        ("key_saved", 3),
        ("connectivity_passed", 2),
        ("registered", 1),
    ):
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
    client.get(reverse("home"))  # the session's first request records it (allauth.usersessions): not counted
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


# --- onboarding per organization (issue 24) ----------------------------------------------------------------


def developer(name: str, organization, *, signed_up: int, role: str = "member", **milestones: int):
    """A developer in `organization` who signed up `signed_up` days ago and reached each milestone
    (`email_verified=19`, …) that many days ago."""
    from organizations.models import Membership

    user = get_user_model().objects.create_user(username=name, email=f"{name}@example.com")  # no password: quick
    DeveloperProgress.objects.create(
        user=user,
        signed_up_at=NOW - timedelta(days=signed_up),
        **{f"{key}_at": NOW - timedelta(days=days) for key, days in milestones.items()},
    )
    if organization is not None:
        Membership.objects.create(organization=organization, user=user, role=role)
    return user


ROW = re.compile(
    r'<tr data-testid="organization-onboarding" data-organization="(?P<name>[^"]*)" data-stage="(?P<stage>\w+)" '
    r'data-stuck="(?P<stuck>[01])">(?P<html>.*?)</tr>',
    re.S,
)


def organization_rows(html: str) -> list[dict]:
    rows = []
    for row in ROW.finditer(html):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row["html"], re.S)
        rows.append(
            {
                "name": row["name"],
                "stage": row["stage"],
                "stuck": row["stuck"] == "1",
                "members": re.sub(r"<[^>]+>", "", cells[1]).split()[0].rstrip(":"),
                "stage_shown": re.sub(r"<[^>]+>", "", cells[2]).strip(),
                "days": int(cells[3]),
                "stuck_shown": re.sub(r"<[^>]+>", "", cells[5]).strip(),
                "html": row["html"],
            }
        )
    return rows


@pytest.fixture
def organizations_at_stages(db):
    from organizations.models import Membership, Organization

    stuck = Organization.objects.create(name="Stuck Co")
    developer("stuck-owner", stuck, role="owner", signed_up=20, email_verified=19, key_saved=15)
    developer("stuck-mate", stuck, signed_up=18, email_verified=18)
    # A former member registered a model: it does not count for the organization once they left.
    former = developer("stuck-former", stuck, signed_up=18, email_verified=18, connectivity_passed=2, registered=1)
    Membership.objects.filter(user=former).delete()
    slow = Organization.objects.create(name="Slow Co")
    developer("slow-owner", slow, role="owner", signed_up=9)  # never verified the address: 9 days, stuck
    team = Organization.objects.create(name="Team Co")
    developer("team-owner", team, role="owner", signed_up=40, email_verified=39)
    # A newer member passed connectivity with the organization's key two days ago (no key of their own).
    developer("team-newcomer", team, signed_up=3, email_verified=3, connectivity_passed=2)
    fresh = Organization.objects.create(name="Fresh Co")
    developer("fresh-owner", fresh, role="owner", signed_up=3, email_verified=3)
    done = Organization.objects.create(name="Done Co")
    developer("done-owner", done, role="owner", signed_up=35, email_verified=35, key_saved=34, connectivity_passed=34)
    developer("done-mate", done, signed_up=31, email_verified=31, key_saved=30, connectivity_passed=30, registered=30)
    developer("loner", None, signed_up=50)  # in no organization: not a row
    # Failed checks in the last 7 days: one cause hits two organizations, another three developers of one.
    users = {u.username: u for u in get_user_model().objects.all()}
    for name, organization, cause in (
        ("stuck-owner", stuck, "AUTH_KEY_REJECTED"),
        ("team-owner", team, "AUTH_KEY_REJECTED"),
        ("done-owner", done, "REGISTRY_ADMIN_REQUIRED"),
        ("done-mate", done, "REGISTRY_ADMIN_REQUIRED"),
        ("stuck-former", None, "REGISTRY_ADMIN_REQUIRED"),  # after leaving: in no organization
        ("loner", None, "REGISTRY_ADMIN_REQUIRED"),
    ):
        CheckRun.objects.create(
            user=users[name],
            organization=organization,
            status="failed",
            cause=cause,
            registry_url="x",
            deadline_at=NOW,
            created_at=NOW - timedelta(days=1),
        )


def test_a_manager_sees_each_organizations_stage_with_the_stuck_ones_first(client, charlie, organizations_at_stages):
    client.force_login(charlie)
    html = client.get(reverse("dashboard:index")).content.decode()
    rows = organization_rows(html)
    assert [(r["name"], r["stage"], r["stuck"], r["days"]) for r in rows] == [
        ("Stuck Co", "key_saved", True, 20),  # key saved 15 days ago, nothing since: stuck longest
        ("Slow Co", "signed_up", True, 9),  # signed up 9 days ago, never verified the address
        ("Fresh Co", "email_verified", False, 3),  # then the longest without a further stage
        ("Team Co", "connectivity_passed", False, 40),  # the newcomer's pass (2 days ago) counts for the team
        ("Done Co", "registered", False, 35),  # a registered model: done, never stuck
    ]
    stuck, slow, fresh, team, done = rows
    assert stuck["stage_shown"] == "Key saved (3 of 5)" and stuck["stuck_shown"] == "Stuck"
    assert stuck["members"] == "2" and "stuck-owner (owner)" in stuck["html"] and "stuck-former" not in html
    assert team["stage_shown"] == "Connectivity passed (4 of 5)" and team["stuck_shown"] == "No"
    assert done["stage_shown"] == "Model registered (5 of 5)" and done["stuck_shown"] == "Done"
    assert "loner" not in html.split('id="organizations"')[1]
    assert 'data-testid="organizations-total">5<' in html and 'data-testid="organizations-stuck">2<' in html
    # Top failure causes by organizations affected: AUTH_KEY_REJECTED hit two customers, REGISTRY_ADMIN_REQUIRED
    # one (though three developers, of whom only two in an organization) ...
    causes = re.findall(
        r'data-testid="organization-cause" data-cause="(\w+)">.*?"organization-cause-organizations">(\d+)<.*?<td>(\d+)</td>',
        html,
    )
    assert causes == [("AUTH_KEY_REJECTED", "2", "2"), ("REGISTRY_ADMIN_REQUIRED", "1", "2")]
    # ... while the per-developer table ranks REGISTRY_ADMIN_REQUIRED first (four developers).
    per_developer = re.findall(r'data-testid="top-cause" data-source="check"><td><code>(\w+)</code>', html)
    assert per_developer[0] == "REGISTRY_ADMIN_REQUIRED"


def test_the_date_range_selects_organizations_by_their_first_sign_up(client, bob, organizations_at_stages):
    client.force_login(bob)  # support engineers read the dashboard too
    start = (NOW - timedelta(days=10)).date().isoformat()
    html = client.get(reverse("dashboard:index") + f"?start={start}").content.decode()
    assert [r["name"] for r in organization_rows(html)] == ["Slow Co", "Fresh Co"]
    end = (NOW - timedelta(days=30)).date().isoformat()
    html = client.get(reverse("dashboard:index") + f"?end={end}").content.decode()
    assert [r["name"] for r in organization_rows(html)] == ["Team Co", "Done Co"]
    for query in ("?org_page=x", "?org_page=999", "?org_page=-1"):
        assert client.get(reverse("dashboard:index") + query).status_code == 200


def test_the_api_names_the_organizations_stages(client, charlie, settings, organizations_at_stages):
    settings.STATUS_API_TOKENS = ["s3cret-status-token"]
    payload = client.get(reverse("api_status"), headers={"Authorization": "Bearer s3cret-status-token"}).json()
    by_organization = payload["onboarding_by_organization"]
    assert (by_organization["organizations"], by_organization["stuck"]) == (5, 2)
    assert by_organization["first_page"][0] == {
        "name": "Stuck Co",
        "members": 2,
        "stage": "key_saved",
        "days_since_sign_up": 20,
        "days_at_stage": 15,
        "stuck": True,
    }
    assert payload["top_failure_causes_by_organizations_7d"][0] == {
        "cause": "AUTH_KEY_REJECTED",
        "organizations": 2,
        "users": 2,
        "runs": 2,
    }


def many_organizations(count: int, start: int = 0) -> None:
    from organizations.models import Organization

    for index in range(start, start + count):
        organization = Organization.objects.create(name=f"Org {index:04d}")
        developer(f"o{index}-owner", organization, role="owner", signed_up=index % 20, email_verified=index % 20)
        developer(f"o{index}-mate", organization, signed_up=index % 15, key_saved=index % 9)


def test_the_organizations_cost_the_same_queries_at_3_and_at_60_organizations(client, charlie):
    from dashboard.selectors import DashboardFilters, organizations_onboarding

    client.force_login(charlie)
    client.get(reverse("home"))  # the session's first request records it: not counted

    def counts() -> dict[str, int]:
        result = {}
        for name, url in (
            ("dashboard", reverse("dashboard:index")),
            ("dashboard page 2", reverse("dashboard:index") + "?org_page=2&start=2000-01-01"),
            ("api", reverse("api_status")),
        ):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            result[name] = len(queries)
        with CaptureQueriesContext(connection) as queries:
            organizations_onboarding(DashboardFilters(), NOW)
        result["the organizations' block"] = len(queries)
        return result

    many_organizations(3)
    small = counts()
    many_organizations(57, start=3)
    large = counts()
    assert small == large
    assert small["the organizations' block"] == 3  # the totals, one page, that page's members
    html = client.get(reverse("dashboard:index") + "?org_page=3").content.decode()
    assert len(organization_rows(html)) == 10 and "Page 3 of 3" in html  # 25 a page
    assert "org_page=2#organizations" in html  # back a page, keeping the filters
