from django.db import migrations

COMPONENTS = [
    ("gateway", "API-key gateway", "Checks API keys in front of the registry.", "gateway"),
    ("registry", "Registry API", "MLflow's REST API: experiments, runs, registered models.", "registry"),
    ("artifacts", "Artifact store", "Model files, through the registry's artifact proxy.", "artifacts"),
    ("workers", "Portal workers", "Run the portal's connectivity and registration checks.", "workers"),
    ("broker", "Portal broker", "Carries checks from the portal to its workers.", "broker"),
]


def create(apps, schema_editor):
    Component = apps.get_model("status", "Component")
    for position, (slug, name, description, probe) in enumerate(COMPONENTS, start=1):
        Component.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "probe": probe, "position": position}
        )


def remove(apps, schema_editor):
    apps.get_model("status", "Component").objects.filter(slug__in=[c[0] for c in COMPONENTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("status", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
