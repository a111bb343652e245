from django.db import migrations, models


class Migration(migrations.Migration):
    """ApiKey.environment was a key's tier (live, test, dev), not an environment: named for what it is."""

    dependencies = [("onboarding", "0007_environment_report")]

    operations = [
        migrations.RenameField(model_name="apikey", old_name="environment", new_name="key_tier"),
        migrations.AlterField(
            model_name="apikey",
            name="key_tier",
            field=models.CharField(help_text="live, test or dev: the part after hk_.", max_length=8),
        ),
    ]
