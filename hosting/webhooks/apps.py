from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "hosting.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hosting.webhooks import (
            receivers,  # noqa: F401 - turns the other apps' signals into events
            tasks,  # noqa: F401 - registers the delivery tasks
        )
