"""A session context outside any run, for serving the tools to a person or an outside agent."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent_tools.context import SessionContext
from agent_tools.news import NewsArchive
from configs.loader import Universe, load_universe
from market_data.calendar import is_trading_day
from models.book import Portfolio
from models.prices import REAL_MARKET, PriceBook

MANUAL_RUN_ID = 0


def resolve_universe(universe: str) -> Universe:
    """A universe of `configs/universes.yaml` by name, or a comma-separated list of symbols."""
    if "," not in universe:
        return load_universe(universe.strip())
    symbols = [s.strip().upper() for s in universe.split(",") if s.strip()]
    if not symbols:
        raise ValueError(f"--universe {universe!r} names no symbol")
    return Universe(name="custom", symbols=list(dict.fromkeys(symbols)))


def build_manual_context(
    engine: Engine,
    day: date,
    *,
    model: str = "manual",
    cash: float = 10_000.0,
    universe: str = "nasdaq100",
    market: str = REAL_MARKET,
) -> SessionContext:
    """A context for `day` with a fresh book of `cash`, the store's prices and news."""
    if not is_trading_day(day):
        raise ValueError(f"{day} is not a trading day")
    if cash < 0:
        raise ValueError(f"cash must not be negative, got {cash:g}")
    chosen = resolve_universe(universe)
    with Session(engine) as session:
        # Bars after the day never enter memory: the view hides them anyway, this makes it moot.
        prices = PriceBook.load(session, market=market, until=day)
    if not any(prices.bar_on(symbol, day) for symbol in chosen.symbols):
        raise ValueError(
            f"the store holds no {market} daily bar on {day} for the universe; "
            "import or fetch prices first (aitrader data import / data fetch)"
        )
    return SessionContext.create(
        run_id=MANUAL_RUN_ID,
        model=model,
        portfolio=f"manual:{model}",
        day=day,
        universe=chosen.symbols,
        prices=prices,
        book=Portfolio(cash=cash),
        is_session_day=is_trading_day,
        benchmark=chosen.benchmark,
        news=NewsArchive(engine),
    )


class ClientGone(logging.Filter):
    """A client closing its event stream is how MCP sessions end, not an error: the SDK's
    traceback for it becomes one quiet line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if type(error).__name__ in DISCONNECT_ERRORS:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info, record.exc_text = (
                "a client disconnected",
                (),
                None,
                None,
            )
        return True


# anyio's names for a stream whose other end went away.
DISCONNECT_ERRORS = {"ClosedResourceError", "BrokenResourceError", "EndOfStream"}


def quiet_disconnects() -> None:
    """Install `ClientGone` on the MCP SDK's streamable-HTTP logger (once)."""
    logger = logging.getLogger("mcp.server.streamable_http")
    if not any(isinstance(f, ClientGone) for f in logger.filters):
        logger.addFilter(ClientGone())
