"""Make sure a config's market has prices before a backtest plans its days."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from configs.loader import AppConfig
from market_data.aitrader_files import import_prices
from market_data.calendar import trading_days
from market_data.synthetic import synthesize_into
from models.errors import MarketSetupError, missing
from models.prices import DAILY
from models.tables import PriceBar


def synthetic_bars_held(session: Session, config: AppConfig) -> int | None:
    """How many bars of the config's synthetic market the store holds, if it holds them all."""
    market = config.market
    universe = config.resolve_universe()
    wanted = len(trading_days(market.start, market.end)) * (len(universe.symbols) + 1)
    held = session.exec(
        select(func.count())
        .select_from(PriceBar)
        .where(PriceBar.market == market.store_market, PriceBar.interval == DAILY)
        .where(PriceBar.day >= market.start, PriceBar.day <= market.end)
    ).one()
    return held if held >= wanted else None


def ensure_market(session: Session, config: AppConfig) -> str:
    """Provide the config's market offline where possible; say what was done. Commits."""
    market = config.market
    universe = config.resolve_universe()
    if market.source == "synthetic":
        held = synthetic_bars_held(session, config)
        if held is not None:
            return f"market {market.store_market}: {held:,} bars already stored"
        added = synthesize_into(
            session, universe.symbols, market.start, market.end, market.seed, universe.benchmark
        )
        session.commit()
        return f"market {market.store_market}: synthesized {added:,} bars"
    if market.source == "files":
        if not market.path:
            return "market real: using the prices already stored"
        path = Path(market.path).expanduser()
        if not path.exists():
            raise MarketSetupError(f"market.path {missing(path)} does not exist")
        report = import_prices(session, path)
        session.commit()
        return f"market real: imported {report.bars_inserted:,} new bars from {path}"
    return "market real: download with `aitrader data fetch` (Alpha Vantage) before backtesting"
