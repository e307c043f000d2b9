from django.apps import AppConfig


class CapacityConfig(AppConfig):
    """The physical side: sites, energization phases, power chain, racks and the ledger."""

    name = "capacity"
    verbose_name = "Capacity"
