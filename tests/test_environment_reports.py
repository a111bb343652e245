"""Doctor reports read back by the portal: pasted or uploaded in "Your environment" or with "Report a problem",
validated, redacted again, compared with the saved key, shown as a table, read by support, counted on the
dashboard. The reports are real: the served doctor run on a crafted machine (tests/doctor_machine.py)."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from onboarding.models import EnvironmentReport
from onboarding.services import api_key_save
from tests.conftest import key_appears_in_database, objects_owned_by
from tests.doctor_machine import KEY, OTHER_KEY

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def failing_report(machine) -> str:
    """A developer's machine with mock mode on and a second key in ~/.hokusai/config: the --json text."""
    machine.healthy()
    machine.set(HOKUSAI_MOCK_MODE="1")
    machine.write("home/.hokusai/config", f"[default]\napi_key = {OTHER_KEY}\n", secret=OTHER_KEY)
    return machine.run("--json", expect_rc=1).stdout


def test_a_pasted_report_shows_each_check_with_its_cause_and_remedy(alice, failing_report):
    client = client_for(alice)
    answer = client.post("/onboarding/environment/", {"report": failing_report})
    report = EnvironmentReport.objects.get(user=alice)
    assert answer.status_code == 302 and answer["Location"] == f"/onboarding/environment/{report.pk}/"
    page = client.get(answer["Location"]).content.decode()
    assert 'data-cause="MOCK_MODE_ENABLED" data-status="fail"' in page
    assert "Unset HOKUSAI_MOCK_MODE and HOKUSAI_OPTIONAL_MLFLOW." in page
    assert 'data-cause="ENV_TOKEN_SHADOWED" data-status="warn"' in page
    assert "1 failed, 1 warning" in page
    assert report.checks.count() == len(json.loads(failing_report)["checks"])
    assert report.ok is False
    listing = client.get("/onboarding/environment/").content.decode()
    assert f'href="/onboarding/environment/{report.pk}/">#{report.pk}</a>' in listing


def test_an_uploaded_report_is_read_like_a_pasted_one(alice, failing_report):
    client = client_for(alice)
    upload = SimpleUploadedFile("report.json", failing_report.encode("utf-16"), content_type="application/json")
    answer = client.post("/onboarding/environment/", {"report_file": upload})
    assert answer.status_code == 302
    assert EnvironmentReport.objects.get(user=alice).checks.filter(cause="MOCK_MODE_ENABLED").exists()


def test_the_key_on_the_machine_is_compared_with_the_saved_one(alice, machine):
    api_key_save(user=alice, raw_key=KEY)
    machine.healthy()
    client = client_for(alice)
    same = client.post("/onboarding/environment/", {"report": machine.run("--json").stdout}, follow=True)
    assert 'data-testid="key-match"' in same.content.decode()
    machine.set(HOKUSAI_API_KEY=OTHER_KEY)
    other = client.post("/onboarding/environment/", {"report": machine.run("--json").stdout}, follow=True)
    page = other.content.decode()
    assert 'data-testid="key-mismatch"' in page and "not the one you saved here" in page
    assert list(EnvironmentReport.objects.filter(user=alice).values_list("key_matches", flat=True)) == [False, True]


def _valid(**changes) -> dict:
    report = {
        "schema": "hokusai.doctor/v1",
        "doctor_version": "1.0.0",
        "ok": False,
        "facts": {},
        "checks": [
            {"name": "api key", "status": "fail", "cause": "API_KEY_MISSING", "message": "No key.", "remedy": "Set it."}
        ],
    }
    report.update(changes)
    return report


BAD_REPORTS = {
    "empty": ("", "Paste the output of"),
    "not JSON": ("hello", "This is not JSON (line 1, column 1"),
    "the readable output": (
        "Hokusai doctor 1.0.0 (Python 3.11)\nFAIL  sdk ...",
        "Run `python hokusai_doctor.py --json`",
    ),
    "another schema": (json.dumps(_valid(schema="sentry.env/v2")), "this portal reads 'hokusai.doctor/v1'"),
    "no checks": (json.dumps(_valid(checks=[])), "The report has no checks."),
    "a bad status": (
        json.dumps(_valid(checks=[{"name": "x", "status": "maybe", "cause": "OK", "message": "m"}])),
        "Check 1 has status 'maybe'",
    ),
    "a lower-case cause": (
        json.dumps(_valid(checks=[{"name": "x", "status": "fail", "cause": "oops", "message": "m"}])),
        "Check 1 has no cause code",
    ),
    "too many checks": (json.dumps(_valid(checks=_valid()["checks"] * 101)), "at most 100"),
    "too large": (json.dumps(_valid(facts={"x": "y" * 300_000})), "over 256 KB"),
    "deeply nested": ("[" * 100_000 + "]" * 100_000, "not a doctor report"),
    "a bad fingerprint": (
        json.dumps(_valid(facts={"api_key": {"set": True, "fingerprint": "<script>"}})),
        "fingerprint in the report is not 8 hex digits",
    ),
}


