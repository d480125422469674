"""Import of the original AI-Trader's other markets: SSE-50 daily and hourly, crypto, US hourly.

Real facts of `../shared/data`, recomputed from the files themselves where they can be; the
open-only newest bars and their completion; prices that must be refused.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Row, func, select
from sqlmodel import Session

from market_data.aitrader_files import import_prices, read_price_csv, read_price_file
from market_data.calendar import calendar
from models.engine import create_store_engine
from models.errors import PriceFileError
from models.prices import DAILY, HOURLY, Bar, coverage, insert_bars
from models.tables import PriceBar

SSE_INDEX = "000016.SH"
COINS = ["ADA", "AVAX", "BTC", "DOT", "ETH", "LINK", "LTC", "SOL", "SUI", "XRP"]
SSE_HOURS = [time(10, 30), time(11, 30), time(14, 0), time(15, 0)]
LAST_SSE_DAY = date(2025, 11, 19)


def _count(session: Session, **where: object) -> int:
    query = select(func.count()).select_from(PriceBar)
    for column, value in where.items():
        query = query.where(getattr(PriceBar, column) == value)
    return session.execute(query).scalar_one()


def _bars(session: Session, symbol: str, interval: str = DAILY) -> list[Row]:
    """The stored rows, oldest first (plain rows: fast, and never objects cached in the session)."""
    table = PriceBar.__table__
    query = select(table).where(table.c.symbol == symbol, table.c.interval == interval)
    return list(session.execute(query.order_by(table.c.ts)).all())


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _merged(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """Symbol -> the bars of one merged.jsonl line, as the file writes them."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    series = {o["Meta Data"]["2. Symbol"]: o for o in lines}
    return {
        s: next(v for k, v in o.items() if k.startswith("Time Series")) for s, o in series.items()
    }


