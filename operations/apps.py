from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Operating the portal: /metrics, the audit trail. The top layer: it reads every app below it and
    none of them imports it."""

    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from . import audit, receivers  # noqa: F401

        audit.register()
