""" "Report a problem" from a failed check: grouped by fingerprint like Sentry, seen only by its
reporters, re-runnable by support when the reporter agreed."""

import pytest
from django.urls import reverse

from accounts.roles import Role
from accounts.services import user_create
from onboarding import services as onboarding
from onboarding.models import CheckRun
from tests.conftest import PASSWORD, key_appears_in_database, wait_for_run
from triage import reports, services
from triage.models import Investigation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    return celery_worker


def failed_run(user, key, devstack, settings) -> CheckRun:
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    onboarding.api_key_save(user=user, raw_key=key)
    run = wait_for_run(onboarding.connectivity_check_start(user=user).pk)
    assert run.status == CheckRun.Status.FAILED
    return run


def report(client, user, run, consent=False):
    client.force_login(user)
    data = {"note": "Blocked since this morning"}
    if consent:
        data["consent_rerun"] = "on"
    return client.post(reverse("triage:report_problem", args=[run.pk]), data, follow=True)


def test_two_failures_with_the_same_fingerprint_land_in_one_investigation(
    client, alice, dave, bob, devstack, devstack_keys, settings
):
    alice_run = failed_run(alice, devstack_keys["reader"], devstack, settings)
    dave_run = failed_run(dave, devstack_keys["reader"], devstack, settings)
    first = report(client, alice, alice_run, consent=True)
    assert "Reported as INV-" in first.content.decode()
    second = report(client, dave, dave_run)
    assert "your report was added to INV-" in second.content.decode()
    investigation = Investigation.objects.get()
    assert investigation.reports.count() == 2
    assert investigation.fingerprint == f"connectivity:write:WRITE_PERMISSION_DENIED:{run_version(alice_run)}"
    assert investigation.findings.get().evidence.count("Write permission") == 1
    assert key_appears_in_database(devstack_keys["reader"]) == []
    client.force_login(bob)
    assert (
        'data-testid="affected">2 affected users'
        in client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    )


def run_version(run) -> str:
    return run.steps.get(name="identity").evidence["version"]


def test_a_reporter_sees_their_report_and_nobody_elses(client, alice, bob, devstack, devstack_keys, settings):
    erin = user_create(username="erin", password=PASSWORD, role=Role.DEVELOPER)
    run = failed_run(alice, devstack_keys["reader"], devstack, settings)
    report(client, alice, run)
    investigation = Investigation.objects.get()
    services.comment_add(investigation=investigation, actor=bob, body="internal: check gateway scopes", internal=True)
    services.comment_add(investigation=investigation, actor=bob, body="We are looking at it", internal=False)
    client.force_login(alice)
    assert investigation.number in client.get(reverse("triage:my_reports")).content.decode()
    page = client.get(reverse("triage:detail", args=[investigation.pk])).content.decode()
    assert "We are looking at it" in page and "check gateway scopes" not in page
    client.force_login(erin)
    assert investigation.number not in client.get(reverse("triage:my_reports")).content.decode()
    assert client.get(reverse("triage:detail", args=[investigation.pk])).status_code == 404
    for name in ("edit", "export", "transition", "comment"):
        method = client.get if name in ("edit", "export") else client.post
        assert method(reverse(f"triage:{name}", args=[investigation.pk])).status_code == 403, name
    finding = investigation.findings.get()
    assert client.post(reverse("triage:finding_status", args=[finding.pk]), {"status": "resolved"}).status_code == 403
    assert client.post(reverse("triage:report_problem", args=[run.pk])).status_code == 403  # not erin's run


def test_support_re_runs_the_check_for_a_reporter_who_agreed(
    client, alice, dave, bob, devstack, devstack_keys, settings
):
    alice_run = failed_run(alice, devstack_keys["reader"], devstack, settings)
    dave_run = failed_run(dave, devstack_keys["reader"], devstack, settings)
    report(client, alice, alice_run, consent=True)
    report(client, dave, dave_run, consent=False)
    investigation = Investigation.objects.get()
    alice_report = investigation.reports.get(reporter=alice)
    dave_report = investigation.reports.get(reporter=dave)
    onboarding.api_key_save(user=alice, raw_key=devstack_keys["writer"])  # the fix: alice got a writer key
    client.force_login(bob)
    response = client.post(reverse("triage:rerun", args=[alice_report.pk]))
    new_run = wait_for_run(int(response["Location"].rstrip("/").rsplit("/", 1)[-1]))
    assert new_run.user == alice and new_run.status == CheckRun.Status.PASSED
    assert investigation.timeline.filter(kind="rerun", new=str(new_run.pk)).exists()
    response = client.post(reverse("triage:rerun", args=[dave_report.pk]), follow=True)
    assert "did not agree" in response.content.decode()


