from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "hosting.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hosting.telemetry import (
            receivers,  # noqa: F401 - connects the signal receivers
            tasks_alerts,  # noqa: F401 - registers the digest task
        )
