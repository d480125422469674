"""Legacy AI-Trader runs: imported as runs whose values anyone can recompute from the raw files."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from analysis.leaderboard import leaderboard
from market_data.aitrader_files import import_prices
from market_data.legacy_import import import_aitrader_run
from models.engine import create_store_engine
from models.errors import LegacyImportError
from models.tables import Holding, ModelDay, Run, Trade
from tests.conftest import ORIGINAL_SIX


def raw_daily_closes(shared: Path) -> dict[str, dict[str, float]]:
    """symbol -> day -> close, straight from the Alpha Vantage files."""
    closes: dict[str, dict[str, float]] = {}
    for file in (shared / "nasdaq100_daily").glob("daily_prices_*.json"):
        series = json.loads(file.read_text())["Time Series (Daily)"]
        symbol = file.stem.removeprefix("daily_prices_")
        closes[symbol] = {day: float(bar["4. close"]) for day, bar in series.items()}
    return closes


def raw_end_of_day_books(position_file: Path) -> dict[str, dict[str, float]]:
    """day -> positions of the record with the highest id that day."""
    best: dict[str, tuple[int, dict[str, float]]] = {}
    for line in position_file.read_text().splitlines():
        record = json.loads(line)
        day = record["date"][:10]
        if day not in best or record["id"] > best[day][0]:
            best[day] = (record["id"], record["positions"])
    return {day: positions for day, (_, positions) in best.items()}


def hand_value(positions: dict[str, float], closes: dict[str, dict[str, float]], day: str) -> float:
    value = positions["CASH"]
    for symbol, shares in positions.items():
        if symbol != "CASH" and shares:
            known = [d for d in closes[symbol] if d <= day]  # last known close (FB ends early)
            value += shares * closes[symbol][max(known)]
    return value


@pytest.fixture
def daily_store(nasdaq100_daily_url: str) -> Iterator[Session]:
    """A session on a store (SQLite, then PostgreSQL) holding the real daily prices."""
    engine = create_store_engine(nasdaq100_daily_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def test_daily_run_values_match_a_hand_computation(daily_store: Session, shared_data: Path) -> None:
    run_dir = shared_data / "legacy_aitrader_daily_run"
    report = import_aitrader_run(daily_store, run_dir)
    assert report.interval == "1d"
    assert {m.model for m in report.models} == set(ORIGINAL_SIX)
    closes = raw_daily_closes(shared_data)
    for model in ("gpt-5", "claude-3.7-sonnet"):
        books = raw_end_of_day_books(run_dir / model / "position" / "position.jsonl")
        days = daily_store.exec(
            select(ModelDay).where(ModelDay.run_id == report.run_id, ModelDay.model == model)
        ).all()
        assert sorted(str(d.day) for d in days) == sorted(books)
        for model_day in days:
            expected = hand_value(books[str(model_day.day)], closes, str(model_day.day))
            assert model_day.value_end == pytest.approx(expected, rel=1e-12)
            assert model_day.cash_end == pytest.approx(books[str(model_day.day)]["CASH"])


def test_leaderboard_returns_and_benchmark_follow_the_raw_files(
    daily_store: Session, shared_data: Path
) -> None:
    run_dir = shared_data / "legacy_aitrader_daily_run"
    report = import_aitrader_run(daily_store, run_dir)
    board = leaderboard(daily_store, report.run_id)
    closes = raw_daily_closes(shared_data)
    models = [row for row in board if not row.is_benchmark]
    assert [row.rank for row in models] == list(range(1, 7))
    returns = [row.performance.cumulative_return for row in models]
    assert returns == sorted(returns, reverse=True)
    for row in models:
        books = raw_end_of_day_books(run_dir / row.model / "position" / "position.jsonl")
        first, last = min(books), max(books)
        expected = hand_value(books[last], closes, last) / hand_value(books[first], closes, first)
        assert row.performance.cumulative_return == pytest.approx(expected - 1, rel=1e-12)
        qqq = closes["QQQ"][last] / closes["QQQ"][first] - 1
        assert row.performance.benchmark_cumulative_return == pytest.approx(qqq, rel=1e-12)
    benchmark = board[-1]
    assert benchmark.is_benchmark and benchmark.model == "QQQ" and benchmark.rank is None
    qqq = closes["QQQ"]["2025-10-30"] / closes["QQQ"]["2025-10-01"] - 1
    assert benchmark.performance.cumulative_return == pytest.approx(qqq, rel=1e-12)


def test_fill_prices_recovered_from_cash_match_the_daily_open(
    daily_store: Session, shared_data: Path
) -> None:
    report = import_aitrader_run(daily_store, shared_data / "legacy_aitrader_daily_run")
    opens = {}
    for file in (shared_data / "nasdaq100_daily").glob("daily_prices_*.json"):
        series = json.loads(file.read_text())["Time Series (Daily)"]
        opens[file.stem.removeprefix("daily_prices_")] = {
            d: float(b["1. open"]) for d, b in series.items()
        }
    trades = daily_store.exec(
        select(Trade, ModelDay).join(ModelDay).where(ModelDay.run_id == report.run_id)
    ).all()
    assert len(trades) == sum(m.trades for m in report.models) > 100
    matched = sum(
        trade.price == pytest.approx(opens[trade.symbol][str(day.day)], rel=1e-6)
        for trade, day in trades
    )
    assert matched / len(trades) > 0.99


def test_importing_twice_adds_nothing(daily_store: Session, shared_data: Path) -> None:
    first = import_aitrader_run(daily_store, shared_data / "legacy_aitrader_daily_run")
    counts = [
        daily_store.exec(select(func.count()).select_from(t)).one()
        for t in (Run, ModelDay, Trade, Holding)
    ]
    again = import_aitrader_run(daily_store, shared_data / "legacy_aitrader_daily_run")
    assert again.already_imported and again.run_id == first.run_id
    assert counts == [
        daily_store.exec(select(func.count()).select_from(t)).one()
        for t in (Run, ModelDay, Trade, Holding)
    ]


def test_hourly_sample_is_valued_at_each_days_last_hourly_close(
    session: Session, shared_data: Path
) -> None:
    import_prices(session, shared_data / "nasdaq100_hourly" / "merged.jsonl")
    session.commit()
    sample = shared_data / "legacy_aitrader_sample"
    report = import_aitrader_run(session, sample)
    assert report.interval == "60min"
    (model,) = report.models
    position_file = next(sample.glob("*/position/position.jsonl"))
    books = raw_end_of_day_books(position_file)
    closes: dict[str, dict[str, float]] = defaultdict(dict)
    for line in (shared_data / "nasdaq100_hourly" / "merged.jsonl").read_text().splitlines():
        record = json.loads(line)
        symbol = record["Meta Data"]["2. Symbol"]
        for ts, bar in record["Time Series (60min)"].items():
            if "4. sell price" in bar:  # the newest bar holds only an open
                closes[symbol][ts[:10]] = max(
                    (closes[symbol].get(ts[:10], ("", 0.0)), (ts, float(bar["4. sell price"])))
                )
    day_close = {s: {d: c for d, (_, c) in by_day.items()} for s, by_day in closes.items()}
    days = session.exec(select(ModelDay).where(ModelDay.run_id == report.run_id)).all()
    assert len(days) == model.days == len(books)
    for model_day in days:
        expected = hand_value(books[str(model_day.day)], day_close, str(model_day.day))
        assert model_day.value_end == pytest.approx(expected, rel=1e-12)
        assert model_day.session and model_day.session.startswith(str(model_day.day))


def test_a_malformed_position_log_is_rejected_and_stores_nothing(
    daily_store: Session, tmp_path: Path
) -> None:
    folder = tmp_path / "agent_data" / "broken-model" / "position"
    folder.mkdir(parents=True)
    good = {"date": "2025-10-01", "id": 0, "positions": {"CASH": 10000.0}}
    (folder / "position.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(LegacyImportError, match=r"position.jsonl:2: not a position record"):
        import_aitrader_run(daily_store, tmp_path / "agent_data")
    assert daily_store.exec(select(func.count()).select_from(Run)).one() == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"date": "yesterday", "id": 0, "positions": {"CASH": 1.0}}, "not a position record"),
        ({"date": "2025-10-01", "positions": {"CASH": 1.0}}, "not a position record"),
        ({"date": "2025-10-01", "id": 0, "positions": {"CASH": "lots"}}, "not a position record"),
    ],
)
def test_bad_records_name_the_line(tmp_path: Path, line: dict, message: str) -> None:
    file = tmp_path / "position.jsonl"
    file.write_text(json.dumps(line) + "\n")
    with pytest.raises(LegacyImportError, match=message):
        import_aitrader_run(None, file)  # type: ignore[arg-type]  (fails before the store)


def test_missing_path_and_missing_prices_are_clear(session: Session, shared_data: Path) -> None:
    with pytest.raises(LegacyImportError, match="no such file or folder"):
        import_aitrader_run(session, shared_data / "nope")
    with pytest.raises(LegacyImportError, match=r"no <model>/position/position\.jsonl"):
        import_aitrader_run(session, shared_data / "nasdaq100_daily")
    with pytest.raises(LegacyImportError, match="holds no 1d prices"):
        import_aitrader_run(session, shared_data / "legacy_aitrader_daily_run")
    assert session.exec(select(func.count()).select_from(Run)).one() == 0


def test_legacy_days_start_from_the_first_record(daily_store: Session, shared_data: Path) -> None:
    report = import_aitrader_run(daily_store, shared_data / "legacy_aitrader_daily_run")
    first = daily_store.exec(
        select(ModelDay).where(ModelDay.run_id == report.run_id).order_by(ModelDay.day)
    ).first()
    assert first.day == date(2025, 10, 1) and first.value_end == pytest.approx(10_000.0)
