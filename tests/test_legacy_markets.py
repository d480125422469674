"""The original's A-share (daily, hourly) and crypto logs imported as runs.

Every value is recomputed here from the raw files (position.jsonl, the tushare/efinance CSVs, the
coin files) by the original's rule: each session day's highest-id record of its last session with
records (carried forward over days without one), valued at the day's close; the first point is the
starting cash.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from analysis.curves import run_curves
from analysis.leaderboard import leaderboard
from deployments.cli import app
from market_data.aitrader_files import import_prices, read_price_file
from market_data.legacy_import import import_aitrader_run
from models.engine import create_store_engine, dispose_engines
from models.errors import LegacyImportError
from models.prices import insert_bars
from models.tables import Holding, ModelDay, Run, Trade
from tests.conftest import SHARED_DATA, store_copy

Closes = dict[str, dict[str, float]]  # symbol as logged -> bar time text -> close


# --- the raw files, read without the importer ----------------------------------------------------


def sse_daily_closes(shared: Path) -> Closes:
    """symbol -> YYYY-MM-DD -> close, from the tushare CSV (it has the 2025-11-19 closes)."""
    closes: Closes = defaultdict(dict)
    with (shared / "sse50_daily" / "daily_prices_sse_50.csv").open() as file:
        for row in csv.DictReader(file):
            day = row["trade_date"]
            closes[row["ts_code"]][f"{day[:4]}-{day[4:6]}-{day[6:]}"] = float(row["close"])
    return closes


def sse_hourly_closes(shared: Path) -> Closes:
    """symbol -> YYYY-MM-DD HH:MM -> close, from the efinance CSV (bars labelled by their end)."""
    closes: Closes = defaultdict(dict)
    with (shared / "sse50_hourly" / "A_stock_hourly.csv").open() as file:
        for row in csv.DictReader(file):
            closes[row["stock_code"]][row["trade_date"]] = float(row["close"])
    return closes


def coin_series(shared: Path, field: str) -> Closes:
    """`BTC-USDT` (the log's name) -> day -> `field` of the coin file."""
    series: Closes = {}
    for file in (shared / "crypto_daily").glob("daily_prices_*.json"):
        bars = json.loads(file.read_text())["Time Series (Daily)"]
        coin = file.stem.removeprefix("daily_prices_")
        series[f"{coin}-USDT"] = {day: float(bar[field]) for day, bar in bars.items()}
    return series


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def day_close(closes: dict[str, float], day: str) -> float:
    """The close of the day's last bar (a daily bar is its own last bar)."""
    return closes[max(t for t in closes if t[:10] == day)]


def expected_curve(records: list[dict], closes: Closes, days: list[str]) -> list[float]:
    """The starting cash, then each day's value: the highest-id record of the day's last session
    with records (the previous day's book on a day without records), at the day's close."""
    best: dict[str, tuple[int, dict]] = {}  # session (date text) -> highest id and positions
    for record in records[1:]:
        if record["date"] not in best or record["id"] > best[record["date"]][0]:
            best[record["date"]] = (record["id"], record["positions"])
    curve = [records[0]["positions"]["CASH"]]
    book = records[0]["positions"]
    for day in days:
        sessions = [s for s in best if s[:10] == day]
        if sessions:
            book = best[max(sessions)][1]
        value = book["CASH"]
        for symbol, quantity in book.items():
            if symbol != "CASH" and quantity:
                value += quantity * day_close(closes[symbol], day)
        curve.append(value)
    return curve


def session_days(closes: Closes, after: str, until: str) -> list[str]:
    """Days up to `until` with a bar of the raw price file later than `after` (a record's date)."""
    times = {t for by_time in closes.values() for t in by_time}
    return sorted({t[:10] for t in times if t > after and t[:10] <= until})


# --- stores --------------------------------------------------------------------------------------


@contextmanager
def open_store(url: str) -> Iterator[Session]:
    engine = create_store_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Session]:
    """An empty SQLite store."""
    with open_store(sqlite_url) as session:
        yield session


