"""Real-time settlement point prices: ERCOT's published report format from a file, and an
optional fetch with the `gridstatus` library where a site has network access.

ERCOT's RTM report gives each 15-minute price as DeliveryDate, DeliveryHour (1–24, the hour
*ending*), DeliveryInterval (1–4, the quarter of that hour), in Central Prevailing Time.
On the autumn DST day hour 2 is published twice and DSTFlag "Y" marks the repeated one (the
first hour of Central Standard Time); on the spring day hour 3 does not exist. Prices are
stored with a UTC `interval_start`, so the two hour-2 rows are an hour apart and never collide.

A file is imported whole or not at all: every bad row is reported with its line number and
why, and nothing is written. Good files are upserted by (settlement point, interval start),
so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.db import transaction
from django.utils import timezone

from hosting.curtailment.models import SettlementPrice, SiteGrid

log = logging.getLogger(__name__)

CENTRAL = zoneinfo.ZoneInfo("America/Chicago")
INTERVAL = dt.timedelta(minutes=15)
COLUMNS = (
    "DeliveryDate",
    "DeliveryHour",
    "DeliveryInterval",
    "SettlementPointName",
    "SettlementPointType",
    "SettlementPointPrice",
    "DSTFlag",
)
# The model's DecimalField(max_digits=10, decimal_places=2); ERCOT's cap is $5,000/MWh.
PRICE_LIMIT = Decimal("99999999.99")
MAX_ERRORS = 50  # a wrong file would otherwise list every one of its lines


@dataclass(frozen=True)
class PriceRow:
    """One price as it will be stored."""

    settlement_point: str
    interval_start: dt.datetime  # UTC
    price_usd_per_mwh: Decimal


class PriceFileError(Exception):
    """The file was refused; `errors` are (line number, reason), line 1 being the header."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        shown = "; ".join(f"line {line}: {reason}" for line, reason in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} bad row(s), nothing imported: {shown}{more}")


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    points: tuple[str, ...]
    first: dt.datetime | None
    last: dt.datetime | None

    @property
    def rows(self) -> int:
        return self.created + self.updated


def interval_start_utc(day: dt.date, hour_ending: int, interval: int, repeated: bool) -> dt.datetime:
    """The UTC start of ERCOT's (DeliveryDate, DeliveryHour, DeliveryInterval, DSTFlag).

    Raises ValueError when that interval does not exist: an hour outside 1–24, a quarter
    outside 1–4, hour 3 of the spring DST day, or a DSTFlag "Y" on an hour that is not repeated."""
    if not 1 <= hour_ending <= 24:
        raise ValueError(f"DeliveryHour {hour_ending} is not an hour ending from 1 to 24")
    if not 1 <= interval <= 4:
        raise ValueError(f"DeliveryInterval {interval} is not a quarter from 1 to 4")
    wall = dt.datetime.combine(day, dt.time(hour_ending - 1, (interval - 1) * 15))
    first = wall.replace(tzinfo=CENTRAL, fold=0)
    second = wall.replace(tzinfo=CENTRAL, fold=1)
    if first.astimezone(dt.UTC).astimezone(CENTRAL).replace(tzinfo=None) != wall:
        raise ValueError(f"hour {hour_ending} does not exist on {day} (clocks go forward)")
    if repeated and first.utcoffset() == second.utcoffset():
        raise ValueError(f"DSTFlag Y on hour {hour_ending} of {day}, which is not a repeated hour")
    utc = (second if repeated else first).astimezone(dt.UTC)
    return utc


def _parse_date(text: str) -> dt.date:
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"DeliveryDate {text!r} is not a date (MM/DD/YYYY)")


def _parse_int(text: str, column: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{column} {text!r} is not a whole number")
    return int(text)


def parse_price(text: str) -> Decimal:
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"SettlementPointPrice {text!r} is not a number") from None
    if not price.is_finite() or abs(price) > PRICE_LIMIT:
        raise ValueError(f"SettlementPointPrice {text!r} is out of range")
    return price.quantize(Decimal("0.01"))


def parse_rows(rows: Iterable[Mapping[str, str | None]], *, first_line: int = 2) -> list[PriceRow]:
    """ERCOT report rows (as csv.DictReader gives them) to prices, or PriceFileError."""
    errors: list[tuple[int, str]] = []
    parsed: list[PriceRow] = []
    seen: dict[tuple[str, dt.datetime], int] = {}
    for line, row in enumerate(rows, start=first_line):
        if len(errors) >= MAX_ERRORS:
            break
        if None in row:  # csv.DictReader puts extra cells under the key None
            errors.append((line, "more cells than the header has columns"))
            continue
        values = {column: (row.get(column) or "").strip() for column in COLUMNS}
        if not any(values.values()):
            continue  # a blank line
        try:
            for column in ("DeliveryDate", "DeliveryHour", "DeliveryInterval", "SettlementPointName"):
                if not values[column]:
                    raise ValueError(f"{column} is empty")
            flag = values["DSTFlag"].upper()
            if flag not in ("Y", "N", ""):
                raise ValueError(f"DSTFlag {values['DSTFlag']!r} is not Y or N")
            point = values["SettlementPointName"]
            if len(point) > 40:
                raise ValueError("SettlementPointName is longer than 40 characters")
            start = interval_start_utc(
                _parse_date(values["DeliveryDate"]),
                _parse_int(values["DeliveryHour"], "DeliveryHour"),
                _parse_int(values["DeliveryInterval"], "DeliveryInterval"),
                repeated=flag == "Y",
            )
            price = parse_price(values["SettlementPointPrice"])
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        if (point, start) in seen:
            errors.append((line, f"{point} at {start:%Y-%m-%d %H:%M} UTC is also on line {seen[point, start]}"))
            continue
        seen[point, start] = line
        parsed.append(PriceRow(point, start, price))
    if errors:
        raise PriceFileError(errors)
    return parsed


