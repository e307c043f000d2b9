"""Celery tasks of the alerts: the digest e-mail (beat, every 15 minutes by default)."""

from celery import shared_task
from django.db import OperationalError

from hosting.telemetry import alerting


@shared_task(
    name="telemetry.send_alert_digests",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=180,
)
def send_alert_digests() -> int:
    """Mail what opened or resolved since the last digest; a second run finds nothing new."""
    return alerting.send_digests()
