"""The price store: idempotent bar upserts, coverage, and an in-memory view for fast lookups."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from models.tables import BarBase, PriceBar

REAL_MARKET = "real"
DAILY = "1d"
HOURLY = "60min"
INTERVALS = (DAILY, HOURLY)


class Bar(BarBase):
    """A bar on its way into the store (`insert_bars` adds its `day`)."""


class CoverageRow(BaseModel):
    """What the store holds for one symbol and interval of one market."""

    market: str
    symbol: str
    interval: str
    first: date
    last: date
    bars: int
    days: int


def merge_duplicate_bars(bars: Iterable[Bar]) -> list[Bar]:
    """One bar per (market, symbol, interval, ts): the first read, completed by a later full one.

    An open-only bar (the newest of a merged file) takes high, low, close and volume from a later
    bar of the same time that has a close (the raw CSV rows); a complete bar is never changed.
    """
    unique: dict[tuple[str, str, str, datetime], Bar] = {}
    for bar in bars:
        key = (bar.market, bar.symbol.upper(), bar.interval, bar.ts)
        kept = unique.get(key)
        if kept is None:
            unique[key] = bar
        elif kept.close is None and bar.close is not None:
            unique[key] = kept.model_copy(update=_completion(bar))
    return list(unique.values())


def _completion(bar: Bar) -> dict[str, float | None]:
    return {"high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume}


# Rows per executemany of `insert_bars`: one of a market's 19,000 bars held 55 MiB at once.
INSERT_CHUNK = 1_000


def insert_bars(session: Session, bars: Iterable[Bar]) -> int:
    """Insert new bars and complete stored open-only ones; count the bars inserted or completed.

    A stored bar (same market, symbol, interval, ts) that has a close is never changed; one without
    a close takes high, low, close and volume from a new bar that has one.
    """
    merged = merge_duplicate_bars(bars)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(PriceBar)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["market", "symbol", "interval", "ts"],
        set_={"high": new.high, "low": new.low, "close": new.close, "volume": new.volume},
        where=PriceBar.close.is_(None) & new.close.is_not(None),
    ).returning(PriceBar.id)  # rowcount is unreliable for multi-row inserts on Postgres
    # An executemany per chunk: SQLAlchemy batches each into multi-row INSERTs compiled once. A
    # row that conflicts and is not completed returns nothing, so the count is inserted +
    # completed.
    count = 0
    for first in range(0, len(merged), INSERT_CHUNK):
        rows = [
            {**bar.model_dump(), "symbol": bar.symbol.upper(), "day": bar.ts.date()}
            for bar in merged[first : first + INSERT_CHUNK]
        ]
        count += len(session.execute(statement, rows).all())
    return count


def coverage(
    session: Session, interval: str | None = None, market: str | None = None
) -> list[CoverageRow]:
    """First and last day, bar count and day count per market, symbol and interval."""
    query = select(
        PriceBar.market,
        PriceBar.symbol,
        PriceBar.interval,
        func.min(PriceBar.day),
        func.max(PriceBar.day),
        func.count(),
        func.count(func.distinct(PriceBar.day)),
    ).group_by(PriceBar.market, PriceBar.symbol, PriceBar.interval)
    if interval:
        query = query.where(PriceBar.interval == interval)
    if market:
        query = query.where(PriceBar.market == market)
    order = (PriceBar.market, PriceBar.interval, PriceBar.symbol)
    return [
        CoverageRow(market=m, symbol=s, interval=i, first=f, last=la, bars=n, days=d)
        for m, s, i, f, la, n, d in session.execute(query.order_by(*order)).all()
    ]


def bar_days(
    session: Session,
    interval: str = DAILY,
    market: str = REAL_MARKET,
    symbols: Iterable[str] | None = None,
) -> list[date]:
    """Every day on which `market` holds at least one bar of `interval` (of one of `symbols`,
    when given: other markets' bars in the same store do not make a day), ascending."""
    query = select(PriceBar.day).where(PriceBar.market == market, PriceBar.interval == interval)
    if symbols is not None:
        query = query.where(PriceBar.symbol.in_([s.upper() for s in symbols]))
    return sorted(session.execute(query.distinct()).scalars())


def last_bar_days(
    session: Session,
    interval: str,
    market: str,
    symbols: Iterable[str],
    complete_only: bool = False,
) -> dict[str, date]:
    """Each of `symbols`' last day with a bar of `interval` in `market` (with a close, with
    `complete_only`: an unfinished session's bar holds only its open)."""
    query = (
        select(PriceBar.symbol, func.max(PriceBar.day))
        .where(PriceBar.market == market, PriceBar.interval == interval)
        .where(PriceBar.symbol.in_([s.upper() for s in symbols]))
        .group_by(PriceBar.symbol)
    )
    if complete_only:
        query = query.where(PriceBar.close.is_not(None))
    return dict(session.execute(query).all())


@dataclass(frozen=True, slots=True)
class StoredBar:
    """A bar as the in-memory book holds it: plain attributes, no ORM or validation cost."""

    symbol: str
    ts: datetime
    open: float
    high: float | None
    low: float | None
    close: float | None
    volume: float | None


BookBar = StoredBar | Bar


class PriceBook:
    """Bars of one interval held in memory, indexed by symbol and time, for constant-time lookups.

    Loaded once per simulation; every lookup after that is a dictionary probe or a bisect,
    never a query or a file scan.
    """

    def __init__(self, bars: Iterable[BookBar], interval: str = DAILY) -> None:
        self.interval = interval
        by_symbol: dict[str, list[BookBar]] = defaultdict(list)
        for bar in bars:
            by_symbol[bar.symbol].append(bar)
        self._times: dict[str, list[datetime]] = {}
        self._bars: dict[str, list[BookBar]] = {}
        self._by_time: dict[str, dict[datetime, BookBar]] = {}
        for symbol, symbol_bars in by_symbol.items():
            symbol_bars.sort(key=lambda b: b.ts)
            self._bars[symbol] = symbol_bars
            self._times[symbol] = [b.ts for b in symbol_bars]
            self._by_time[symbol] = {b.ts: b for b in symbol_bars}

    @classmethod
    def load(
        cls,
        session: Session,
        interval: str = DAILY,
        symbols: Iterable[str] | None = None,
        until: date | None = None,
        market: str = REAL_MARKET,
    ) -> PriceBook:
        """Load the bars of `market` and `interval` (optionally only `symbols`, up to `until`)."""
        columns = (
            PriceBar.symbol,
            PriceBar.ts,
            PriceBar.open,
            PriceBar.high,
            PriceBar.low,
            PriceBar.close,
            PriceBar.volume,
        )
        query = select(*columns).where(PriceBar.market == market, PriceBar.interval == interval)
        if symbols is not None:
            query = query.where(PriceBar.symbol.in_([s.upper() for s in symbols]))
        if until is not None:
            query = query.where(PriceBar.day <= until)
        # Plain rows, not ORM objects: loading a market is 10-100k bars.
        return cls((StoredBar(*row) for row in session.execute(query)), interval)

    @property
    def symbols(self) -> list[str]:
        return sorted(self._bars)

    def has_symbol(self, symbol: str) -> bool:
        return symbol in self._bars

    def bar_at(self, symbol: str, ts: datetime) -> BookBar | None:
        """The bar starting exactly at `ts` (a day at midnight for daily bars)."""
        return self._by_time.get(symbol, {}).get(ts)

    def bar_on(self, symbol: str, day: date) -> BookBar | None:
        """The daily bar of `day`."""
        return self.bar_at(symbol, datetime(day.year, day.month, day.day))

    def open_at(self, symbol: str, ts: datetime) -> float | None:
        bar = self.bar_at(symbol, ts)
        return bar.open if bar else None

    def close_asof(self, symbol: str, ts: datetime) -> tuple[float, datetime] | None:
        """The last known close at or before `ts`, with the time of its bar."""
        times = self._times.get(symbol)
        if not times:
            return None
        index = bisect.bisect_right(times, ts) - 1
        while index >= 0:
            bar = self._bars[symbol][index]
            if bar.close is not None:
                return bar.close, bar.ts
            index -= 1
        return None

    def history(self, symbol: str, before: datetime, limit: int | None = None) -> list[BookBar]:
        """Bars of `symbol` strictly before `before` (only the last `limit`), oldest first."""
        times = self._times.get(symbol, [])
        end = bisect.bisect_left(times, before)
        start = 0 if limit is None else max(end - limit, 0)
        return self._bars.get(symbol, [])[start:end]

    def times(self) -> list[datetime]:
        """Every bar time of any symbol, ascending."""
        return sorted({ts for times in self._times.values() for ts in times})
