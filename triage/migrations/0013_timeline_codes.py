"""The timeline in codes: `kind` says what happened (status, severity, finding_verdict, ...), `field`,
`old`, `new` hold machine values (a status code, not its label), `target` the finding's or action item's
title, `action_id` groups the steps of one user action. Existing rows are read once, here: their display
strings (as the portal wrote them up to this migration) are parsed into codes. 0014 drops the old columns."""

import re
import uuid

from django.db import migrations, models

# The labels as they were when these rows were written (frozen here: a later rename must not change this).
STATUS = {
    "New": "new",
    "Investigating": "investigating",
    "Root cause identified": "root_cause_identified",
    "Fixing": "fixing",
    "Monitoring": "monitoring",
    "Resolved": "resolved",
    "Closed": "closed",
}
RESOLUTION = {
    "—": "",
    "": "",
    "Fixed": "fixed",
    "False positive": "false_positive",
    "Duplicate": "duplicate",
    "Cannot reproduce": "cannot_reproduce",
    "Won't fix": "wont_fix",
}
FINDING = {
    "Reported": "reported",
    "Investigating": "investigating",
    "Verified": "verified",
    "False positive": "false_positive",
    "Needs investigation": "needs_investigation",
    "Resolved": "resolved",
}
SEVERITY = {"Critical": "critical", "High": "high", "Medium": "medium", "Low": "low"}
INVESTIGATION_FIELDS = {
    "title",
    "summary",
    "severity",
    "owner",
    "owner_label",
    "reporter",
    "next_review",
    "review_cadence",
    "environment",
    "public_incident",
    "impact_user",
    "impact_business",
    "impact_platform",
    "reproduction_steps",
    "risks",
    "mitigations",
    "component_details",
    "notes",
    "fingerprint",
    "plan_digest",
}
CHECK = re.compile(r"check #(\d+) (?:by|for) (.*)", re.S)


def codes_of(subject: str, kind: str, old: str, new: str) -> dict:
    """One old row's (subject, kind, old_value, new_value) as the new columns."""
    if kind == "comment":
        return {"kind": "comment"}
    quoted = re.fullmatch(r"(finding|root cause of|action) “(.*)”", subject, re.S)
    if subject == "created":
        return {"kind": "created", "new": STATUS.get(new, new)}
    if subject == "imported":
        return {"kind": "imported", "new": new}
    if subject == "status":
        return {"kind": "status", "old": STATUS.get(old, old), "new": STATUS.get(new, new)}
    if subject == "resolution":
        return {"kind": "resolution", "old": RESOLUTION.get(old, old), "new": RESOLUTION.get(new, new)}
    if subject == "severity":
        return {"kind": "severity", "old": SEVERITY.get(old, old), "new": SEVERITY.get(new, new)}
    if subject == "owner":
        return {"kind": "owner", "old": old, "new": new}
    if subject == "components":
        return {"kind": "components", "old": old, "new": new}
    if subject == "platform components":
        return {"kind": "platform_components", "old": old, "new": new}
    if subject == "awaiting reporter":
        flag = {"yes": "true", "no": "false"}
        return {"kind": "waiting_on_reporter", "old": flag.get(old, old), "new": flag.get(new, new)}
    if subject == "SLA warning":
        goal, _, state = new.partition(" ")
        return {"kind": "sla_warning", "field": goal, "new": "breached" if "breached" in state else "warning"}
    if subject in ("report", "re-run"):
        found = CHECK.fullmatch(new)
        kind = "report" if subject == "report" else "rerun"
        if found:
            return {"kind": kind, "new": found.group(1), "target": found.group(2)}
        return {"kind": kind, "new": new}
    if quoted and quoted.group(1) == "finding":
        return {
            "kind": "finding_verdict",
            "target": quoted.group(2),
            "old": FINDING.get(old, old),
            "new": FINDING.get(new, new),
        }
    if quoted and quoted.group(1) == "root cause of":
        return {"kind": "finding_root_cause", "target": quoted.group(2), "new": new}
    if quoted and quoted.group(1) == "action":
        done = new == "done"
        return {
            "kind": "action_item_done" if done else "action_item_reopened",
            "target": quoted.group(2),
            "old": "false" if done else "true",
            "new": "true" if done else "false",
        }
    if subject in INVESTIGATION_FIELDS:
        return {"kind": "field", "field": subject, "old": old, "new": new}
    return {"kind": "other", "field": subject[:60], "old": old, "new": new}


