"""Celery tasks of curtailment. They carry ids; the rows hold the state.

`send_commands` and `verify_event` run on the site's control worker (queue
`site.<slug>.control`, apart from polls and self-tests: the miners and PDUs are on the site's
private network); `check_events` runs centrally (beat) and sends each active event's
verification to its site. A chunk of stops is verified by its own task as soon as its answers
have settled — only its machines' outlets are asked for — so no verification waits behind the
other chunks' commands for a free process. Each is safe to run twice: a machine is claimed (a
conditional UPDATE) before anything is sent to it, and a verification only records what the
outlets read.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from hosting import queues
from hosting.curtailment import services
from hosting.curtailment.commands import STOP, Commander, Sent, read_outlets, walk_pdus
from hosting.curtailment.models import Event
from hosting.telemetry.tasks import KNOWN_PREFIX, KNOWN_TTL_S, process

log = logging.getLogger(__name__)


def _send(orders) -> Sent:
    """Send the orders on this process's event loop (pyasic's objects live on the loop they
    were made on), reusing the miner classes telemetry already detected."""
    here = process()
    keys = [KNOWN_PREFIX + o.key for o in orders]
    known = {k.removeprefix(KNOWN_PREFIX): v for k, v in cache.get_many(keys).items()}
    commander = Commander(
        settings.CURTAILMENT_TIMEOUT_S, attempts=settings.CURTAILMENT_ATTEMPTS,
        backoff_s=settings.CURTAILMENT_BACKOFF_MS / 1000, concurrency=settings.CURTAILMENT_CONCURRENCY,
    )  # fmt: skip
    sent = here.loop.run_until_complete(commander.send(orders, known))
    if sent.learned:
        cache.set_many({KNOWN_PREFIX + k: v for k, v in sent.learned.items()}, KNOWN_TTL_S)
    return sent


@shared_task(
    name="curtailment.send_commands",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def send_commands(event_id: int, action: str, event_machine_ids: list[int], offsets_s: list[float]) -> int:
    """Tell these machines of the event to stop (or resume), each at its offset; record every
    attempt. Returns how many were told (those another run already claimed are skipped)."""
    now = timezone.now()
    claimed = services.claim(event_machine_ids, action, now)
    offsets = dict(zip(event_machine_ids, offsets_s, strict=False))
    orders = services.orders(claimed, action, offsets)
    sent = _send(orders) if orders else None
    if sent is not None:
        services.record(sent.attempts, action)
        log.info("event %s: %s sent to %d machine(s)", event_id, action, len(orders))
        if action == STOP:
            # The machines whose answers have settled are read right here (a verification queued
            # behind the other chunks' commands would wait for a free process); the last few to
            # answer, once they have settled too, from the queue.
            settled, settling = _settled(sent, [o.event_machine_id for o in orders], timezone.now())
            if settled:
                _verify(event_id, settled)
            if settling:
                slug = Event.objects.values_list("site__slug", flat=True).get(pk=event_id)
                _verify_after_settle(event_id, slug, settling)
    return len(orders)


def _settled(sent: Sent, event_machine_ids: list[int], now: dt.datetime) -> tuple[list[int], list[int]]:
    """The chunk's machines split into those whose stop was answered at least
    CURTAILMENT_SETTLE_MS ago (or never: nothing to wait for) and those answered since."""
    since = now - dt.timedelta(milliseconds=settings.CURTAILMENT_SETTLE_MS)
    recent = {a.event_machine_id for a in sent.attempts if a.ok and a.answered_at is not None and a.answered_at > since}
    return [pk for pk in event_machine_ids if pk not in recent], [pk for pk in event_machine_ids if pk in recent]


@shared_task(
    name="curtailment.verify_event",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=2,
)
def verify_event(event_id: int, event_machine_ids: list[int] | None = None) -> int:
    """Read the outlets of the event's site, judge its machines by their watts, record a sample,
    and tell the machines still drawing after the deadline to stop again (bounded). Given a
    chunk's machines (not yet seen off at their chunk's reading): only those, from their own
    PDUs, no sample."""
    return _verify(event_id, event_machine_ids)


def _verify(event_id: int, event_machine_ids: list[int] | None) -> int:
    site = Event.objects.filter(pk=event_id).values_list("site_id", "site__slug").first()
    if site is None:
        return 0
    site_id, slug = site
    here = process()
    timeout_s = settings.CURTAILMENT_TIMEOUT_S
    if event_machine_ids is None:
        pdus = services.site_pdus(site_id)
        walks = here.loop.run_until_complete(walk_pdus(pdus, timeout_s)) if pdus else {}
    else:
        outlets = services.chunk_outlets(event_machine_ids)
        walks = here.loop.run_until_complete(read_outlets(outlets, timeout_s)) if outlets else {}
    now = timezone.now()
    retry = services.verify(event_id, walks, now, only=event_machine_ids)
    if event_machine_ids is not None:
        # A chunk's machines not yet seen off (still spinning down, their answer pending) are
        # read again after another settle, until the deadline — then the deadline's and the
        # beat's whole-site readings judge them.
        waiting = services.still_to_verify(event_id, event_machine_ids, now)
        if waiting:
            _verify_after_settle(event_id, slug, waiting)
    if retry:
        orders = services.orders(retry, STOP, {})
        sent = _send(orders)
        services.record(sent.attempts, STOP)
        log.info("event %s: stop sent again to %d machine(s) still drawing", event_id, len(orders))
    return len(retry)


def _verify_after_settle(event_id: int, slug: str, event_machine_ids: list[int]) -> None:
    """These machines' outlets read on the site's control queue once they have had CURTAILMENT_SETTLE_MS."""
    message = ((event_id, event_machine_ids), {"countdown": settings.CURTAILMENT_SETTLE_MS / 1000})
    timeout_s = settings.CURTAILMENT_PUBLISH_TIMEOUT_MS / 1000
    queues.publish(verify_event, [message], queues.control_queue_for(slug), timeout_s)


@shared_task(name="curtailment.check_events", acks_late=True, autoretry_for=(OperationalError,), max_retries=2)
def check_events() -> int:
    """Periodic (every ~30 s): start and end the events that are due, and verify each active
    event on its site's worker."""
    return services.check_events()
