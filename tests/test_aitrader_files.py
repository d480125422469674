"""Import of AI-Trader price files: both layouts, both field names, idempotence, bad files."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from market_data.aitrader_files import import_prices, read_merged_jsonl, read_price_file
from market_data.calendar import trading_days
from models.errors import PriceFileError
from models.prices import DAILY, HOURLY, coverage
from models.tables import PriceBar


def _count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(PriceBar)).scalar_one()


def _write_json(path: Path, payload: object) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_read_price_file_matches_the_file(shared_data: Path) -> None:
    path = shared_data / "nasdaq100_daily" / "daily_prices_AAPL.json"
    series = json.loads(path.read_text())["Time Series (Daily)"]
    bars = read_price_file(path)
    assert len(bars) == 100
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)
    assert bars[0].ts == datetime(2025, 6, 10)
    for bar in bars:
        values = series[bar.ts.date().isoformat()]
        assert (bar.symbol, bar.interval) == ("AAPL", DAILY)
        assert bar.open == float(values["1. open"])
        assert bar.high == float(values["2. high"])
        assert bar.low == float(values["3. low"])
        assert bar.close == float(values["4. close"])
        assert bar.volume == float(values["5. volume"])


def test_read_merged_jsonl_keeps_the_open_only_newest_bar(shared_data: Path) -> None:
    bars = read_merged_jsonl(shared_data / "nasdaq100_hourly" / "merged.jsonl")
    assert len(bars) == 101 * 29 * 6
    assert {b.interval for b in bars} == {HOURLY}
    assert sum(b.close is None for b in bars) == 101
    aapl = [b for b in bars if b.symbol == "AAPL"]
    assert aapl[0].ts == datetime(2025, 10, 1, 10)
    newest = aapl[-1]
    assert newest.ts == datetime(2025, 11, 10, 15)
    assert newest.open == 269.53
    assert (newest.high, newest.low, newest.close, newest.volume) == (None, None, None, None)
    assert all(b.close is not None for b in aapl[:-1])
    assert {b.ts.hour for b in aapl} == {10, 11, 12, 13, 14, 15}


def test_both_field_names_in_both_readers(tmp_path: Path) -> None:
    renamed = {"1. buy price": "10.5", "2. high": "11", "3. low": "10", "4. sell price": "10.8"}
    raw = {"1. open": "10.5", "2. high": "11", "3. low": "10", "4. close": "10.8"}
    for name, fields in (("renamed", renamed), ("raw", raw)):
        daily = {"Meta Data": {"2. Symbol": "abc"}, "Time Series (Daily)": {"2025-10-01": fields}}
        hourly = {
            "Meta Data": {"2. Symbol": "XYZ"},
            "Time Series (60min)": {"2025-10-01 10:00:00": fields},
        }
        file_bars = read_price_file(_write_json(tmp_path / f"daily_prices_{name}.json", hourly))
        merged = tmp_path / f"{name}.jsonl"
        merged.write_text(json.dumps(daily) + "\n\n")
        merged_bars = read_merged_jsonl(merged)
        for bar in (*file_bars, *merged_bars):
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
                10.5,
                11,
                10,
                10.8,
                None,
            )
        assert (file_bars[0].symbol, file_bars[0].interval) == ("XYZ", HOURLY)
        assert (merged_bars[0].symbol, merged_bars[0].ts) == ("ABC", datetime(2025, 10, 1))


def test_symbol_from_the_file_name_when_meta_data_lacks_it(tmp_path: Path) -> None:
    payload = {"Time Series (Daily)": {"2025-10-01": {"1. open": "1", "4. close": "2"}}}
    bars = read_price_file(_write_json(tmp_path / "Adaily_prices_qqq.json", payload))
    assert bars[0].symbol == "QQQ"


def test_import_the_daily_folder_twice(session: Session, shared_data: Path) -> None:
    first = import_prices(session, shared_data / "nasdaq100_daily")
    session.commit()
    rows = _count(session)
    assert first.files_read == 103
    assert first.bars_read == first.bars_inserted == rows == 102 * 100 + 79
    assert len(first.symbols) == 103 and "QQQ" in first.symbols

    second = import_prices(session, shared_data / "nasdaq100_daily")
    session.commit()
    assert second.bars_read == first.bars_read
    assert second.bars_inserted == 0
    assert _count(session) == rows

    rows_by_symbol = {row.symbol: row for row in coverage(session, DAILY)}
    assert len(rows_by_symbol) == 103
    fb = rows_by_symbol.pop("FB")
    assert (fb.last, fb.days, fb.bars) == (date(2025, 10, 16), 79, 79)
    assert {(r.first, r.last, r.days) for r in rows_by_symbol.values()} == {
        (date(2025, 6, 10), date(2025, 10, 30), 100)
    }
    stored_days = session.execute(select(PriceBar.day).distinct()).scalars()
    assert sorted(stored_days) == trading_days(date(2025, 6, 10), date(2025, 10, 30))


def test_import_merged_jsonl(session: Session, shared_data: Path, tmp_path: Path) -> None:
    # Ten of the file's 101 symbols: storing all 17,574 bars takes seconds per backend.
    lines = (shared_data / "nasdaq100_hourly" / "merged.jsonl").read_text().splitlines()
    merged = tmp_path / "merged.jsonl"
    merged.write_text("\n".join(lines[:10]) + "\n")
    report = import_prices(session, merged)
    session.commit()
    assert (report.files_read, len(report.symbols)) == (1, 10)
    assert report.bars_inserted == report.bars_read == 10 * 29 * 6
    assert {row.interval for row in coverage(session)} == {HOURLY}
    newest = session.execute(
        select(PriceBar).where(PriceBar.symbol == "AAPL").order_by(PriceBar.ts.desc()).limit(1)
    ).scalar_one()
    assert newest.ts == datetime(2025, 11, 10, 15)
    assert newest.day == date(2025, 11, 10)
    assert newest.open == 269.53 and newest.close is None and newest.volume is None
    assert import_prices(session, tmp_path).bars_inserted == 0


GOOD_BAR = {
    "1. open": "1.0",
    "2. high": "2.0",
    "3. low": "0.5",
    "4. close": "1.5",
    "5. volume": "9",
}
MALFORMED = {
    "bad-json": ("daily_prices_BAD.json", '{"Meta Data": {', "not valid JSON"),
    "no-series": (
        "daily_prices_BAD.json",
        json.dumps({"Meta Data": {"2. Symbol": "BAD"}}),
        "no 'Time Series (Daily)'",
    ),
    "error-answer": (
        "daily_prices_BAD.json",
        json.dumps({"Note": "Thank you for using Alpha Vantage! Our standard API call frequency"}),
        "Note: Thank you",
    ),
    "non-numeric": (
        "daily_prices_BAD.json",
        json.dumps(
            {
                "Meta Data": {"2. Symbol": "BAD"},
                "Time Series (Daily)": {
                    "2025-10-01": GOOD_BAR,
                    "2025-10-02": {**GOOD_BAR, "4. close": "n/a"},
                },
            }
        ),
        "bar 2025-10-02: '4. close' is not a number: 'n/a'",
    ),
    "bad-date": (
        "daily_prices_BAD.json",
        json.dumps({"Meta Data": {"2. Symbol": "BAD"}, "Time Series (Daily)": {"Oct 1": GOOD_BAR}}),
        "bar key 'Oct 1' is not a 1d timestamp",
    ),
    "jsonl-line": (
        "merged.jsonl",
        json.dumps({"Meta Data": {"2. Symbol": "OK"}, "Time Series (Daily)": {"2025-10-01": {}}})
        + "\n{oops\n",
        "line 1: bar 2025-10-01 has no '1. open'",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_named_and_nothing_is_written(
    case: str, session: Session, shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    for symbol in ("AAPL", "MSFT"):
        name = f"daily_prices_{symbol}.json"
        shutil.copy(shared_data / "nasdaq100_daily" / name, folder / name)
    import_prices(session, folder / "daily_prices_AAPL.json")
    session.commit()
    before = _count(session)

    name, content, problem = MALFORMED[case]
    (folder / name).write_text(content)
    with pytest.raises(PriceFileError) as caught:
        import_prices(session, folder)
    session.rollback()
    message = str(caught.value)
    assert str(folder / name) in message
    assert problem in message
    assert _count(session) == before


def test_missing_or_empty_paths(tmp_path: Path, session: Session) -> None:
    with pytest.raises(PriceFileError, match="no such file or folder"):
        import_prices(session, tmp_path / "nowhere")
    with pytest.raises(PriceFileError, match="no price files"):
        import_prices(session, tmp_path)
