"""Trading calendars: which days are sessions, and the sessions around a day.

`XNYS` and `XSHG` come from exchange-calendars; `ALWAYS` (crypto) has a session every UTC
calendar day. The module-level functions answer for XNYS, the NASDAQ-100's calendar.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta
from functools import cache

import exchange_calendars as xcals
import pandas as pd

from models.errors import CalendarError

EXCHANGE = "XNYS"
ALWAYS = "ALWAYS"
FIRST_DAY = date(2000, 1, 1)


def _last_day() -> date:
    # exchange_calendars stops one year after today by default; cover all of next year.
    return date(date.today().year + 1, 12, 31)


class TradingCalendar:
    """The sessions of one calendar, with constant-time membership and bisect neighbours."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == ALWAYS:
            count = (_last_day() - FIRST_DAY).days + 1
            self.sessions = [FIRST_DAY + timedelta(days=n) for n in range(count)]
            self._exchange = None
        else:
            try:
                self._exchange = xcals.get_calendar(
                    name, start=FIRST_DAY.isoformat(), end=_last_day().isoformat()
                )
            except ValueError:  # holidays known only to an earlier year (XSHG): go as far
                self._exchange = xcals.get_calendar(name, start=FIRST_DAY.isoformat())
            self.sessions = [ts.date() for ts in self._exchange.sessions]
        self._set = frozenset(self.sessions)

    def _check_bounds(self, day: date) -> None:
        if not FIRST_DAY <= day <= self.sessions[-1]:
            raise CalendarError(
                f"{day} is outside the {self.name} calendar, which covers {FIRST_DAY} "
                f"to {self.sessions[-1]}"
            )

    def trading_days(self, start: date, end: date) -> list[date]:
        """The sessions from `start` to `end`, both included, ascending."""
        self._check_bounds(start)
        self._check_bounds(end)
        sessions = self.sessions
        return sessions[bisect.bisect_left(sessions, start) : bisect.bisect_right(sessions, end)]

    def is_trading_day(self, day: date) -> bool:
        """Whether `day` is a session (early-close days are)."""
        self._check_bounds(day)
        return day in self._set

    def previous_trading_day(self, day: date) -> date:
        """The last session strictly before `day`."""
        self._check_bounds(day)
        index = bisect.bisect_left(self.sessions, day) - 1
        if index < 0:
            raise CalendarError(f"the {self.name} calendar has no session before {day}")
        return self.sessions[index]

    def next_trading_day(self, day: date) -> date:
        """The first session strictly after `day`."""
        self._check_bounds(day)
        index = bisect.bisect_right(self.sessions, day)
        if index >= len(self.sessions):
            raise CalendarError(f"the {self.name} calendar has no session after {day}")
        return self.sessions[index]

    def trading_day_on_or_before(self, day: date) -> date:
        """`day` itself if it is a session, else the session before it."""
        return day if self.is_trading_day(day) else self.previous_trading_day(day)

    def last_closed_trading_day(self, now: datetime | None = None) -> date:
        """The latest session whose close (early closes included) is at or before `now`."""
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            raise CalendarError("`now` must be timezone-aware")
        day = self.trading_day_on_or_before(now.astimezone(UTC).date())
        return day if self.session_close(day) <= now else self.previous_trading_day(day)

    def session_open(self, day: date) -> datetime:
        """When session `day` opens, aware UTC; a UTC calendar day opens at its midnight."""
        if self._exchange is None:
            return datetime.combine(day, datetime.min.time(), UTC)
        return self._exchange.session_open(pd.Timestamp(day)).to_pydatetime()

    def session_close(self, day: date) -> datetime:
        """When session `day` closes (an early close included), aware UTC; a UTC calendar day
        closes at the next midnight."""
        if self._exchange is None:
            return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        return self._exchange.session_close(pd.Timestamp(day)).to_pydatetime()


@cache
def calendar(name: str = EXCHANGE) -> TradingCalendar:
    """The calendar called `name` (XNYS, XSHG or ALWAYS), built once."""
    try:
        return TradingCalendar(name)
    except xcals.errors.InvalidCalendarName:
        raise CalendarError(f"unknown trading calendar {name!r}") from None


def trading_days(start: date, end: date) -> list[date]:
    """The XNYS sessions from `start` to `end`, both included, ascending."""
    return calendar().trading_days(start, end)


def is_trading_day(day: date) -> bool:
    """Whether `day` is an XNYS session (early-close days are)."""
    return calendar().is_trading_day(day)


def previous_trading_day(day: date) -> date:
    """The last XNYS session strictly before `day`."""
    return calendar().previous_trading_day(day)


def next_trading_day(day: date) -> date:
    """The first XNYS session strictly after `day`."""
    return calendar().next_trading_day(day)


def trading_day_on_or_before(day: date) -> date:
    """`day` itself if it is an XNYS session, else the session before it."""
    return calendar().trading_day_on_or_before(day)


def last_closed_trading_day(now: datetime | None = None) -> date:
    """The latest XNYS session whose close (early closes included) is at or before `now`."""
    return calendar().last_closed_trading_day(now)
