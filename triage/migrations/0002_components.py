from django.db import migrations

COMPONENTS = [
    ("SDK tracking module", "hokusai.tracking: ExperimentManager, PerformanceTracker"),
    ("SDK registry", "hokusai.core.registry: ModelRegistry, register_tokenized_model"),
    ("SDK auth client", "hokusai.auth.client"),
    ("MLflow auth config", "hokusai.config.mlflow_auth, MLFLOW_TRACKING_TOKEN handling"),
    ("MLflow tracking server", "The registry's MLflow server"),
    ("Auth service", "Hokusai's API-key authentication service"),
    ("API gateway", "Authentication proxy and routing in front of the registry"),
    ("Website docs", "The model registration guide on the Hokusai website"),
    ("Onboarding portal", "This portal"),
]


def create(apps, schema_editor):
    Component = apps.get_model("triage", "Component")
    for name, description in COMPONENTS:
        Component.objects.get_or_create(name=name, defaults={"description": description})


class Migration(migrations.Migration):
    dependencies = [("triage", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