@pytest.mark.parametrize("case", BAD_REPORTS)
def test_a_bad_report_gets_a_clear_message_and_saves_nothing(alice, case):
    text, message = BAD_REPORTS[case]
    answer = client_for(alice).post("/onboarding/environment/", {"report": text})
    assert answer.status_code == 200
    assert message in answer.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert EnvironmentReport.objects.count() == 0


def test_a_report_holding_the_saved_key_is_refused_or_masked(alice):
    api_key_save(user=alice, raw_key=KEY)
    client = client_for(alice)
    body_only = _valid(facts={"note": f"token={KEY.split('_', 2)[2]}"})
    refused = client.post("/onboarding/environment/", {"report": json.dumps(body_only)})
    assert "contains your API key, so it was not saved" in refused.content.decode()
    assert EnvironmentReport.objects.count() == 0
    whole_key = _valid(checks=[{"name": "k", "status": "fail", "cause": "KEY_MALFORMED", "message": f"key {KEY} bad"}])
    assert client.post("/onboarding/environment/", {"report": json.dumps(whole_key)}).status_code == 302
    assert key_appears_in_database(KEY) == []  # redacted again before saving
    assert "hk_test_A1b2…d4" in EnvironmentReport.objects.get().checks.get().message


def test_a_problem_report_carries_the_environment_to_support(alice, bob, failing_report):
    ids = objects_owned_by(alice)
    answer = client_for(alice).post(
        f"/triage/reports/from-check/{ids['run_id']}/", {"note": "stuck", "environment_text": failing_report}
    )
    assert answer.status_code == 302
    report = alice.problem_reports.exclude(doctor_report=None).get()
    assert report.check_run_id == ids["run_id"]
    assert report.doctor_report.checks.filter(cause="MOCK_MODE_ENABLED", status="fail").exists()
    page = client_for(bob).get(f"/triage/{report.investigation_id}/").content.decode()
    assert 'data-testid="report-environment"' in page
    assert 'data-cause="MOCK_MODE_ENABLED" data-status="fail"' in page
    assert 'data-cause="OK"' not in page.split('data-testid="report-environment"')[1].split("</details>")[0]


def test_a_refused_environment_refuses_the_whole_problem_report(alice):
    ids = objects_owned_by(alice)
    before = alice.problem_reports.count()
    answer = client_for(alice).post(
        f"/triage/reports/from-check/{ids['run_id']}/", {"note": "stuck", "environment_text": "not json"}, follow=True
    )
    assert "Nothing was sent: This is not JSON" in answer.content.decode()
    assert alice.problem_reports.count() == before
    assert EnvironmentReport.objects.filter(user=alice).count() == 1  # objects_owned_by's, nothing new


def test_only_ones_own_saved_report_can_be_attached(alice, dave):
    ids = objects_owned_by(alice)
    daves = objects_owned_by(dave)["report_id"]
    before = alice.problem_reports.count()
    refused = client_for(alice).post(
        f"/triage/reports/from-check/{ids['run_id']}/", {"attach_environment": daves}, follow=True
    )
    assert "That environment report is not one of yours." in refused.content.decode()
    assert alice.problem_reports.count() == before
    page = client_for(alice).get(f"/onboarding/checks/{ids['run_id']}/").content.decode()
    assert f'name="attach_environment" value="{ids["report_id"]}" checked' in page
    client_for(alice).post(f"/triage/reports/from-check/{ids['run_id']}/", {"attach_environment": ids["report_id"]})
    assert alice.problem_reports.filter(doctor_report_id=ids["report_id"], check_run_id=ids["run_id"]).exists()


def test_the_dashboards_top_failure_causes_include_the_doctors(alice, dave, charlie, failing_report):
    for user in (alice, dave):
        client_for(user).post("/onboarding/environment/", {"report": failing_report})
    page = client_for(charlie).get("/dashboard/").content.decode()
    row = page.split('data-source="doctor"><td><code>MOCK_MODE_ENABLED</code>')[1].split("</tr>")[0]
    assert "environment doctor</td><td>2</td><td>2 reports" in row


def test_the_wizard_offers_the_optional_environment_step(alice):
    page = client_for(alice).get("/onboarding/key/").content.decode()
    assert '<a href="/onboarding/environment/">3. Your environment (optional)</a>' in page
