"""Celery tasks of commissioning. They carry run ids; the runs table holds the state.

Each worker process runs its self-tests on one `Commissioner`: an event loop in a thread
of its own that keeps COMMISSIONING_CONCURRENCY runs in flight across task messages. A
message's task claims its runs, hands them over as places free up and returns, so the
process takes the next message while the slowest miners of the last one are still being
probed — no chunk waits for its slowest miner, whatever the fleet's tail latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import uvloop
from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from hosting.commissioning import pipeline, runs
from hosting.models import SelfTestRun

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.5  # verdicts are stored as they come, a few at a time
CLOSE_WAIT_S = 10.0  # at shutdown, how long runs under way may take to finish before they are handed back


class Commissioner:
    """The self-tests of one worker process, from admission to stored verdict.

    Verdicts are stored every FLUSH_EVERY_S, in the one thread that talks to the database,
    and a store in flight is never cancelled; heartbeats keep every run held fresh, from
    its claim to its verdict; `close` (at the process's shutdown) lets the runs under way
    finish for a while, stores every verdict and hands the rest back to pending for the
    sweep — none is left running."""

    def __init__(self, concurrency: int):
        self.room = threading.Semaphore(concurrency)
        self.pipeline = pipeline.Pipeline(concurrency)
        self.database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commissioning-db")
        self.loop = uvloop.new_event_loop()
        self._lock = threading.Lock()
        self._held: dict[int, str] = {}  # run id → its claim's token, from admission until stored
        self._finished: list[tuple[str, pipeline.Result]] = []  # loop thread only
        self._under_way: set[asyncio.Task] = set()
        self._storing: asyncio.Lock | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="commissioning", daemon=True)
        self._thread.start()
        ready.wait()

    # -- the task's side (the worker's thread) ---------------------------------------------

    def admit(self, claimed: Sequence[SelfTestRun], token: str) -> int:
        """Start the claimed runs, each as soon as there is room; return once all have."""
        plans = runs.plans(claimed)
        with self._lock:
            self._held.update({p.run_id: token for p in plans})
        started = 0
        try:
            for plan in plans:
                self.room.acquire()
                self.loop.call_soon_threadsafe(self._start, plan, token)
                started += 1
        except BaseException:  # e.g. the task's time limit: what did not start goes back to pending
            unstarted = [p.run_id for p in plans[started:]]
            with self._lock:
                for run_id in unstarted:
                    self._held.pop(run_id, None)
            runs.release(unstarted, token)
            raise
        return started

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        asyncio.run_coroutine_threadsafe(self._close(wait_s), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.database.shutdown(wait=True)

    # -- the loop's side ---------------------------------------------------------------------

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self._storing = asyncio.Lock()
        background = [self.loop.create_task(self._flusher()), self.loop.create_task(self._beater())]
        self.loop.call_soon(ready.set)
        self.loop.run_forever()
        for task in background:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*background, return_exceptions=True))
        self.pipeline.close()
        self.loop.close()

    def _start(self, plan: pipeline.Plan, token: str) -> None:
        task = self.loop.create_task(self._run(plan, token))
        self._under_way.add(task)
        task.add_done_callback(self._under_way.discard)

    async def _run(self, plan: pipeline.Plan, token: str) -> None:
        try:
            result = await self.pipeline.run(plan)  # judged whatever happens; only cancelling stops it
            self._finished.append((token, result))
        finally:
            self.room.release()

    async def _in_database(self, fn, *args):
        def call():
            close_old_connections()  # a long-lived thread: drop a connection that has gone bad or old
            return fn(*args)

        return await self.loop.run_in_executor(self.database, call)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self._flush()

    async def _flush(self) -> None:
        """Store the verdicts that are in; one store at a time, each awaited to its end."""
        assert self._storing is not None
        async with self._storing:
            batch = self._finished[:]
            if not batch:
                return
            by_token: dict[str, list[pipeline.Result]] = defaultdict(list)
            for token, result in batch:
                by_token[token].append(result)
            try:
                for token, results in by_token.items():
                    await self._in_database(runs.finish, results, token)
            except Exception:  # the database is away: keep them for the next round (finish is idempotent)
                log.warning("storing %d verdict(s) failed; they are kept for the next try", len(batch), exc_info=True)
                return
            del self._finished[: len(batch)]  # results that came meanwhile stay for the next round
            with self._lock:
                for _, result in batch:
                    self._held.pop(result.run_id, None)

    async def _beater(self) -> None:
        while True:
            await asyncio.sleep(settings.COMMISSIONING_HEARTBEAT_S)
            for token, run_ids in self._held_by_token().items():
                try:
                    await self._in_database(runs.heartbeat, run_ids, token)
                except Exception:
                    log.warning("heartbeat of %d run(s) failed", len(run_ids), exc_info=True)

    def _held_by_token(self) -> dict[str, list[int]]:
        with self._lock:
            held = dict(self._held)
        by_token: dict[str, list[int]] = defaultdict(list)
        for run_id, token in held.items():
            by_token[token].append(run_id)
        return by_token

    async def _close(self, wait_s: float) -> None:
        if self._under_way:
            _, late = await asyncio.wait(set(self._under_way), timeout=wait_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._flush()
        for token, run_ids in self._held_by_token().items():
            await self._in_database(runs.release, run_ids, token)
        with self._lock:
            self._held.clear()


_commissioner: Commissioner | None = None
_commissioner_lock = threading.Lock()


def commissioner() -> Commissioner:
    """This process's commissioner, started on first use (in the worker's pool process)."""
    global _commissioner
    with _commissioner_lock:
        if _commissioner is None:
            _commissioner = Commissioner(settings.COMMISSIONING_CONCURRENCY)
        return _commissioner


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_commissioner(**_) -> None:
    global _commissioner
    with _commissioner_lock:
        closing, _commissioner = _commissioner, None
    if closing is not None:
        with contextlib.suppress(Exception):  # shutting down: the sweep is the backstop
            closing.close()


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
    """Run the self-tests these ids name on this process's commissioner; return once they
    have all started. Idempotent: runs that another attempt owns, or that are finished, are
    skipped; a run's verdict is stored as soon as it is known, so one slow (or hung) miner
    holds up nobody's — not even the next message's."""
    token, claimed = runs.claim(run_ids)
    if not claimed:
        return 0
    return commissioner().admit(claimed, token)


@shared_task(name="hosting.sweep_commissioning", acks_late=True, autoretry_for=(OperationalError,), max_retries=3)
def sweep_commissioning() -> dict:
    """Periodic: re-send what a dead worker or a lost message left, send what waits."""
    return runs.sweep()
