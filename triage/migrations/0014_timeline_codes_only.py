"""The timeline's old display columns go (0013 read them into codes); every row has an action id."""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("triage", "0013_timeline_codes")]

    operations = [
        migrations.RemoveField(model_name="timelineevent", name="subject"),
        migrations.RemoveField(model_name="timelineevent", name="old_value"),
        migrations.RemoveField(model_name="timelineevent", name="new_value"),
        migrations.AlterField(
            model_name="timelineevent",
            name="action_id",
            field=models.UUIDField(
                db_index=True, default=uuid.uuid4, help_text="The user action this step is part of."
            ),
        ),
        migrations.AlterField(
            model_name="timelineevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("imported", "Imported from a plan"),
                    ("status", "Status"),
                    ("resolution", "Resolution"),
                    ("severity", "Severity"),
                    ("owner", "Owner"),
                    ("field", "Field changed"),
                    ("components", "Components"),
                    ("platform_components", "Platform components"),
                    ("finding_added", "Finding added"),
                    ("finding_changed", "Finding changed"),
                    ("finding_verdict", "Finding verdict"),
                    ("finding_root_cause", "Root cause"),
                    ("finding_removed", "Finding removed"),
                    ("action_item_added", "Action item added"),
                    ("action_item_changed", "Action item changed"),
                    ("action_item_done", "Action item done"),
                    ("action_item_reopened", "Action item reopened"),
                    ("action_item_removed", "Action item removed"),
                    ("waiting_on_reporter", "Waiting on the reporter"),
                    ("sla_warning", "SLA warning"),
                    ("comment", "Comment"),
                    ("report", "Problem report"),
                    ("rerun", "Check re-run"),
                    ("other", "Other"),
                ],
                db_index=True,
                max_length=24,
            ),
        ),
    ]