@pytest.fixture
def sqlite_session(sqlite_url: str) -> Iterator[Session]:
    """A fresh SQLite store only: for whole folders, too slow to import twice per test."""
    engine = create_store_engine(sqlite_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


# --- SSE-50 daily -------------------------------------------------------------------------------


def test_sse50_daily_folder(sqlite_session: Session, shared_data: Path) -> None:
    session, folder = sqlite_session, shared_data / "sse50_daily"
    report = import_prices(session, folder)
    session.commit()
    assert report.files_read == 3
    assert report.files_skipped == [str(folder / "sse_50_weight.csv")]
    weights = _csv_rows(folder / "sse_50_weight.csv")
    stocks = sorted(row["con_code"] for row in weights)
    assert report.symbols == sorted([*stocks, SSE_INDEX]) and len(stocks) == 50

    sessions = calendar("XSHG").trading_days(date(2025, 10, 9), LAST_SSE_DAY)
    assert len(sessions) == 30
    rows = {row.symbol: row for row in coverage(session, DAILY)}
    assert set(rows) == {*stocks, SSE_INDEX}
    index = rows.pop(SSE_INDEX)
    assert (index.first, index.last, index.bars) == (date(2025, 9, 30), LAST_SSE_DAY, 31)
    assert {(r.first, r.last, r.bars, r.days) for r in rows.values()} == {
        (sessions[0], sessions[-1], 30, 30)
    }
    stored_days = session.execute(
        select(PriceBar.day).where(PriceBar.symbol != SSE_INDEX).distinct()
    ).scalars()
    assert sorted(stored_days) == sessions
    assert report.bars_inserted == _count(session) == 50 * 30 + 31
    assert _count(session, close=None) == 0  # every open-only newest bar was completed

    # The newest bars: the merged file's open, the CSV's close, high, low and volume (lots x 100).
    merged = _merged(folder / "merged.jsonl")
    newest = [
        r for r in _csv_rows(folder / "daily_prices_sse_50.csv") if r["trade_date"] == "20251119"
    ]
    assert len(newest) == 50
    for row in newest:
        (bar,) = [b for b in _bars(session, row["ts_code"]) if b.day == LAST_SSE_DAY]
        assert bar.open == float(merged[row["ts_code"]]["2025-11-19"]["1. buy price"])
        assert "4. sell price" not in merged[row["ts_code"]]["2025-11-19"]
        assert (bar.close, bar.high, bar.low) == (
            float(row["close"]),
            float(row["high"]),
            float(row["low"]),
        )
        assert bar.volume == round(float(row["vol"]) * 100)
    # Elsewhere the merged file's complete bar is kept, even where the CSV's volume differs.
    (october_10,) = [b for b in _bars(session, "600028.SH") if b.day == date(2025, 10, 10)]
    assert october_10.volume == float(merged["600028.SH"]["2025-10-10"]["5. volume"]) == 128243489

    index_file = json.loads((folder / "index_daily_sse_50.json").read_text())
    index_close = float(index_file["Time Series (Daily)"]["2025-11-19"]["4. close"])
    assert _bars(session, SSE_INDEX)[-1].close == index_close == 3020.3487

    assert import_prices(session, folder).bars_inserted == 0


def test_markets_stay_apart(sqlite_session: Session, shared_data: Path) -> None:
    """SSE-50 daily, then NASDAQ-100 daily, into one store: each intact, re-imports add nothing."""
    session = sqlite_session
    sse = import_prices(session, shared_data / "sse50_daily")
    session.commit()
    before = {(r.symbol, r.first, r.last, r.bars) for r in coverage(session)}
    us = import_prices(session, shared_data / "nasdaq100_daily")
    session.commit()
    assert not set(sse.symbols) & set(us.symbols)
    after = {(r.symbol, r.first, r.last, r.bars) for r in coverage(session)}
    assert before < after
    assert len(after) == 51 + 103
    assert _count(session) == 50 * 30 + 31 + 102 * 100 + 79
    assert {r.market for r in coverage(session)} == {"real"}
    assert import_prices(session, shared_data / "sse50_daily").bars_inserted == 0
    assert (
        import_prices(
            session, shared_data / "nasdaq100_daily" / "daily_prices_QQQ.json"
        ).bars_inserted
        == 0
    )


def test_a_later_import_completes_open_only_bars(
    session: Session, shared_data: Path, tmp_path: Path
) -> None:
    folder = shared_data / "sse50_daily"
    first = import_prices(session, folder / "merged.jsonl")
    session.commit()
    assert first.bars_inserted == 1500
    open_only = [b for b in _bars(session, "600519.SH") if b.close is None]
    assert [b.day for b in open_only] == [LAST_SSE_DAY]
    assert _count(session, close=None) == 50

    # The CSV adds nothing new; it completes the 50 open-only bars and changes no other.
    second = import_prices(session, folder / "daily_prices_sse_50.csv")
    session.commit()
    assert (second.bars_read, second.bars_inserted) == (1500, 50)
    assert _count(session) == 1500 and _count(session, close=None) == 0
    (moutai,) = [b for b in _bars(session, "600519.SH") if b.day == LAST_SSE_DAY]
    csv_row = next(
        r
        for r in _csv_rows(folder / "daily_prices_sse_50.csv")
        if r["ts_code"] == "600519.SH" and r["trade_date"] == "20251119"
    )
    assert (moutai.open, moutai.close) == (open_only[0].open, float(csv_row["close"]))
    assert import_prices(session, folder / "daily_prices_sse_50.csv").bars_inserted == 0

    # The weights file holds no prices: skipped in a folder, refused on its own.
    with pytest.raises(PriceFileError, match=r"sse_50_weight\.csv: holds no prices"):
        import_prices(session, folder / "sse_50_weight.csv")


# --- SSE-50 hourly ------------------------------------------------------------------------------


def test_sse50_hourly_folder(sqlite_session: Session, shared_data: Path) -> None:
    session, folder = sqlite_session, shared_data / "sse50_hourly"
    report = import_prices(session, folder)
    session.commit()
    assert (report.files_read, report.bars_read, report.bars_inserted) == (2, 12000, 6000)
    assert len(report.symbols) == 50 and "600519.SH" in report.symbols
    assert {r.interval for r in coverage(session)} == {HOURLY}

    sessions = calendar("XSHG").trading_days(date(2025, 10, 9), LAST_SSE_DAY)
    expected_times = [datetime.combine(day, hour) for day in sessions for hour in SSE_HOURS]
    for symbol in report.symbols:
        assert [b.ts for b in _bars(session, symbol, HOURLY)] == expected_times
    assert _count(session, close=None) == 0

    rows = _csv_rows(folder / "A_stock_hourly.csv")
    assert {r["stock_code"] for r in rows} == set(report.symbols)  # stored as the file names them
    last = [r for r in rows if r["trade_date"] == "2025-11-19 15:00"]
    assert len(last) == 50
    for row in last:
        bar = _bars(session, row["stock_code"], HOURLY)[-1]
        assert bar.ts == datetime(2025, 11, 19, 15)
        assert (bar.open, bar.high, bar.low, bar.close) == tuple(
            float(row[k]) for k in ("open", "high", "low", "close")
        )
        assert bar.volume == 100 * float(row["volume"])  # efinance counts lots of 100 shares
    # Hourly volumes in shares add up to the day's volume of the daily file (in shares).
    day_volume = sum(b.volume for b in _bars(session, "600519.SH", HOURLY) if b.ts.day == 15)
    assert day_volume == pytest.approx(4_278_540, rel=1e-3)  # 2025-10-15 of sse50_daily
    assert import_prices(session, folder).bars_inserted == 0


# --- NASDAQ-100 hourly --------------------------------------------------------------------------


def test_nasdaq100_hourly_folder(sqlite_session: Session, shared_data: Path) -> None:
    session = sqlite_session
    report = import_prices(session, shared_data / "nasdaq100_hourly")
    session.commit()
    assert len(report.symbols) == 101 and report.bars_inserted == 101 * 174
    sessions = calendar("XNYS").trading_days(date(2025, 10, 1), date(2025, 11, 10))
    hours = [time(hour) for hour in range(10, 16)]
    aapl = _bars(session, "AAPL", HOURLY)
    assert [b.ts for b in aapl] == [datetime.combine(d, h) for d in sessions for h in hours]
    # No CSV here: the newest bar of each symbol stays open-only.
    open_only = session.execute(select(PriceBar.ts).where(PriceBar.close.is_(None))).scalars()
    assert set(open_only) == {datetime(2025, 11, 10, 15)}
    assert _count(session, close=None) == 101


# --- crypto -------------------------------------------------------------------------------------


def test_crypto_folder(sqlite_session: Session, shared_data: Path) -> None:
    # The whole histories: about 27,000 bars, some 5 s on SQLite, so SQLite only.
    session, folder = sqlite_session, shared_data / "crypto_daily"
    report = import_prices(session, folder)
    session.commit()
    assert report.symbols == sorted([*COINS, "CD5"])
    assert report.files_read == 11 and report.bars_inserted == report.bars_read == _count(session)

    btc_file = json.loads((folder / "daily_prices_BTC.json").read_text())["Time Series (Daily)"]
    btc = {b.day: b for b in _bars(session, "BTC")}
    assert len(btc) == len(btc_file)
    saturday = date(2025, 11, 8)
    assert saturday.weekday() == 5
    values = btc_file[saturday.isoformat()]
    assert (btc[saturday].open, btc[saturday].close, btc[saturday].volume) == (
        float(values["1. open"]),
        float(values["4. close"]),
        float(values["5. volume"]),
    )
    # Every UTC day, weekends included, for every coin.
    run = [date(2025, 11, 1) + timedelta(days=n) for n in range(45)]
    for coin in COINS:
        days = {b.day for b in _bars(session, coin)}
        assert set(run) <= days, coin

    cd5_file = json.loads((folder / "CD5_crypto_index.json").read_text())["Time Series (Daily)"]
    cd5 = _bars(session, "CD5")
    assert [b.day for b in cd5] == [date(2025, 11, 1) + timedelta(days=n) for n in range(15)]
    assert all(b.high is None and b.low is None and b.volume == 0 for b in cd5)
    assert [b.close for b in cd5] == [float(v["4. close"]) for _, v in sorted(cd5_file.items())]
    assert cd5[0].close == 50000


# --- numbers, layouts and refusals --------------------------------------------------------------

GOOD = {
    "1. open": "1,430.0000",
    "2. high": "1,440.5",
    "3. low": "1,420.00",
    "5. volume": "1,234,567",
}


def _price_json(path: Path, symbol: str = "600519.SHH", close: str = "1,433.3300") -> Path:
    bar = {**GOOD, "4. close": close}
    payload = {"Meta Data": {"2. Symbol": symbol}, "Time Series (Daily)": {"2025-11-14": bar}}
    path.write_text(json.dumps(payload))
    return path


def _tushare_csv(
    path: Path, close: str, header: str = "ts_code,trade_date,open,high,low,close,vol"
) -> Path:
    path.write_text(f'{header}\n600519.SH,20251114,"1,430.00",1440,1420,"{close}",26189.5\n')
    return path


def test_thousands_separators_are_read(tmp_path: Path) -> None:
    (bar,) = read_price_file(_price_json(tmp_path / "daily_prices_600519.SHH.json"))
    assert (bar.open, bar.high, bar.low, bar.close) == (1430.0, 1440.5, 1420.0, 1433.33)
    assert bar.volume == 1234567.0
    (row,) = read_price_csv(_tushare_csv(tmp_path / "prices.csv", "1,433.33"))
    assert (row.symbol, row.ts, row.open, row.close) == (
        "600519.SH",
        datetime(2025, 11, 14),
        1430.0,
        1433.33,
    )
    assert row.volume == 2618950.0  # tushare counts lots of 100 shares


@pytest.mark.parametrize(
    ("close", "problem"),
    [
        # 1433 with a thousands separator, or 1.433 with a decimal comma: no way to tell.
        ("1,433", "'4. close' is not a number (a misplaced or ambiguous comma): '1,433'"),
        ("1.433,33", "'4. close' is not a number (a misplaced or ambiguous comma): '1.433,33'"),
        ("14,33.3", "'4. close' is not a number (a misplaced or ambiguous comma): '14,33.3'"),
        ("abc", "'4. close' is not a number: 'abc'"),
        ("-1433.33", "'4. close' is out of range (negative): '-1433.33'"),
        ("0", "'4. close' is out of range: '0'"),
    ],
)
def test_a_bad_price_names_file_and_field_and_stores_nothing(
    close: str, problem: str, session: Session, tmp_path: Path
) -> None:
    _price_json(tmp_path / "daily_prices_GOOD.json", symbol="GOOD")
    bad = _price_json(tmp_path / "daily_prices_BAD.json", symbol="BAD", close=close)
    with pytest.raises(PriceFileError) as caught:
        import_prices(session, tmp_path)
    session.rollback()
    assert str(caught.value) == f"{bad}: bar 2025-11-14: {problem}"
    assert _count(session) == 0


@pytest.mark.parametrize(
    ("close", "problem"),
    [
        ("1.433,33", "'close' is not a number (a misplaced or ambiguous comma): '1.433,33'"),
        ("-5", "'close' is out of range (negative): '-5'"),
    ],
)
def test_a_bad_csv_price_names_file_line_and_column(
    tmp_path: Path, close: str, problem: str
) -> None:
    path = _tushare_csv(tmp_path / "daily_prices_sse_50.csv", close)
    with pytest.raises(PriceFileError) as caught:
        read_price_csv(path)
    assert str(caught.value) == f"{path}, line 2: {problem}"


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("ts_code,trade_date,open,close,vol", "high, low"),
        ("code,trade_date,open,high,low,close", "ts_code or stock_code"),
        ("stock_code,trade_date,open,high,low,close", "volume"),
    ],
)
def test_a_csv_without_its_columns_is_refused(tmp_path: Path, header: str, missing: str) -> None:
    path = _tushare_csv(tmp_path / "prices.csv", "1433.33", header=header)
    with pytest.raises(PriceFileError) as caught:
        read_price_csv(path)
    assert str(caught.value) == f"{path}: missing column(s) {missing}"


