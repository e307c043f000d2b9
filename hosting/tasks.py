"""Celery tasks of the commercial side. Each takes ids (or nothing), re-reads, and is safe
to run twice; results are rows, never only a result backend."""

from celery import shared_task
from django.db import OperationalError

from hosting import quotes


@shared_task(
    name="hosting.promote_waitlist",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=180,
)
def promote_waitlist() -> int:
    """Re-price the waitlist in queue order (locks the queue, so two runs do not race)."""
    return len(quotes.promote_waitlist())
