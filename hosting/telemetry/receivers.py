"""Telemetry's reactions to its own events: a stored poll is checked against the alert rules."""

import datetime as dt
import logging

from django.dispatch import receiver

from hosting.telemetry import alerting
from hosting.telemetry.signals import windows_recorded

log = logging.getLogger(__name__)


@receiver(windows_recorded, dispatch_uid="telemetry.evaluate_alerts")
def evaluate_alerts(sender, site_id: int, window_start: dt.datetime, **kwargs) -> None:
    """Open and resolve the site's alerts for the interval just stored (sent on commit).
    A failure is logged, never raised into the poll that stored the windows: the next
    interval's evaluation sees the same alerts again."""
    try:
        alerting.evaluate(site_id, window_start)
    except Exception:
        log.exception("alert evaluation of site %s at %s failed", site_id, window_start)
