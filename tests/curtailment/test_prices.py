"""ERCOT price files: the autumn DST day keeps both hour-2 rows an hour apart in UTC, the
spring day has no hour 3, bad rows are listed by line and nothing is written, a re-import
changes nothing; the optional gridstatus fetch skips cleanly when it cannot run."""

import datetime as dt
import io
import itertools
import sys
import types
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from hosting.curtailment import prices
from hosting.curtailment.models import SettlementPrice, SiteGrid
from tests.factories import SiteFactory

HEADER = ",".join(prices.COLUMNS)
UTC = dt.UTC


def report(rows: list[str]) -> io.BytesIO:
    return io.BytesIO(("\r\n".join([HEADER, *rows]) + "\r\n").encode())


def day_rows(date: str, hours: list[tuple[int, str]], point: str = "LZ_WEST", price: str = "25.50") -> list[str]:
    return [f"{date},{h:02d},{q},{point},LZ,{price},{flag}" for h, flag in hours for q in range(1, 5)]


def autumn_day() -> list[str]:
    # 1 November 2026: clocks go back at 02:00 CDT; hour ending 2 is published twice.
    hours = [(1, "N"), (2, "N"), (2, "Y"), *[(h, "N") for h in range(3, 25)]]
    return day_rows("11/01/2026", hours)


def test_the_autumn_day_has_25_distinct_hours_and_both_hour_2s_an_hour_apart():
    rows = prices.parse_file(report(autumn_day()))
    starts = [row.interval_start for row in rows]
    assert len(rows) == 100
    assert len(set(starts)) == 100
    assert starts == sorted(starts)  # one continuous UTC sequence, 15 minutes apart
    assert all(b - a == dt.timedelta(minutes=15) for a, b in itertools.pairwise(starts))
    # Hour ending 2 (01:00–02:00 local): first in CDT (UTC−5), the repeat in CST (UTC−6).
    assert rows[4].interval_start == dt.datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert rows[8].interval_start == dt.datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
    assert rows[0].interval_start == dt.datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # midnight CDT
    assert rows[-1].interval_start == dt.datetime(2026, 11, 2, 5, 45, tzinfo=UTC)  # 23:45 CST


@pytest.mark.django_db
def test_the_autumn_day_is_stored_without_a_collision_and_a_reimport_changes_nothing():
    first = prices.import_file(report(autumn_day()))
    assert (first.created, first.updated) == (100, 0)
    assert SettlementPrice.objects.filter(settlement_point="LZ_WEST").count() == 100
    again = prices.import_file(report(autumn_day()))
    assert (again.created, again.updated) == (0, 100)
    assert SettlementPrice.objects.count() == 100


@pytest.mark.django_db
def test_a_corrected_file_updates_its_prices_in_place():
    prices.import_file(report(day_rows("07/15/2026", [(17, "N")], price="100")))
    prices.import_file(report(day_rows("07/15/2026", [(17, "N")], price="2500.25")))
    assert set(SettlementPrice.objects.values_list("price_usd_per_mwh", flat=True)) == {Decimal("2500.25")}
    # Hour ending 17 in July: 16:00 CDT = 21:00 UTC.
    assert SettlementPrice.objects.order_by("interval_start").first().interval_start == dt.datetime(
        2026, 7, 15, 21, 0, tzinfo=UTC
    )


def test_the_spring_day_has_no_hour_3_and_23_hours_in_a_row():
    hours = [(h, "N") for h in range(1, 25) if h != 3]
    rows = prices.parse_file(report(day_rows("03/08/2026", hours)))
    starts = [row.interval_start for row in rows]
    assert len(starts) == 92
    assert all(b - a == dt.timedelta(minutes=15) for a, b in itertools.pairwise(starts))
    assert starts[7] == dt.datetime(2026, 3, 8, 7, 45, tzinfo=UTC)  # 01:45 CST
    assert starts[8] == dt.datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 03:00 CDT (hour ending 4)


def test_hour_3_of_the_spring_day_is_refused():
    with pytest.raises(prices.PriceFileError) as refused:
        prices.parse_file(report(day_rows("03/08/2026", [(3, "N")])))
    assert refused.value.errors[0][0] == 2
    assert "does not exist on 2026-03-08" in refused.value.errors[0][1]


@pytest.mark.django_db
def test_bad_rows_are_each_reported_by_line_and_nothing_is_written():
    rows = [
        "07/15/2026,01,1,LZ_WEST,LZ,30.00,N",  # line 2: good
        "07/15/2026,25,1,LZ_WEST,LZ,30.00,N",  # line 3
        "07/15/2026,01,5,LZ_WEST,LZ,30.00,N",  # line 4
        "2026-13-01,01,1,LZ_WEST,LZ,30.00,N",  # line 5
        "07/15/2026,01,2,LZ_WEST,LZ,abc,N",  # line 6
        "07/15/2026,01,3,LZ_WEST,LZ,30.00,Y",  # line 7: July has no repeated hour
        "07/15/2026,01,1,LZ_WEST,LZ,31.00,N",  # line 8: the same interval as line 2
        "07/15/2026,01,4,,LZ,30.00,N",  # line 9
        "07/15/2026,01,4,LZ_WEST,LZ,30.00,X",  # line 10
        "07/15/2026,x1,4,LZ_WEST,LZ,30.00,N",  # line 11
        "07/15/2026,02,1,LZ_WEST,LZ,NaN,N",  # line 12
    ]
    with pytest.raises(prices.PriceFileError) as refused:
        prices.import_file(report(rows))
    errors = dict(refused.value.errors)
    assert sorted(errors) == list(range(3, 13))
    assert "DeliveryHour 25" in errors[3]
    assert "DeliveryInterval 5" in errors[4]
    assert "not a date" in errors[5]
    assert "not a number" in errors[6]
    assert "not a repeated hour" in errors[7]
    assert "also on line 2" in errors[8]
    assert "SettlementPointName is empty" in errors[9]
    assert "not Y or N" in errors[10]
    assert "not a whole number" in errors[11]
    assert "out of range" in errors[12]
    assert SettlementPrice.objects.count() == 0


