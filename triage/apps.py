from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "triage"
    verbose_name = "Investigations"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import receivers, stats  # noqa: F401 (receivers connect on import)

        stats.connect()
        post_migrate.connect(stats.ensure_built, sender=self, dispatch_uid="stat_ensure_built")