@pytest.fixture(scope="module")
def crypto_prices(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding the coin files and CD5, made once (the coin files are long)."""
    path = tmp_path_factory.mktemp("crypto") / "crypto.db"
    with open_store(store_copy(sqlite_template, path)) as session:
        import_prices(session, SHARED_DATA / "crypto_daily")  # the coins and CD5
        session.commit()
    return path


@pytest.fixture
def crypto_url(crypto_prices: Path, tmp_path: Path) -> str:
    """A copy of the crypto store, for one test."""
    path = tmp_path / "crypto.db"
    return store_copy(crypto_prices, path)


@pytest.fixture
def crypto_store(crypto_url: str) -> Iterator[Session]:
    with open_store(crypto_url) as session:
        yield session


def load_sse(session: Session, shared: Path, hourly: bool) -> Closes:
    """The SSE-50 prices (the CSV fills the merged file's stripped last closes) and the SSE 50
    index in the store; the raw closes to check against."""
    import_prices(session, shared / ("sse50_hourly" if hourly else "sse50_daily"))
    import_prices(session, shared / "sse50_daily" / "index_daily_sse_50.json")
    session.commit()
    return sse_hourly_closes(shared) if hourly else sse_daily_closes(shared)


def assert_run_follows_the_raw_files(
    session: Session, run_dir: Path, closes: Closes, curve_of: str
) -> dict[str, float]:
    """Each model's final value and return, and `curve_of`'s whole curve, against the raw files;
    the final values."""
    report = import_aitrader_run(session, run_dir)
    board = {row.model: row for row in leaderboard(session, report.run_id) if not row.is_benchmark}
    assert sorted(board) == sorted(p.name for p in run_dir.iterdir())
    finals = {}
    for model, row in board.items():
        records = read_log(run_dir / model / "position" / "position.jsonl")
        last_day = max(r["date"][:10] for r in records)
        days = session_days(closes, records[0]["date"], last_day)
        expected = expected_curve(records, closes, days)
        assert row.performance.end_value == pytest.approx(expected[-1], rel=1e-12)
        assert row.performance.cumulative_return == pytest.approx(
            expected[-1] / expected[0] - 1, rel=1e-9
        )
        if model == curve_of:
            values = run_curves(session, report.run_id, model=model).models[model][0].values
            assert list(values) == pytest.approx(expected, rel=1e-12)
            assert [f"{d:%Y-%m-%d}" for d in values.index[1:]] == days
        finals[model] = row.performance.end_value
    return finals


# --- the three logs ------------------------------------------------------------------------------


def test_sse50_daily_run_is_valued_at_the_csv_closes(store: Session, shared_data: Path) -> None:
    closes = load_sse(store, shared_data, hourly=False)
    run_dir = shared_data / "legacy_aitrader_sse50_daily_run"
    finals = assert_run_follows_the_raw_files(store, run_dir, closes, curve_of="gpt-5")
    assert len(finals) == 7
    run = store.exec(select(Run)).one()
    assert (run.initial_cash, run.benchmark, run.config["interval"]) == (100_000, "000016.SH", "1d")
    # gpt-5 has no record on 2025-10-13: the day is there, with 10-10's book at 10-13's closes.
    days = {
        d.day.isoformat(): d for d in store.exec(select(ModelDay).where(ModelDay.model == "gpt-5"))
    }
    assert "2025-10-13" in days and days["2025-10-13"].cash_end == days["2025-10-10"].cash_end
    # The registration (2025-10-01, a holiday) is the first point, dated at the index's last
    # close before the first session so that the benchmark starts with it.
    first = min(days)
    assert first == "2025-09-30" and days[first].value_end == 100_000
    bench = next(row for row in leaderboard(store, run.id) if row.is_benchmark)
    index = json.loads((shared_data / "sse50_daily" / "index_daily_sse_50.json").read_text())
    index_closes = {d: float(b["4. close"]) for d, b in index["Time Series (Daily)"].items()}
    expected = index_closes["2025-11-19"] / index_closes["2025-09-30"] - 1
    assert bench.performance.cumulative_return == pytest.approx(expected, rel=1e-12)


def test_sse50_hourly_run_is_valued_at_each_days_last_bar(
    store: Session, shared_data: Path
) -> None:
    closes = load_sse(store, shared_data, hourly=True)
    run_dir = shared_data / "legacy_aitrader_sse50_hourly_run"
    finals = assert_run_follows_the_raw_files(store, run_dir, closes, curve_of="gpt-5-astock-hour")
    assert len(finals) == 7
    days = store.exec(
        select(ModelDay).where(ModelDay.model == "gpt-5-astock-hour").order_by(ModelDay.day)
    ).all()
    # The 08:30 registration before the first bar is its own point, then one row per trading day.
    assert days[0].session == "2025-10-09 08:30:00" and days[0].value_end == 100_000
    assert len(days) == 31 and days[1].day.isoformat() == "2025-10-09"
    assert days[-1].session.split(", ")[-1] == "2025-11-19 15:00:00"


def test_crypto_run_maps_coins_and_follows_the_coin_files(
    crypto_store: Session, shared_data: Path
) -> None:
    session = crypto_store
    run_dir = shared_data / "legacy_aitrader_crypto_run"
    closes = coin_series(shared_data, "4. close")
    finals = assert_run_follows_the_raw_files(session, run_dir, closes, curve_of="gemini-2.5-flash")
    assert len(finals) == 6
    run = session.exec(select(Run)).one()
    assert (run.initial_cash, run.benchmark, run.start_date.isoformat()) == (
        50_000,
        "CD5",
        "2025-11-01",
    )
    assert run.config["symbols"]["BTC-USDT"] == "BTC"
    held = set(session.exec(select(Holding.symbol)).all())
    assert held and not any(s.endswith("-USDT") for s in held)
    # Fractional amounts are kept as logged: gemini bought 0.00946 BTC on 11-02.
    shares = session.exec(select(Trade.shares).where(Trade.symbol == "BTC")).all()
    assert 0.00946 in shares


def test_the_weekend_fork_prices_fills_against_fridays_book(
    crypto_store: Session, shared_data: Path
) -> None:
    """Sunday's and Monday's first records build on Friday's last (their ids go backwards): their
    trades fill at the coin's open; Saturday's trades vanish from Sunday's book."""
    store = crypto_store
    run_dir = shared_data / "legacy_aitrader_crypto_run"
    records = read_log(run_dir / "gpt-5" / "position" / "position.jsonl")
    ids = [r["id"] for r in records]
    assert ids != sorted(ids)  # the real log's ids do go backwards
    report = import_aitrader_run(store, run_dir)
    opens = coin_series(shared_data, "1. open")
    trades = store.exec(
        select(Trade, ModelDay).join(ModelDay).where(ModelDay.run_id == report.run_id)
    ).all()
    assert len(trades) == sum(m.trades for m in report.models) == 202
    for trade, model_day in trades:
        coin_open = opens[f"{trade.symbol}-USDT"][model_day.day.isoformat()]
        assert trade.price == pytest.approx(coin_open, rel=1e-3), (model_day.model, trade)
    gpt5 = {
        (d.day.isoformat(), h.symbol): h.shares
        for h, d in store.exec(
            select(Holding, ModelDay).join(ModelDay).where(ModelDay.model == "gpt-5")
        )
    }
    assert gpt5[("2025-11-08", "BTC")] == pytest.approx(0.2008)  # Saturday's buy ...
    assert gpt5[("2025-11-09", "BTC")] == pytest.approx(0.1968)  # ... discarded by Sunday's fork
    fork_fills = store.exec(
        select(Trade.symbol, Trade.price)
        .join(ModelDay)
        .where(ModelDay.model == "gpt-5", ModelDay.day.in_(["2025-11-09", "2025-11-10"]))
        .order_by(ModelDay.day, Trade.seq)
    ).all()
    assert [s for s, _ in fork_fills] == ["SOL", "LINK", "LINK"]
    fork_opens = [opens["SOL-USDT"]["2025-11-09"], opens["LINK-USDT"]["2025-11-09"], 15.922]
    assert [p for _, p in fork_fills] == pytest.approx(fork_opens, rel=1e-4)


# --- refusals ------------------------------------------------------------------------------------


def _counts(session: Session) -> list[int]:
    return [
        session.exec(select(func.count()).select_from(t)).one()
        for t in (Run, ModelDay, Trade, Holding)
    ]


def test_coins_missing_from_the_store_are_refused_and_nothing_is_written(
    store: Session, shared_data: Path
) -> None:
    import_prices(store, shared_data / "crypto_daily" / "daily_prices_BTC.json")
    import_prices(store, shared_data / "crypto_daily" / "daily_prices_ETH.json")
    store.commit()
    before = _counts(store)
    with pytest.raises(LegacyImportError) as refused:
        import_aitrader_run(store, shared_data / "legacy_aitrader_crypto_run")
    message = str(refused.value)
    assert "\n" not in message and "no 1d price in the store for ADA-USDT" in message
    assert "BTC-USDT" not in message and "daily_prices_ADA.json" in message
    assert _counts(store) == before == [0, 0, 0, 0]


def test_a_stripped_last_close_is_refused(store: Session, shared_data: Path) -> None:
    import_prices(store, shared_data / "sse50_daily" / "merged.jsonl")  # 11-19 holds only opens
    store.commit()
    with pytest.raises(LegacyImportError, match=r"no close for .* at 2025-11-19: the bar holds"):
        import_aitrader_run(store, shared_data / "legacy_aitrader_sse50_daily_run")
    assert _counts(store) == [0, 0, 0, 0]


def test_the_cli_refuses_in_one_line_and_results_take_an_end_day(
    sqlite_url: str, crypto_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AITRADER_DEBUG", raising=False)
    runner = CliRunner()
    run_dir = shared_data / "legacy_aitrader_crypto_run"
    with open_store(sqlite_url) as session:  # only BTC in the store
        bars = read_price_file(shared_data / "crypto_daily" / "daily_prices_BTC.json")
        insert_bars(session, [b for b in bars if b.ts.year == 2025])
        session.commit()
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    refused = runner.invoke(app, ["import-aitrader", str(run_dir)])
    assert refused.exit_code == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no 1d price in the store for ADA-USDT")
    dispose_engines()
    monkeypatch.setenv("DATABASE_URL", crypto_url)  # the coin files and CD5 imported
    imported = runner.invoke(app, ["import-aitrader", str(run_dir)])
    assert imported.exit_code == 0 and "benchmark: CD5" in imported.stdout
    shown = runner.invoke(app, ["results", "--end", "2025-11-09", "--format", "json"])
    rows = {row["model"]: row for row in json.loads(shown.stdout)}
    records = read_log(run_dir / "gpt-5" / "position" / "position.jsonl")
    closes = coin_series(shared_data, "4. close")
    expected = expected_curve(records, closes, session_days(closes, "2025-11-01", "2025-11-09"))
    assert rows["gpt-5"]["final_value"] == pytest.approx(expected[-1], rel=1e-9)
    assert rows["gpt-5"]["return"] == pytest.approx(expected[-1] / 50_000 - 1, abs=1e-6)
    assert rows["CD5"]["end"] == "2025-11-09"
    dispose_engines()


def test_fractional_books_are_stored_exactly_on_both_stores(
    session: Session, shared_data: Path
) -> None:
    """One crypto model on SQLite and PostgreSQL: coin amounts like 0.2168 come back as logged."""
    for coin in ("BTC", "ETH", "SOL", "LINK"):  # what gpt-5 held; only November, to stay quick
        bars = read_price_file(shared_data / "crypto_daily" / f"daily_prices_{coin}.json")
        insert_bars(session, [b for b in bars if b.ts.year == 2025 and b.ts.month == 11])
    session.commit()
    model_dir = shared_data / "legacy_aitrader_crypto_run" / "gpt-5"
    report = import_aitrader_run(session, model_dir)
    records = read_log(model_dir / "position" / "position.jsonl")
    last = session.exec(
        select(ModelDay).where(ModelDay.run_id == report.run_id).order_by(ModelDay.day.desc())
    ).first()
    held = {
        h.symbol: h.shares
        for h in session.exec(select(Holding).where(Holding.model_day_id == last.id))
    }
    logged = {s.removesuffix("-USDT"): n for s, n in records[-1]["positions"].items() if n}
    assert held == {s: n for s, n in logged.items() if s != "CASH"}
    assert last.cash_end == logged["CASH"]
    closes = coin_series(shared_data, "4. close")
    expected = expected_curve(records, closes, session_days(closes, "2025-11-01", "2025-11-15"))
    assert last.value_end == pytest.approx(expected[-1], rel=1e-12)
