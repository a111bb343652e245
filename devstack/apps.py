from django.apps import AppConfig


class DevstackConfig(AppConfig):
    """Installed in development only (`make run`): the demo users and the seeded local registry
    (`manage.py demo_setup`). Production code never imports this package (pyproject.toml's contracts)."""

    name = "devstack"
    verbose_name = "Local registry (development)"
