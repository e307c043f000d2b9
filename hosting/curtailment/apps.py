from django.apps import AppConfig


class CurtailmentConfig(AppConfig):
    name = "hosting.curtailment"
    label = "curtailment"
    verbose_name = "Curtailment"
    default_auto_field = "django.db.models.BigAutoField"
