from django.apps import AppConfig


class HostingConfig(AppConfig):
    """The commercial side: tenants, the machine catalog, contracts and machines."""

    name = "hosting"
    verbose_name = "Hosting"
