"""A session context outside any run, for serving the tools to a person or an outside agent."""

from __future__ import annotations

import logging
from datetime import date, datetime, time

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent_tools.context import SessionContext
from agent_tools.news import NewsArchive
from configs.loader import Universe, default_benchmark, load_universe
from configs.markets import Market, default_market
from market_data.calendar import calendar
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
    return Universe(
        name="custom", symbols=list(dict.fromkeys(symbols)), benchmark=default_benchmark()
    )


def build_manual_context(
    engine: Engine,
    day: date,
    *,
    model: str = "manual",
    cash: float | None = None,
    universe: str = "nasdaq100",
    market: str = REAL_MARKET,
    rules_of: Market | None = None,
    session: time | None = None,
) -> SessionContext:
    """A context for `day` (for an hourly market, its `session` bar: the first by default) with
    a fresh book of `cash` (default: the market's), the store's prices and news, under the rules
    of `rules_of` (default: the default market's)."""
    trading = rules_of or default_market()
    cash = trading.initial_cash if cash is None else cash
    sessions = calendar(trading.calendar)
    if not sessions.is_trading_day(day):
        raise ValueError(f"{day} is not a trading day of {trading.title}")
    if cash < 0:
        raise ValueError(f"cash must not be negative, got {cash:g}")
    at = _session_at(trading, day, session)
    chosen = resolve_universe(universe)
    with Session(engine) as store:
        # Bars after the day never enter memory: the view hides them anyway, this makes it moot.
        prices = PriceBook.load(store, trading.interval, market=market, until=day)
    if not any(prices.bar_at(symbol, at) for symbol in chosen.symbols):
        kind, label = ("hourly", f"{at:%Y-%m-%d %H:%M}") if trading.hourly else ("daily", day)
        raise ValueError(
            f"the store holds no {market} {kind} bar on {label} for the universe; "
            "import or fetch prices first (aitrader data import / data fetch)"
        )
    return SessionContext.create(
        run_id=MANUAL_RUN_ID,
        model=model,
        portfolio=f"manual:{model}",
        day=at,
        universe=chosen.symbols,
        prices=prices,
        book=Portfolio(cash=cash),
        is_session_day=sessions.is_trading_day,
        benchmark=chosen.benchmark,
        news=NewsArchive(engine),
        rules=trading.rules,
        fill_time=trading.fill_time(at),
        title=trading.title,
    )


def _session_at(trading: Market, day: date, session: time | None) -> datetime:
    times = trading.session_times(day)
    if session is None:
        return times[0]
    if not trading.hourly:
        raise ValueError(f"{trading.title} trades one session a day; --session is for hourly ones")
    at = datetime.combine(day, session)
    if at not in times:
        labels = ", ".join(f"{t:%H:%M}" for t in times)
        raise ValueError(f"{session:%H:%M} is not a session of {trading.title}: {labels}")
    return at


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
