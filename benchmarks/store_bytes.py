"""Store bytes per model-day of the built-in strategies: compact recorded calls against whole ones.

    .venv/bin/python benchmarks/store_bytes.py [--days 20]

Runs the offline default's three built-in strategy models (equal-weight, momentum, random) over
the first `--days` trading days of its range on its seeded synthetic NASDAQ-100 market, one
model-day at a time through `agents.session.run_model_day` (the path the flow's tasks take), into
two fresh SQLite stores: the baseline keeps every LLM call's whole request, as it did before
(`keep_requests=True` for every model), the product keeps a strategy's requests as their message
count and tools. The stores hold the same prices. It prints each table's bytes per model-day
(the stored values' lengths) and the database file per model-day after VACUUM, prices excluded,
and the ratio product / baseline. A replay of one model-day from the compact record is checked
to trade as recorded.
"""

import argparse
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, select  # noqa: E402

import agents.session  # noqa: E402
from agents.types import ModelDayRequest  # noqa: E402
from configs.loader import load_config  # noqa: E402
from market_data.calendar import calendar  # noqa: E402
from market_data.synthetic import synthesize_into  # noqa: E402
from models.engine import create_store_engine, dispose_engines, upgrade  # noqa: E402
from models.prices import PriceBook  # noqa: E402
from models.tables import ModelDay, Run, Trade  # noqa: E402

# What a model-day writes; price bars are the market's, shared by every model and run.
CONVERSATION_TABLES = ("modelday", "message", "toolcall", "llmcall", "trade", "holding")


def simulate(folder: Path, days: list[date], keeps: Callable) -> Path:
    """The default config's models over `days` into a fresh store in `folder`; its path."""
    path = folder / "aitrader.db"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    config = load_config()
    market = config.market
    universe = config.resolve_universe()
    with Session(engine) as session:
        synthesize_into(
            session, universe.symbols, market.start, market.end, market.seed, config.benchmark
        )
        run = Run(name="store-bytes", models=[m.name for m in config.enabled_models()])
        session.add(run)
        session.commit()
        run_id = run.id
        prices = PriceBook.load(session, market=market.store_market)
    with mock.patch.object(agents.session, "keeps_requests", keeps):
        for day in days:
            for model in config.enabled_models():
                request = ModelDayRequest(
                    run_id=run_id,
                    model=model,
                    day=day,
                    portfolio=f"bytes/{model.name}",
                    universe=universe.symbols,
                    market=config.trading_market,
                )
                result = agents.session.run_model_day_sync(engine, request, prices)
                assert result.status == "completed", result.error
    replay_matches(engine, run_id, config, days[0], universe.symbols, prices)
    engine.dispose()
    dispose_engines()
    return path


def replay_matches(engine, run_id, config, day, universe, prices) -> None:
    """The momentum model's first day, replayed from the record, trades as it did."""
    model = config.model("momentum")
    request = ModelDayRequest(
        run_id=run_id,
        model=model,
        day=day,
        portfolio="bytes/replayed",
        universe=universe,
        mode="replay",
        market=config.trading_market,
    )
    result = agents.session.run_model_day_sync(engine, request, prices)
    assert result.status == "completed" and result.llm_calls == 0, result.error
    with Session(engine) as session:
        trades = [
            [
                (t.symbol, t.shares)
                for t in session.exec(
                    select(Trade)
                    .join(ModelDay)
                    .where(ModelDay.portfolio == portfolio, ModelDay.day == day)
                    .order_by(Trade.seq)
                )
            ]
            for portfolio in ("bytes/momentum", "bytes/replayed")
        ]
    assert trades[0] == trades[1], "the replay traded differently"


def table_bytes(path: Path) -> dict[str, int]:
    """Each conversation table's stored bytes: the lengths of its values."""
    with sqlite3.connect(path) as db:
        sizes = {}
        for table in CONVERSATION_TABLES:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info('{table}')")]
            lengths = "+".join(f'coalesce(length(CAST("{c}" AS BLOB)), 0)' for c in columns)
            sizes[table] = db.execute(
                f"SELECT coalesce(sum({lengths}), 0) FROM {table}"
            ).fetchone()[0]
        return sizes


def file_bytes_without_prices(path: Path) -> int:
    """The database file after VACUUM, less the price bars' pages and their indexes'."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM modelday WHERE portfolio = 'bytes/replayed'")
        db.execute("DELETE FROM pricebar")
        db.commit()
        db.execute("VACUUM")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=20)
    args = parser.parse_args()
    config = load_config()
    days = calendar("XNYS").trading_days(config.start_date, config.end_date)[: args.days]
    model_days = len(days) * len(config.enabled_models())
    results = {}
    for label, keeps in (
        ("baseline", lambda model: True),
        ("product", agents.session.keeps_requests),
    ):
        with tempfile.TemporaryDirectory() as folder:
            path = simulate(Path(folder), days, keeps)
            results[label] = (table_bytes(path), file_bytes_without_prices(path))
    print(f"{model_days} model-days ({len(days)} days x {len(config.enabled_models())} models)")
    print(f"{'bytes per model-day':22} {'baseline':>10} {'product':>10} {'ratio':>7}")
    for table in CONVERSATION_TABLES:
        base, product = (results[label][0][table] / model_days for label in results)
        ratio = product / base if base else 1.0
        print(f"{table:22} {base:10,.0f} {product:10,.0f} {ratio:7.2f}")
    base, product = (sum(results[label][0].values()) / model_days for label in results)
    print(f"{'all values':22} {base:10,.0f} {product:10,.0f} {product / base:7.2f}")
    base, product = (results[label][1] / model_days for label in results)
    print(f"{'file, prices excluded':22} {base:10,.0f} {product:10,.0f} {product / base:7.2f}")


if __name__ == "__main__":
    main()
