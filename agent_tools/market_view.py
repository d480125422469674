"""What an agent may know of the market in a session: the past, and of its bar only the open.

Every price tool reads through a `MarketView`, never through the `PriceBook` itself, so no answer
can carry a bar dated after the session or the session's high, low, close or volume. A view of an
hourly book holds hourly bars only: a past day is its last hourly bar, never a daily one.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from pydantic import BaseModel

from models.prices import DAILY, BookBar, PriceBook


class PastBar(BaseModel):
    """A complete bar of a session before the current one."""

    date: str
    open: float
    high: float | None
    low: float | None
    close: float | None
    volume: float | None


class TodayOpen(BaseModel):
    """All that is known of the current session: its open."""

    date: str
    open: float | None


class MarketView:
    """A `PriceBook` seen from the session labelled `at` (a day at midnight for daily runs)."""

    def __init__(self, prices: PriceBook, at: datetime | date) -> None:
        if not isinstance(at, datetime):
            at = datetime(at.year, at.month, at.day)
        self._prices = prices
        self.at = at

    @property
    def day(self) -> date:
        return self.at.date()

    @property
    def hourly(self) -> bool:
        """Whether its bars are hourly (then the session is one bar of the day, not the day)."""
        return self._prices.interval != DAILY

    def has_symbol(self, symbol: str) -> bool:
        return self._prices.has_symbol(symbol)

    def history(self, symbol: str, sessions: int) -> list[PastBar]:
        """The last `sessions` complete bars strictly before the current session, oldest first."""
        bars = self._prices.history(symbol, before=self.at, limit=sessions) if sessions > 0 else []
        return [_past(bar) for bar in bars]

    def bar_on(self, symbol: str, day: date) -> PastBar | TodayOpen | None:
        """The bar of an earlier day (of an hourly book: that day's last hourly bar, complete),
        only the open of the current session on the session day, nothing after it."""
        if day > self.day:
            return None
        if day == self.day:
            return self.today(symbol)
        bar = self._last_bar_of(symbol, day) if self.hourly else self._prices.bar_on(symbol, day)
        if bar is None or bar.ts >= self.at:
            return None
        return _past(bar)

    def bar_at(self, symbol: str, ts: datetime) -> PastBar | TodayOpen | None:
        """The bar labelled `ts`: an earlier one whole, the current one's open only, none later."""
        if ts > self.at:
            return None
        if ts == self.at:
            return self.today(symbol)
        bar = self._prices.bar_at(symbol, ts)
        return None if bar is None else _past(bar)

    def _last_bar_of(self, symbol: str, day: date) -> BookBar | None:
        end_of_day = datetime.combine(day + timedelta(days=1), time.min)
        bars = self._prices.history(symbol, before=min(end_of_day, self.at), limit=1)
        return bars[0] if bars and bars[0].ts.date() == day else None

    def today(self, symbol: str) -> TodayOpen:
        """The open of the current session (None when the symbol has no bar then)."""
        return TodayOpen(date=_label(self.at), open=self._prices.open_at(symbol, self.at))

    def previous_close(self, symbol: str) -> tuple[float, str] | None:
        """The last close before the current session, with its date."""
        # A few bars back is enough unless the symbol stopped trading long ago (FB in the data).
        for limit in (5, None):
            for bar in reversed(self._prices.history(symbol, before=self.at, limit=limit)):
                if bar.close is not None:
                    return bar.close, _label(bar.ts)
        return None


def _past(bar: BookBar) -> PastBar:
    return PastBar(
        date=_label(bar.ts),
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
    )


def _label(ts: datetime) -> str:
    return ts.date().isoformat() if ts.time() == datetime.min.time() else ts.isoformat(sep=" ")