def test_a_file_without_the_reports_columns_is_refused_at_line_1():
    with pytest.raises(prices.PriceFileError) as refused:
        prices.parse_file(io.BytesIO(b"Date,Price\n07/15/2026,30\n"))
    assert refused.value.errors[0][0] == 1
    assert "DeliveryHour" in refused.value.errors[0][1]


def test_a_file_that_is_not_text_is_refused():
    with pytest.raises(prices.PriceFileError) as refused:
        prices.parse_file(io.BytesIO(HEADER.encode() + b"\n\xff\xfe,01\n"))
    assert refused.value.errors == [(2, "not UTF-8 text")]


@pytest.mark.django_db
def test_the_command_imports_a_file_and_refuses_a_bad_one(tmp_path):
    good = tmp_path / "rtm.csv"
    good.write_bytes(report(autumn_day()).getvalue())
    out = io.StringIO()
    call_command("import_prices", str(good), stdout=out)
    assert "100 prices for LZ_WEST" in out.getvalue()
    assert "100 new, 0 updated" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(report(["07/15/2026,01,1,HB_HOUSTON,HU,30.00,N", "07/15/2026,99,1,HB_HOUSTON,HU,1,N"]).getvalue())
    with pytest.raises(CommandError, match="line 3: DeliveryHour 99"):
        call_command("import_prices", str(bad))
    assert not SettlementPrice.objects.filter(settlement_point="HB_HOUSTON").exists()
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_prices", str(tmp_path / "missing.csv"))


# --- gridstatus (optional) ---------------------------------------------------------------


def test_gridstatus_rows_keep_one_point_in_utc_and_skip_what_cannot_be_stored():
    chicago = dt.timezone(dt.timedelta(hours=-5))
    nan = float("nan")
    records = [
        {"Interval Start": dt.datetime(2026, 7, 15, 16, 0, tzinfo=chicago), "Location": "LZ_WEST", "SPP": 41.234},
        {"Interval Start": dt.datetime(2026, 7, 15, 16, 15, tzinfo=chicago), "Location": "LZ_WEST", "SPP": nan},
        {"Interval Start": dt.datetime(2026, 7, 15, 16, 30), "Location": "LZ_WEST", "SPP": 40.0},  # naive
        {"Interval Start": dt.datetime(2026, 7, 15, 16, 0, tzinfo=chicago), "Location": "LZ_SOUTH", "SPP": 99.0},
    ]
    rows = prices.gridstatus_rows(records, "LZ_WEST")
    assert rows == [prices.PriceRow("LZ_WEST", dt.datetime(2026, 7, 15, 21, 0, tzinfo=UTC), Decimal("41.23"))]


def test_gridstatus_rows_read_a_pandas_frame_when_pandas_is_there():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "Interval Start": pd.to_datetime(["2026-07-15 16:00"]).tz_localize("US/Central"),
            "Location": ["HB_HOUSTON"],
            "SPP": [120.5],
        }
    )
    rows = prices.gridstatus_rows(frame.to_dict("records"), "HB_HOUSTON")
    assert rows == [prices.PriceRow("HB_HOUSTON", dt.datetime(2026, 7, 15, 21, 0, tzinfo=UTC), Decimal("120.50"))]


@pytest.fixture
def fetching_site(db):
    return SiteGrid.objects.create(site=SiteFactory(), settlement_point="LZ_WEST", fetch_prices=True)


def test_without_gridstatus_the_fetch_is_skipped_and_logged(fetching_site, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "gridstatus", None)  # import gridstatus → ImportError
    assert prices.fetch_all() == {"LZ_WEST": None}
    assert "gridstatus is not installed" in caplog.text
    assert SettlementPrice.objects.count() == 0


def fake_gridstatus(get_spp) -> types.ModuleType:
    """A stand-in for the third-party library (not installed here; no network either)."""
    module = types.ModuleType("gridstatus")
    module.Markets = types.SimpleNamespace(REAL_TIME_15_MIN="REAL_TIME_15_MIN")
    module.Ercot = lambda: types.SimpleNamespace(get_spp=get_spp)
    return module


def test_when_ercot_cannot_be_reached_the_fetch_is_skipped_and_logged(fetching_site, monkeypatch, caplog):
    def offline(**kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setitem(sys.modules, "gridstatus", fake_gridstatus(offline))
    from hosting.curtailment import tasks_signals

    assert tasks_signals.fetch_prices() == 0
    assert "could not fetch prices for LZ_WEST" in caplog.text
    assert SettlementPrice.objects.count() == 0


def test_what_gridstatus_answers_is_stored(fetching_site, monkeypatch):
    asked = {}

    class Frame:
        def to_dict(self, orient):
            assert orient == "records"
            start = dt.datetime(2026, 7, 15, 21, 0, tzinfo=UTC)
            return [{"Interval Start": start, "Location": "LZ_WEST", "SPP": 250.0}]

    def get_spp(**kwargs):
        asked.update(kwargs)
        return Frame()

    monkeypatch.setitem(sys.modules, "gridstatus", fake_gridstatus(get_spp))
    from hosting.curtailment import tasks_signals

    assert tasks_signals.fetch_prices() == 1
    assert asked["locations"] == ["LZ_WEST"]
    assert asked["location_type"] == "Load Zone"
    stored = SettlementPrice.objects.get()
    assert (stored.source, stored.price_usd_per_mwh) == ("gridstatus", Decimal("250.00"))
