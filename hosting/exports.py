"""CSV exports: the one way Haven writes a CSV for people to open in a spreadsheet.

Tenants write some of what Haven stores (serials, notes, references); a cell that begins
with `=`, `+`, `-` or `@` (or a tab or carriage return) is run as a formula by Excel,
LibreOffice and Google Sheets (OWASP: CSV injection). Every text cell goes through
`safe_cell`, which prefixes such a value with an apostrophe, so it shows as text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A cell as it may be written: text that would start a formula is quoted with '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose write returns what it was given (for streaming)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV text, a line at a time: the header, then each row with every cell made safe."""
    writer = csv.writer(_Echo())
    yield writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    """A CSV download streamed row by row (a fleet's list need not fit in memory)."""
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
