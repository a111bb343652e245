"""The status page's component is a PlatformComponent: triage has its own Component (the affected SDK or
configuration part), and one word for two things had the tests aliasing one of them."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("status", "0002_default_components")]

    operations = [migrations.RenameModel(old_name="Component", new_name="PlatformComponent")]
