# The alert tests' fixtures (tests/telemetry/alert_world.py).
from tests.telemetry.alert_world import fleet, site_policy, tenant_user  # noqa: F401
