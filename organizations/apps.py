from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"
    verbose_name = "Organizations"

    def ready(self):
        from . import receivers  # noqa: F401  (accounts' deletion and export signals)