def test_a_passed_check_cannot_be_reported(client, alice, devstack, devstack_keys, settings):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    onboarding.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    run = wait_for_run(onboarding.connectivity_check_start(user=alice).pk)
    response = report(client, alice, run)
    assert "Only a failed check can be reported." in response.content.decode()
    assert not Investigation.objects.exists()


def test_two_first_reports_at_once_open_one_investigation(alice, dave, monkeypatch):
    """Nobody has reported this fingerprint yet and two developers report it at the same moment: the
    second waits for the first and joins its investigation instead of opening a twin."""
    import threading
    import time

    from django.db import connection
    from django.utils import timezone

    runs = []
    for user in (alice, dave):
        run = CheckRun.objects.create(
            user=user,
            status="failed",
            cause="REGISTRY_ADMIN_REQUIRED",
            registry_url="https://registry.example",
            key_masked="hk_live_abcd…yz",
            deadline_at=timezone.now(),
        )
        run.steps.create(position=1, name="auth", title="Authentication", status="fail", cause=run.cause, message="403")
        runs.append(run)
    create = reports.investigation_create

    def slow_create(**kwargs):  # widen the window between "none open yet" and the new row's commit
        time.sleep(0.5)
        return create(**kwargs)

    monkeypatch.setattr(reports, "investigation_create", slow_create)
    errors = []

    def report_run(run):
        try:
            reports.problem_report(run=run, reporter=run.user)
        except Exception as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=report_run, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    investigation = Investigation.objects.get()  # one, not two
    assert sorted(investigation.reports.values_list("reporter__username", flat=True)) == ["alice", "dave"]


def test_a_second_reporter_sees_nothing_of_the_first_reporters_report(
    client, alice, dave, bob, devstack, devstack_keys, settings
):
    """Seen: dave, joining alice's investigation, read alice's note, her masked key and her check number,
    and the "Registry read" step named another developer's model, copied into the evidence."""
    import html

    import requests

    someone_elses = "zz-someone-elses-private-model"  # first in the registry's list, if it names any
    requests.post(
        f"{devstack.url}/api/2.0/mlflow/registered-models/create",
        json={"name": someone_elses},
        headers={"Authorization": f"Bearer {devstack_keys['other']}"},
        timeout=10,
    )
    alice_run = failed_run(alice, devstack_keys["reader"], devstack, settings)
    dave_run = failed_run(dave, devstack_keys["reader"], devstack, settings)
    client.force_login(alice)
    client.post(reverse("triage:report_problem", args=[alice_run.pk]), {"note": "alice's private words"})
    client.force_login(dave)
    landed = client.post(
        reverse("triage:report_problem", args=[dave_run.pk]), {"note": "dave's own words"}, follow=True
    )
    page = html.unescape(landed.content.decode())
    assert landed.request["PATH_INFO"] == reverse("triage:detail", args=[Investigation.objects.get().pk])
    assert "dave's own words" in page and f"check #{dave_run.pk}" in page  # his own report, on his page
    assert "alice" not in page.lower()
    assert f"#{alice_run.pk}<" not in page and f"#{alice_run.pk} " not in page  # (both used the reader key)
    assert someone_elses not in page
    # What the investigation itself holds is what every reporter reads: nothing of one reporter in it.
    investigation = Investigation.objects.get()
    public = " ".join(
        [investigation.title, investigation.summary, str(investigation.environment)]
        + [f"{f.title} {f.description} {f.evidence}" for f in investigation.findings.all()]
    )
    for private in ("alice's private words", alice_run.key_masked, dave_run.key_masked, someone_elses):
        assert private not in public, private
    # Staff read both reports, each with its note.
    client.force_login(bob)
    staff_page = html.unescape(client.get(reverse("triage:detail", args=[investigation.pk])).content.decode())
    assert staff_page.count('data-testid="report"') == 2
    assert "alice's private words" in staff_page and "dave's own words" in staff_page