def forwards(apps, schema_editor):
    TimelineEvent = apps.get_model("triage", "TimelineEvent")
    batch = []
    fields = ["kind", "field", "target", "old", "new", "action_id"]
    for event in TimelineEvent.objects.only("id", "kind", "subject", "old_value", "new_value").iterator(2000):
        values = {
            "field": "",
            "target": "",
            "old": "",
            "new": "",
            **codes_of(event.subject, event.kind, event.old_value, event.new_value),
        }
        for name, value in values.items():
            setattr(event, name, value[:300] if name == "target" else value)
        event.action_id = uuid.uuid4()  # each old row its own action: nothing grouped them
        batch.append(event)
        if len(batch) >= 2000:
            TimelineEvent.objects.bulk_update(batch, fields)
            batch = []
    if batch:
        TimelineEvent.objects.bulk_update(batch, fields)


def backwards(apps, schema_editor):
    """Back to display strings, near enough for the code of 0012 to read (status and flags by label)."""
    TimelineEvent = apps.get_model("triage", "TimelineEvent")
    labels = {code: label for label, code in STATUS.items()}
    for event in TimelineEvent.objects.iterator(2000):
        kind, old, new = event.kind, event.old, event.new
        subject = {
            "waiting_on_reporter": "awaiting reporter",
            "sla_warning": "SLA warning",
            "platform_components": "platform components",
            "rerun": "re-run",
        }.get(kind, kind)
        if kind in ("status", "created"):
            old, new = labels.get(old, old), labels.get(new, new)
        elif kind == "waiting_on_reporter":
            old, new = {"true": "yes", "false": "no"}.get(old, old), {"true": "yes", "false": "no"}.get(new, new)
        elif kind in ("field", "other"):
            subject = event.field
        elif kind.startswith("finding") or kind.startswith("action_item"):
            subject = f"finding “{event.target}”" if kind.startswith("finding") else f"action “{event.target}”"
        event.subject, event.old_value, event.new_value = subject[:200], old, new
        event.kind = "comment" if kind == "comment" else "change"
        event.save(update_fields=["subject", "old_value", "new_value", "kind"])


class Migration(migrations.Migration):
    dependencies = [("triage", "0012_report_joined")]

    operations = [
        migrations.AddField(
            model_name="timelineevent",
            name="field",
            field=models.CharField(
                blank=True,
                help_text="The field changed (kind field), a finding's field, or an SLA goal.",
                max_length=60,
            ),
        ),
        migrations.AddField(
            model_name="timelineevent",
            name="target",
            field=models.CharField(
                blank=True,
                help_text="The finding's or action item's title, or the reporter's username.",
                max_length=300,
            ),
        ),
        migrations.AddField(
            model_name="timelineevent",
            name="old",
            field=models.TextField(blank=True, help_text="The machine value before (a status code, not its label)."),
        ),
        migrations.AddField(
            model_name="timelineevent",
            name="new",
            field=models.TextField(blank=True, help_text="The machine value after."),
        ),
        migrations.AddField(
            model_name="timelineevent",
            name="action_id",
            field=models.UUIDField(null=True),
        ),
        migrations.AlterField(
            model_name="timelineevent",
            name="kind",
            field=models.CharField(max_length=24),
        ),
        migrations.RunPython(forwards, backwards),
    ]
