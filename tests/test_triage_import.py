"""The seed investigation plan imports into structure, exports back, and bad files change nothing."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import ROOT, SEED_KEY, key_appears_in_database
from triage.markdown_io import export_plan, parse_plan
from triage.models import ActionItem, Finding, Investigation
from triage.services import investigation_import, investigation_plan

SEED = Path(__file__).parent / "fixtures" / "lscor-investigation-plan.md"


def test_the_seed_imports_with_its_four_findings_and_statuses(db):
    investigation, redactions, plan = investigation_import(actor=None, raw=SEED.read_bytes())
    findings = {f.title: f for f in investigation.findings.all()}
    assert {title: f.status for title, f in findings.items()} == {
        "Missing Tracking Module Components": Finding.Status.FALSE_POSITIVE,
        "ModelRegistry Constructor Mismatch": Finding.Status.VERIFIED,
        "API Authentication Error (403 Forbidden)": Finding.Status.NEEDS_INVESTIGATION,
        "register_tokenized_model Method Missing": Finding.Status.FALSE_POSITIVE,
    }
    assert findings["ModelRegistry Constructor Mismatch"].root_cause.startswith(
        "Documentation may be showing simplified usage"
    )
    assert "Import path issues" in findings["Missing Tracking Module Components"].possible_causes
    assert investigation.severity == "critical"
    assert investigation.status == Investigation.Status.INVESTIGATING
    assert investigation.owner_label == "Support Engineering"
    assert investigation.created_at.date().isoformat() == "2025-09-15"
    assert investigation.review_cadence == "Daily until resolution"
    assert investigation.environment["python"] == "3.11.8"
    assert investigation.environment["mlflow_version"] == "2.9.0"
    assert investigation.environment["sdk_commit"] == "b1698a58"
    assert set(investigation.components.values_list("name", flat=True)) >= {
        "SDK tracking module",
        "SDK registry",
        "MLflow auth config",
        "API gateway",
    }
    assert investigation.impact_user.startswith("Complete blockage")


def test_phases_and_next_steps_become_action_items(db):
    investigation, _, _ = investigation_import(actor=None, raw=SEED.read_bytes())
    items = ActionItem.objects.filter(investigation=investigation)
    phases = {(i.phase, i.priority) for i in items if not i.timeframe}
    assert ("Phase 2: Authentication Deep Dive", "critical") in phases
    assert ("Phase 3: Documentation Validation", "medium") in phases
    assert items.filter(phase="Phase 1: Component Verification").count() == 4
    assert items.filter(timeframe="Within 24 hours").count() == 4
    assert items.filter(timeframe="Within 1 week").count() == 4
    assert items.filter(timeframe="Within 1 month").count() == 4
    assert items.count() == 29


def test_the_seeds_key_is_nowhere_in_the_database_and_mojibake_is_repaired(db):
    investigation, redactions, _ = investigation_import(actor=None, raw=SEED.read_bytes())
    assert redactions.count >= 3
    assert key_appears_in_database(SEED_KEY) == []
    assert "hk_live_pIDV…tN" in investigation.reproduction_steps
    assert key_appears_in_database("‚úÖ") == [] and key_appears_in_database("üîç") == []
    assert any(note.startswith("### 🔍 INVESTIGATION FINDINGS") for note in investigation.notes)
    assert any(note.startswith("## Monitoring and Logging Analysis") for note in investigation.notes)  # unknown: kept


def test_export_then_import_gives_the_same_structure(db):
    investigation, _, _ = investigation_import(actor=None, raw=SEED.read_bytes())
    exported = export_plan(investigation_plan(investigation))
    again, _, _ = investigation_import(actor=None, raw=exported.encode())
    assert dataclasses.asdict(investigation_plan(again)) == dataclasses.asdict(investigation_plan(investigation))
    assert parse_plan(exported) == parse_plan(export_plan(parse_plan(exported)))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "empty"),
        (b"no heading here\njust text", "no title"),
        ("# Plan été\n".encode("latin-1"), "not UTF-8"),
        (b"# Big\n" + b"x" * (600 * 1024), "not imported"),
    ],
)
def test_a_file_it_cannot_read_gets_a_clear_error_and_nothing_is_saved(client, bob, content, says):
    client.force_login(bob)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(reverse("triage:import"), {"file": SimpleUploadedFile("plan.md", content)})
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not Investigation.objects.exists()


def test_the_import_page_and_export_download(client, bob):
    client.force_login(bob)
    response = client.post(reverse("triage:import"), {"text": SEED.read_text()}, follow=True)
    html = response.content.decode()
    assert "Imported INV-" in html
    assert "replaced by their masked form" in html
    investigation = Investigation.objects.get()
    download = client.get(reverse("triage:export", args=[investigation.pk]))
    assert download["Content-Disposition"] == f'attachment; filename="{investigation.number}.md"'
    assert "#### 2. ModelRegistry Constructor Mismatch - **VERIFIED**" in download.content.decode()


def test_import_command_prints_json(db, tmp_path):
    env = {k: v for k, v in os.environ.items()}
    env["PORTAL_VAR_DIR"] = str(tmp_path)
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    result = subprocess.run(
        [sys.executable, "manage.py", "import_investigation", str(SEED), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["number"] == f"INV-{payload['id']}"
    assert [f["status"] for f in payload["findings"]] == [
        "false_positive",
        "verified",
        "needs_investigation",
        "false_positive",
    ]
    assert payload["action_items"] == 29
    assert payload["redactions"] >= 3
    assert "## Monitoring and Logging Analysis" in payload["notes"]
    bad = subprocess.run(
        [sys.executable, "manage.py", "import_investigation", "/dev/null"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert "Nothing was saved" in bad.stderr
    impossible = tmp_path / "impossible.md"
    impossible.write_bytes(SEED.read_bytes().replace(b"**Created**: 2025-09-15", b"**Created**: 2025-02-30"))
    bad_date = subprocess.run(
        [sys.executable, "manage.py", "import_investigation", str(impossible)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad_date.returncode == 1 and "Traceback" not in bad_date.stderr
    assert "2025-02-30 is not a date" in bad_date.stderr


def test_a_pasted_plan_has_the_files_size_limit(client, bob):
    client.force_login(bob)
    response = client.post(reverse("triage:import"), {"text": SEED.read_text() + "x" * (600 * 1024)})
    assert response.status_code == 200 and "not imported" in response.content.decode()
    assert not Investigation.objects.exists()


def test_over_long_values_are_shortened_to_fit_and_the_user_is_told(client, bob):
    client.force_login(bob)
    plan = SEED.read_text().replace(
        "**Investigation Owner**: Support Engineering", "**Investigation Owner**: " + "o" * 300
    )
    response = client.post(reverse("triage:import"), {"text": plan}, follow=True)
    assert "too long and shortened: owner label (to 120 characters)" in response.content.decode()
    assert len(Investigation.objects.get().owner_label) == 120


def test_a_heading_inside_a_code_block_is_not_the_title(db):
    plan = parse_plan("```\n# not the title\n```\n\n# The real title\n\n## Bug Summary\nText\n")
    assert plan.title == "The real title"


def test_importing_the_same_plan_twice_offers_the_first_instead_of_a_copy(client, bob):
    """Seen: five imports of one plan made five investigations, silently."""
    client.force_login(bob)
    first = client.post(reverse("triage:import"), {"text": SEED.read_text()})
    existing = Investigation.objects.get()
    again = client.post(reverse("triage:import"), {"text": SEED.read_text().replace("\n", "\r\n")})  # same text, CRLF
    html = again.content.decode()
    assert first.status_code == 302 and again.status_code == 200
    assert f"already imported as {existing.number}" in html
    assert f'href="{reverse("triage:detail", args=[existing.pk])}"' in html
    assert Investigation.objects.count() == 1
    copy = client.post(reverse("triage:import"), {"text": SEED.read_text(), "again": "on"})
    assert copy.status_code == 302 and Investigation.objects.count() == 2
