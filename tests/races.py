"""Race helpers for tests on PostgreSQL: real concurrent requests, and chosen interleavings.

`race` releases n threads together behind a barrier, each on its own database connection,
so their transactions overlap as two requests' would; it sorts what came back into
successes and refusals and fails the test on anything else (a crash is a bug to show).

`run_before` / `run_after` (after Saleor's `saleor/tests/race_condition.py`) patch a function
so that a callback runs at that chosen point of the code under test — e.g. a second
booking started while the first holds its lock — and `Concurrent` runs that second request
in its own thread and connection, with `wait_until_blocked` to know it is waiting for the
first one's lock before the first goes on: a deterministic interleaving, not a hopeful one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from django.db import connection, connections

from capacity.errors import Refusal

JOIN_TIMEOUT_S = 120


def race(
    n: int, attempt: Callable[[int], Any], *, refusals: tuple[type[BaseException], ...] = (Refusal,)
) -> tuple[list, list[BaseException]]:
    """Run attempt(i) in n threads released together; return (results, refusals)."""
    barrier = threading.Barrier(n)
    wins: list = []
    losses: list[BaseException] = []
    crashes: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            result = attempt(i)
            with lock:
                wins.append(result)
        except refusals as exc:
            with lock:
                losses.append(exc)
        except BaseException as exc:  # anything else is a bug the test must show
            with lock:
                crashes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,), name=f"race-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a racing thread never finished (deadlock?)"
    assert not crashes, crashes
    assert len(wins) + len(losses) == n
    return wins, losses


class Concurrent:
    """`fn()` run in a thread of its own, on its own connection; `result()` joins it and
    returns its value or raises what it raised."""

    def __init__(self, fn: Callable[[], Any]):
        self._value: Any = None
        self._error: BaseException | None = None
        self.backend_pid: int | None = None
        self._started = threading.Event()

        def run() -> None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.backend_pid = cursor.fetchone()[0]
                self._started.set()
                self._value = fn()
            except BaseException as exc:
                self._error = exc
            finally:
                self._started.set()
                connection.close()

        self._thread = threading.Thread(target=run, name="concurrent")
        self._thread.start()
        self._started.wait(JOIN_TIMEOUT_S)

    def result(self) -> Any:
        self._thread.join(JOIN_TIMEOUT_S)
        assert not self._thread.is_alive(), "the concurrent call never finished"
        if self._error is not None:
            raise self._error
        return self._value

    def wait_until_blocked(self, timeout_s: float = 30) -> None:
        """Return once this thread's backend waits for a lock another transaction holds."""
        deadline = time.monotonic() + timeout_s
        # A connection of its own: the caller's may be inside the transaction that holds the lock.
        with contextlib.closing(connections.create_connection("default")) as watcher:
            while time.monotonic() < deadline:
                with watcher.cursor() as cursor:
                    cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.backend_pid])
                    row = cursor.fetchone()
                if row and row[0] == "Lock":
                    return
                if not self._thread.is_alive():
                    raise AssertionError("the concurrent call finished without waiting for the lock")
                time.sleep(0.02)
        raise AssertionError(f"the concurrent call did not block on a lock within {timeout_s} s")


@contextlib.contextmanager
def run_before(target: str, callback: Callable[..., Any]) -> Iterator[mock.MagicMock]:
    """Patch `target` (a dotted path) so that callback(*args, **kwargs) runs just before it."""
    original = _resolve(target)

    def wrapped(*args, **kwargs):
        callback(*args, **kwargs)
        return original(*args, **kwargs)

    with mock.patch(target, side_effect=wrapped) as patched:
        yield patched


@contextlib.contextmanager
def run_after(target: str, callback: Callable[..., Any]) -> Iterator[mock.MagicMock]:
    """Patch `target` so that callback(result, *args, **kwargs) runs just after it returns."""
    original = _resolve(target)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        callback(result, *args, **kwargs)
        return result

    with mock.patch(target, side_effect=wrapped) as patched:
        yield patched


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)
