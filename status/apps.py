from django.apps import AppConfig


class StatusConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "status"
    verbose_name = "Platform status"

    def ready(self):
        from . import receivers  # noqa: F401 (connects on import)
