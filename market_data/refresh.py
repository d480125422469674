"""A live refresh: bring a config's market up to now through its source, before a daily catch-up.

Alpha Vantage (daily stocks, 60-minute bars, crypto) is asked for what the store lacks up to the
session in progress. Of a bar that has not ended by now, only its open is stored: it is the fill
price of the session the catch-up trades, and nothing else of an unfinished session (high, low,
close, volume) is ever written, whatever the source returns. A later refresh completes the bar
once it has ended (`insert_bars` fills an open-only bar's close), and the books valued on it are
valued again (`revalue_days`). Alpha Vantage answers a rate limit with HTTP 200 and a `Note`: the
refresh then keeps what was complete and names the symbols left stale, for the next run.
A files market is imported again from its folder; a synthetic one has nothing to fetch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from configs.loader import AppConfig
from configs.markets import BAR_LENGTH, Market, run_interval
from market_data import alphavantage
from market_data.aitrader_files import import_prices
from market_data.calendar import calendar
from market_data.news_feed import fetch_news
from models.errors import AITraderError, MarketSetupError
from models.ledger import revalue_days
from models.prices import Bar, PriceBook
from models.tables import Run

OPEN_ONLY = {"high": None, "low": None, "close": None, "volume": None}


class RefreshReport(BaseModel):
    """What a refresh fetched, up to which session, and which symbols it left stale."""

    market: str
    source: str
    target_day: date | None = None
    bars: int = Field(0, description="bars stored or completed")
    symbols: int = Field(0, description="symbols that got bars")
    open_only: list[date] = Field(default_factory=list, description="sessions not ended")
    stale: dict[str, str] = Field(default_factory=dict, description="symbol -> why")
    news: int = 0
    revalued: int = Field(0, description="model-days valued again on completed bars")
    note: str | None = None

    @property
    def message(self) -> str:
        """One line for the flow's log and final message."""
        if self.note:
            return f"refresh of {self.market}: {self.note}"
        text = (
            f"refresh of {self.market} ({self.source}) up to {self.target_day}: {self.bars:,} "
            f"bar(s) of {self.symbols} symbol(s)"
        )
        if self.open_only:
            text += f", open only of {', '.join(map(str, self.open_only))} (not ended)"
        if self.news:
            text += f", {self.news} news item(s)"
        if self.revalued:
            text += f", {self.revalued} book(s) valued again"
        if self.stale:
            reasons = sorted(set(self.stale.values()))
            text += f"; stale: {', '.join(sorted(self.stale))} ({'; '.join(reasons)[:300]})"
        return text


def bar_span(market: Market, bar: Bar) -> tuple[datetime, datetime]:
    """When a stored bar starts and ends, aware UTC: a daily bar is its session (a crypto day is
    midnight to midnight UTC); an hourly one is its hour, labelled by its start or end."""
    if not market.hourly:
        sessions = calendar(market.calendar)
        return sessions.session_open(bar.ts.date()), sessions.session_close(bar.ts.date())
    local = bar.ts.replace(tzinfo=ZoneInfo(market.timezone))
    start = local - BAR_LENGTH if market.bar_label == "end" else local
    return start.astimezone(ZoneInfo("UTC")), (start + BAR_LENGTH).astimezone(ZoneInfo("UTC"))


def as_of(market: Market, now: datetime) -> Callable[[list[Bar]], list[Bar]]:
    """What may be stored of a download at `now`: a bar that ended, whole; one still running,
    its open only; one not begun (a source running ahead), nothing."""

    def admit(bars: list[Bar]) -> list[Bar]:
        kept = []
        for bar in bars:
            start, end = bar_span(market, bar)
            if end <= now:
                kept.append(bar)
            elif start <= now:
                kept.append(bar.model_copy(update=OPEN_ONLY))
        return kept

    return admit


def session_in_progress(market: Market, now: datetime) -> date:
    """The newest session that has opened by `now` (the one in progress, or the last closed)."""
    sessions = calendar(market.calendar)
    today = sessions.trading_day_on_or_before(now.astimezone(ZoneInfo(market.timezone)).date())
    return today if sessions.session_open(today) <= now else sessions.previous_trading_day(today)


def refresh_market(session: Session, config: AppConfig, now: datetime) -> RefreshReport:
    """Bring the config's market up to `now` through its source; commits as it goes."""
    market = config.market
    report = RefreshReport(market=market.definition.name, source=market.source)
    if market.source == "synthetic":
        report.note = "a synthetic market: nothing to fetch"
        return report
    if market.source == "files":
        if not market.path:
            report.note = "a files market without a path: nothing to fetch"
            return report
        imported = import_prices(session, market.path)
        session.commit()
        report.bars, report.symbols = imported.bars_inserted, len(imported.symbols)
        report.note = f"imported {imported.bars_inserted:,} new bar(s) from {market.path}"
        return report
    return _refresh_alphavantage(session, config, now, report)


def _refresh_alphavantage(
    session: Session, config: AppConfig, now: datetime, report: RefreshReport
) -> RefreshReport:
    definition = config.market.definition
    if definition.calendar == "XSHG":
        raise MarketSetupError(
            f"market {definition.name!r}: Alpha Vantage does not quote A-shares; use source: files"
        )
    universe = config.resolve_universe()
    crypto = definition.calendar == "ALWAYS"
    # The crypto benchmark (CD5) is computed from the coins; Alpha Vantage does not quote it.
    symbols = [*universe.symbols] + ([] if crypto else [universe.benchmark])
    target = session_in_progress(definition, now)
    options = {"now": now, "target": target, "admit": as_of(definition, now)}
    with alphavantage.AlphaVantageClient.from_env() as client:
        if crypto:
            sync = alphavantage.sync_crypto_daily(session, client, symbols, target, **options)
        elif definition.hourly:
            start = config.start_date or target - timedelta(days=30)
            sync = alphavantage.sync_intraday(
                session, client, symbols, target, start=start, **options
            )
        else:
            sync = alphavantage.sync_daily(session, client, symbols, target, **options)
        report.news = _news(session, client, universe.symbols, now)
    report.target_day = sync.target_day
    report.bars, report.symbols = sync.total_inserted, sum(1 for n in sync.inserted.values() if n)
    report.stale = {
        **sync.failed,
        **dict.fromkeys(sync.not_attempted, sync.stopped_reason or "not attempted"),
    }
    still_open = calendar(definition.calendar).session_close(target) > now
    report.open_only = [target] if still_open else []
    report.revalued = _revalue(session, config, sync.target_day)
    session.commit()
    return report


def _news(
    session: Session, client: alphavantage.AlphaVantageClient, tickers: list[str], now: datetime
) -> int:
    """Recent news about the universe; a refresh goes on without it if the source refuses."""
    try:
        added = fetch_news(session, client, tickers, now, days=3)
        session.commit()
        return added
    except (AITraderError, ValueError):
        session.rollback()
        return 0


def _revalue(session: Session, config: AppConfig, through: date) -> int:
    """Value again the books of the last few sessions, whose bars this refresh may complete."""
    interval, market = config.market.definition.interval, config.market.store_market
    runs = session.exec(select(Run.id, Run.config).where(Run.market == market)).all()
    same_bars = [run_id for run_id, recorded in runs if run_interval(recorded) == interval]
    if not same_bars:
        return 0
    prices = PriceBook.load(session, interval, market=market, until=through)
    return revalue_days(session, prices, same_bars, through - timedelta(days=10), through)
