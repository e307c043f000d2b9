"""Where windows are written. One function per write path, so the fast path (COPY on
PostgreSQL, into day partitions) can change without touching its callers."""

from __future__ import annotations

from collections.abc import Iterable

from hosting.telemetry.models import CircuitWindow, Window

WINDOW_FIELDS = [f.name for f in Window._meta.concrete_fields if f.name not in ("start", "machine")]
CIRCUIT_FIELDS = [f.name for f in CircuitWindow._meta.concrete_fields if f.name not in ("start", "circuit")]


def write_windows(rows: Iterable[Window]) -> int:
    """Insert windows; a window already there (an unknown filled in earlier) is replaced."""
    rows = list(rows)
    Window.objects.bulk_create(
        rows, batch_size=2000, update_conflicts=True, unique_fields=["start", "machine"], update_fields=WINDOW_FIELDS
    )
    return len(rows)


def write_circuit_windows(rows: Iterable[CircuitWindow]) -> int:
    rows = list(rows)
    CircuitWindow.objects.bulk_create(
        rows, batch_size=2000, update_conflicts=True, unique_fields=["start", "circuit"], update_fields=CIRCUIT_FIELDS
    )
    return len(rows)
