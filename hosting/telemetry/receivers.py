"""Telemetry's reactions to its own events: a stored poll is checked against the alert rules."""

import datetime as dt
import logging

from django.dispatch import receiver

from hosting.telemetry import alerting
from hosting.telemetry.signals import windows_recorded

log = logging.getLogger(__name__)


@receiver(windows_recorded, dispatch_uid="telemetry.evaluate_alerts")
def evaluate_alerts(sender, site_id: int, window_start: dt.datetime, **kwargs) -> None:
    """Open and resolve the alerts of what was just stored (sent on commit): the chunk's
    machines (`machine_ids`; all the site's when absent), and the site's circuits once the
    interval's poll is all in (`finished`; assumed when absent). A failure is logged, never
    raised into the poll that stored the windows: the next evaluation sees the same alerts."""
    try:
        alerting.evaluate(
            site_id, window_start, machine_ids=kwargs.get("machine_ids"), site_wide=kwargs.get("finished", True)
        )
    except Exception:
        log.exception("alert evaluation of site %s at %s failed", site_id, window_start)
