"""A problem report's `environment` was the reporter's environment doctor report: named so (Investigation.environment
is a JSON blob of versions, onboarding's tier is key_tier)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("triage", "0014_timeline_codes_only"),
    ]

    operations = [
        migrations.RenameField(
            model_name="report",
            old_name="environment",
            new_name="doctor_report",
        ),
    ]
