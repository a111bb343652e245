"""A registration's MLflow run is `mlflow_run_id`: `run` on this app means a CheckRun (issue 22's names)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0011_organization")]

    operations = [
        migrations.RenameField(model_name="registration", old_name="run_id", new_name="mlflow_run_id"),
        migrations.AlterField(
            model_name="registration",
            name="mlflow_run_id",
            field=models.CharField(blank=True, help_text="The MLflow run the version came from.", max_length=64),
        ),
    ]
