"""Celery tasks of commissioning. They carry run ids; the runs table holds the state."""

import asyncio
import contextlib

import uvloop
from asgiref.sync import sync_to_async
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from hosting.commissioning import pipeline, runs

FLUSH_EVERY_S = 0.5  # verdicts are stored as they come, a few at a time


@shared_task(
    name="hosting.commission_runs",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def commission_runs(run_ids: list[int]) -> int:
    """Run the self-tests these ids name, together on one event loop. Idempotent: runs that
    another attempt owns, or that are finished, are skipped; a run's verdict is stored as
    soon as it is known, so one slow (or hung) miner holds up nobody's."""
    token, claimed = runs.claim(run_ids)
    if not claimed:
        return 0
    return uvloop.run(_commission(claimed, token))


async def _commission(claimed, token: str) -> int:
    plans = await sync_to_async(runs.plans)(claimed)
    ids = [r.pk for r in claimed]
    beat = sync_to_async(runs.heartbeat)
    finish = sync_to_async(runs.finish)
    done: list[pipeline.Result] = []
    stored = 0

    async def flush() -> None:
        nonlocal stored
        batch = done[:]
        if batch:
            stored += len(await finish(batch, token))
            del done[: len(batch)]  # only once stored: results that came meanwhile stay

    ended = asyncio.Event()

    async def flusher() -> None:
        # Never cancelled: a store in flight (waiting, perhaps, for the database thread) is
        # awaited to its end, then whatever came meanwhile is stored.
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), FLUSH_EVERY_S)
            await flush()
        await flush()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(settings.COMMISSIONING_HEARTBEAT_S)
            await beat(ids, token)

    background = asyncio.create_task(flusher())
    beating = asyncio.create_task(heartbeat())
    try:
        await pipeline.commission_many(plans, concurrency=settings.COMMISSIONING_CONCURRENCY, on_result=done.append)
    finally:
        beating.cancel()  # a beat lost is harmless; a verdict is not
        ended.set()
        await background
    return stored


@shared_task(name="hosting.sweep_commissioning", acks_late=True, autoretry_for=(OperationalError,), max_retries=3)
def sweep_commissioning() -> dict:
    """Periodic: re-send what a dead worker or a lost message left, send what waits."""
    return runs.sweep()
