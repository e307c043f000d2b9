"""Reactions of the commercial side to events of the physical side."""

import logging

from django.dispatch import receiver

from capacity.ledger import capacity_freed
from hosting.models import Quote

log = logging.getLogger(__name__)


@receiver(capacity_freed)
def wake_the_waitlist(sender, site_id: int, **kwargs) -> None:
    """Room may have appeared: let the waitlist task look (sent after commit)."""
    from hosting.tasks import promote_waitlist

    if not Quote.objects.waitlist().exists():
        return
    try:
        promote_waitlist.delay()
    except Exception:  # the broker is down: the periodic run (beat) will pick it up
        log.warning("could not enqueue hosting.promote_waitlist after site %s freed capacity", site_id, exc_info=True)