def parse_file(file: IO[bytes] | IO[str]) -> list[PriceRow]:
    """An ERCOT RTM settlement point price CSV (bytes or text) to prices, or PriceFileError."""
    raw = file.read()
    if isinstance(raw, bytes):
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PriceFileError([(raw[: exc.start].count(b"\n") + 1, "not UTF-8 text")]) from None
    else:
        content = raw.removeprefix("\ufeff")
    if "\x00" in content:
        raise PriceFileError([(content[: content.index("\x00")].count("\n") + 1, "a NUL byte: not a CSV file")])
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise PriceFileError([(1, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")])
        reader.fieldnames = header
        return parse_rows(reader)
    except csv.Error as exc:
        raise PriceFileError([(reader.line_num, f"not readable as CSV: {exc}")]) from None


def store(rows: list[PriceRow], *, source: str = "file") -> ImportResult:
    """Upsert prices by (settlement point, interval start), all in one transaction."""
    if not rows:
        return ImportResult(0, 0, (), None, None)
    points = sorted({row.settlement_point for row in rows})
    first, last = min(row.interval_start for row in rows), max(row.interval_start for row in rows)
    now = timezone.now()
    with transaction.atomic():
        existing = set(
            SettlementPrice.objects.filter(
                settlement_point__in=points, interval_start__gte=first, interval_start__lte=last
            ).values_list("settlement_point", "interval_start")
        )
        SettlementPrice.objects.bulk_create(
            [
                SettlementPrice(
                    settlement_point=row.settlement_point,
                    interval_start=row.interval_start,
                    interval_minutes=15,
                    price_usd_per_mwh=row.price_usd_per_mwh,
                    source=source,
                    imported_at=now,
                )
                for row in rows
            ],
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["settlement_point", "interval_start"],
            update_fields=["price_usd_per_mwh", "interval_minutes", "source", "imported_at"],
        )
    updated = sum((row.settlement_point, row.interval_start) in existing for row in rows)
    return ImportResult(len(rows) - updated, updated, tuple(points), first, last)


def import_file(file: IO[bytes] | IO[str], *, source: str = "file") -> ImportResult:
    """Parse and store an ERCOT price file: all of it, or (PriceFileError) none of it."""
    return store(parse_file(file), source=source)


# --- gridstatus (optional) ---------------------------------------------------------------


def location_type(point: str) -> str:
    """gridstatus's ERCOT location type of a settlement point's name."""
    if point.startswith("LZ_"):
        return "Load Zone"
    if point.startswith("HB_"):
        return "Trading Hub"
    return "Resource Node"


def gridstatus_rows(records: Iterable[Mapping[str, Any]], point: str) -> list[PriceRow]:
    """Rows of gridstatus's ERCOT SPP frame (`Interval Start`, `Location`, `SPP`) for one
    settlement point; rows without a price or a time zone are skipped (and logged)."""
    rows: dict[dt.datetime, PriceRow] = {}
    for record in records:
        if record.get("Location") != point:
            continue
        start, spp = record.get("Interval Start"), record.get("SPP")
        to_datetime = getattr(start, "to_pydatetime", None)  # a pandas Timestamp
        if to_datetime is not None:
            start = to_datetime()
        if not isinstance(start, dt.datetime) or start.tzinfo is None:
            log.warning("gridstatus row for %s without an aware Interval Start skipped: %r", point, start)
            continue
        if spp is None or (isinstance(spp, float) and math.isnan(spp)):
            continue
        try:
            price = parse_price(str(spp))
        except ValueError:
            log.warning("gridstatus row for %s at %s with price %r skipped", point, start, spp)
            continue
        utc = start.astimezone(dt.UTC)
        rows[utc] = PriceRow(point, utc, price)
    return [rows[start] for start in sorted(rows)]


def fetch_gridstatus(point: str, *, date: str = "today") -> ImportResult | None:
    """Fetch ERCOT's 15-minute real-time prices for one settlement point with gridstatus and
    store them. None (logged) when gridstatus is not installed or ERCOT cannot be reached:
    it is optional, and a site without network access imports files instead."""
    try:
        import gridstatus  # optional: not in requirements.txt
    except ImportError:
        log.warning("gridstatus is not installed: prices for %s not fetched (import a file instead)", point)
        return None
    try:
        frame = gridstatus.Ercot().get_spp(
            date=date,
            market=gridstatus.Markets.REAL_TIME_15_MIN,
            locations=[point],
            location_type=location_type(point),
        )
        records = frame.to_dict("records")
    except Exception as exc:  # offline, ERCOT down, its format changed: skip this round
        log.warning("gridstatus could not fetch prices for %s: %s", point, exc, exc_info=True)
        return None
    return store(gridstatus_rows(records, point), source="gridstatus")


def fetch_all(*, date: str = "today") -> dict[str, ImportResult | None]:
    """Every settlement point of a site that fetches its prices, once each."""
    grids = SiteGrid.objects.filter(fetch_prices=True).exclude(settlement_point="")
    points = grids.values_list("settlement_point", flat=True)
    return {point: fetch_gridstatus(point, date=date) for point in sorted(set(points))}