def test_benchmark_files_without_meta_data_are_named_by_file(
    tmp_path: Path, shared_data: Path
) -> None:
    for name, symbol in (("index_daily_sse_50.json", SSE_INDEX), ("CD5_crypto_index.json", "CD5")):
        source = shared_data / ("sse50_daily" if symbol == SSE_INDEX else "crypto_daily") / name
        payload = json.loads(source.read_text())
        del payload["Meta Data"]
        (tmp_path / name).write_text(json.dumps(payload))
        bars = read_price_file(tmp_path / name)
        assert {b.symbol for b in bars} == {symbol}


@pytest.mark.parametrize("chunk", [1, 1_000])  # a row per executemany, or all in one
def test_insert_bars_completes_only_open_only_bars(
    session: Session, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("models.prices.INSERT_CHUNK", chunk)
    at = datetime(2025, 11, 19)
    open_only = Bar(symbol="x.sh", ts=at, open=10.0)
    complete = Bar(symbol="X.SH", ts=at, open=99.0, high=12.0, low=9.0, close=11.0, volume=5.0)
    other = complete.model_copy(update={"close": 50.0})
    # One call: the first bar read is kept, completed by a later full one.
    assert insert_bars(session, [open_only, open_only, complete, other]) == 1
    (bar,) = _bars(session, "X.SH")
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (10.0, 12.0, 9.0, 11.0, 5.0)
    # Later calls: an open-only bar adds nothing, a complete bar never changes.
    assert insert_bars(session, [open_only, other]) == 0
    session.commit()
    session.expire_all()
    assert _bars(session, "X.SH")[0].close == 11.0

    # A stored open-only bar is completed across calls, on either backend.
    later = at + timedelta(days=1)
    assert insert_bars(session, [Bar(symbol="X.SH", ts=later, open=10.5)]) == 1
    assert insert_bars(session, [Bar(symbol="X.SH", ts=later, open=1.0, close=10.7)]) == 1
    assert insert_bars(session, [Bar(symbol="X.SH", ts=later, open=1.0, close=99.0)]) == 0
    session.commit()
    session.expire_all()
    assert [(b.open, b.close) for b in _bars(session, "X.SH")] == [(10.0, 11.0), (10.5, 10.7)]
