from django.apps import AppConfig


class HostingConfig(AppConfig):
    """The commercial side: tenants, the machine catalog, contracts and machines."""

    name = "hosting"
    verbose_name = "Hosting"

    def ready(self) -> None:
        from hosting import receivers  # noqa: F401 - connects the signal receivers
        from hosting.commissioning import receivers as commissioning_receivers  # noqa: F401
