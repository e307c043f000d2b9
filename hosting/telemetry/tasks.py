"""Celery tasks of telemetry. They carry ids and a window start; the rows hold the state.

`schedule_polls` runs centrally every TELEMETRY_SCHEDULE_S (beat) and opens each site's
poll once per interval; `poll_chunk` runs on the site's worker (queue `site.<slug>`) and
polls a chunk of machines on this process's `Poller`, whose miner objects live as long as
the process does, on an event loop of its own kept across tasks (pyasic's objects are
used on the loop they were first used on).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import uvloop
from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError

from hosting.telemetry import services
from hosting.telemetry.poller import Poller

log = logging.getLogger(__name__)

KNOWN_PREFIX = "telemetry:miner:"  # cache key of what a machine's miner object is: its pyasic class
KNOWN_TTL_S = 7 * 24 * 3600


class _Process:
    """This process's poller and the event loop it runs on."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.poller = Poller(settings.TELEMETRY_TIMEOUT_S, settings.TELEMETRY_CONCURRENCY)

    def close(self) -> None:
        self.poller.close()
        self.loop.close()


_process: _Process | None = None
_lock = threading.Lock()


def process() -> _Process:
    global _process
    with _lock:
        if _process is None:
            _process = _Process()
        return _process


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close(**_) -> None:
    global _process
    with _lock:
        closing, _process = _process, None
    if closing is not None:
        try:
            closing.close()
        except Exception:  # shutting down
            log.debug("closing the poller failed", exc_info=True)


@shared_task(name="telemetry.schedule_polls", acks_late=True, autoretry_for=(OperationalError,), max_retries=2)
def schedule_polls() -> int:
    """Periodic (every few seconds): open the polls of the intervals that have begun."""
    return services.schedule_polls()


@shared_task(
    name="telemetry.poll_chunk",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def poll_chunk(site_id: int, window_start: str, machine_ids: list[int], spread_s: float = 0.0) -> int:
    """Poll these machines once for the window starting at `window_start` and record the
    windows; returns how many were written. Run twice, it writes the same rows again."""
    start = dt.datetime.fromisoformat(window_start)
    machines = services.machines_to_poll(machine_ids)
    targets = services.targets(machines)
    here = process()
    keys = [KNOWN_PREFIX + t.key for t in targets]
    known = {k.removeprefix(KNOWN_PREFIX): v for k, v in cache.get_many(keys).items()}
    polled = here.loop.run_until_complete(here.poller.poll(targets, spread_s=spread_s, known=known))
    if polled.learned:
        cache.set_many({KNOWN_PREFIX + k: v for k, v in polled.learned.items()}, KNOWN_TTL_S)
    if forgotten := [KNOWN_PREFIX + k for k in polled.forgotten if k in known]:
        cache.delete_many(forgotten)
    services.record_poll(site_id, start, machines, polled)
    log.info(
        "poll of site %s @ %s: %d machine(s), %d answered; miner objects %d reused, %d rebuilt, %d detected",
        site_id, window_start, len(machines), sum(r.reachable for r in polled.readings.values()),
        polled.reused, polled.rebuilt, polled.built,
    )  # fmt: skip
    return len(machines)
