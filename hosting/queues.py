"""Where tasks for a site go, and how they are published without ever hanging on the broker.

Shared by commissioning (self-tests), telemetry (polls) and curtailment (commands, on the
site's control queue): each sends work to a worker inside the site, and each publishes from
a request or a beat tick that must answer at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


def queue_for(site_slug: str) -> str:
    """Each site's work goes to its own queue, consumed by the worker inside that site."""
    return f"site.{site_slug}"


def control_queue_for(site_slug: str) -> str:
    """Each site's curtailment commands go to a queue of their own, consumed by the site's
    control worker: a demand-response deadline never waits behind a poll or a batch of
    self-tests on the site's queue."""
    return f"site.{site_slug}.control"


def publish(task: Any, messages: Sequence[tuple[tuple, dict]], queue: str, timeout_s: float) -> int:
    """Publish `messages` (args, options) of `task` on `queue` over one connection, with a
    short timeout and no retries. Returns how many were sent: all of them, or those sent
    before the broker refused (the caller keeps the rest for later)."""
    sent = 0
    try:
        with task.app.connection_for_write(
            connect_timeout=timeout_s,
            transport_options={"max_retries": 0, "socket_connect_timeout": timeout_s, "socket_timeout": timeout_s},
        ) as connection:
            for args, options in messages:
                task.apply_async(args=args, queue=queue, connection=connection, retry=False, **options)
                sent += 1
    except Exception:  # broker unreachable: the caller's table is the outbox
        log.warning("broker refused %d message(s) for %s", len(messages) - sent, queue)
    return sent
