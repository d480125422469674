"""The session context: everything a model-day's tools are bound to, passed explicitly.

No environment variable or shared file carries the simulated day or the model (the original
benchmark's runtime JSON raced between parallel runs); each session builds its own context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from agent_tools.market_view import MarketView
from agent_tools.news import NewsArchive
from agent_tools.trading_rules import TradingSession
from models.book import Portfolio, TradingRules, trades_as_original
from models.prices import PriceBook

EXCHANGE_TZ = ZoneInfo("America/New_York")
MARKET_OPEN = time(9, 30)


def session_cutoff(at: datetime) -> datetime:
    """The instant (UTC) before which evidence may be shown: the open of a daily session, or the
    start of an hourly bar."""
    local = at if at.time() != time.min else datetime.combine(at.date(), MARKET_OPEN)
    return local.replace(tzinfo=EXCHANGE_TZ).astimezone(UTC)


@dataclass
class SessionContext:
    """One model's session on one trading day (or hourly bar)."""

    run_id: int
    model: str
    portfolio: str
    at: datetime
    universe: tuple[str, ...]
    market: MarketView
    trading: TradingSession
    benchmark: str = "QQQ"
    news: NewsArchive | None = None
    notes: dict[str, str] = field(default_factory=dict)
    fill_time: datetime | None = None  # aware; None: the NASDAQ rule of `session_cutoff`
    title: str = "NASDAQ-100 stocks"  # what the prompt says is traded

    @property
    def day(self) -> date:
        return self.at.date()

    @property
    def hourly(self) -> bool:
        return self.at.time() != time.min

    @property
    def label(self) -> str:
        """The session as tools show it: `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM` for an hourly bar."""
        return f"{self.at:%Y-%m-%d %H:%M}" if self.hourly else str(self.day)

    @property
    def rules(self) -> TradingRules:
        return self.trading.rules

    @property
    def original_compat(self) -> bool:
        """Whether it trades by the original's NASDAQ-100 daily rules (`Market.original_compat`):
        the prompt and the tools then keep their recorded wording."""
        return trades_as_original(self.rules, self.hourly)

    @property
    def cutoff(self) -> datetime:
        """Evidence published from this instant (UTC) on is hidden: the session's fill time."""
        if self.fill_time is not None:
            return self.fill_time.astimezone(UTC)
        return session_cutoff(self.at)

    @classmethod
    def create(
        cls,
        *,
        run_id: int,
        model: str,
        portfolio: str,
        day: date | datetime,
        universe: list[str] | tuple[str, ...],
        prices: PriceBook,
        book: Portfolio,
        is_session_day,
        benchmark: str = "QQQ",
        news: NewsArchive | None = None,
        rules: TradingRules | None = None,
        trading: TradingSession | None = None,
        fill_time: datetime | None = None,
        title: str = "NASDAQ-100 stocks",
    ) -> SessionContext:
        """A context whose tools see `prices` up to the session and trade `book` under the rules.

        An hourly day's later sessions pass the day's `trading` on, so the book, its fills and
        T+1's record of today's buys carry from bar to bar.
        """
        at = day if isinstance(day, datetime) else datetime.combine(day, time.min)
        symbols = tuple(s.upper() for s in universe)
        if trading is None:
            trading = TradingSession(book, prices, at, symbols, is_session_day, rules)
        elif trading.at != at:
            trading.next_session(at)
        return cls(
            run_id=run_id,
            model=model,
            portfolio=portfolio,
            at=at,
            universe=symbols,
            market=MarketView(prices, at),
            trading=trading,
            benchmark=benchmark,
            news=news,
            fill_time=fill_time,
            title=title,
        )
