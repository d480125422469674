"""The NYSE (XNYS) trading calendar: which days are sessions, and the sessions around a day."""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime
from functools import cache

import exchange_calendars as xcals
import pandas as pd

from models.errors import CalendarError

EXCHANGE = "XNYS"
FIRST_DAY = date(2000, 1, 1)


def _last_day() -> date:
    # exchange_calendars stops one year after today by default; cover all of next year.
    return date(date.today().year + 1, 12, 31)


@cache
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(EXCHANGE, start=FIRST_DAY.isoformat(), end=_last_day().isoformat())


@cache
def _sessions() -> list[date]:
    return [ts.date() for ts in _calendar().sessions]


def _check_bounds(day: date) -> None:
    sessions = _sessions()
    if not FIRST_DAY <= day <= sessions[-1]:
        raise CalendarError(
            f"{day} is outside the {EXCHANGE} calendar, which covers {FIRST_DAY} to {sessions[-1]}"
        )


def trading_days(start: date, end: date) -> list[date]:
    """The XNYS sessions from `start` to `end`, both included, ascending."""
    _check_bounds(start)
    _check_bounds(end)
    sessions = _sessions()
    return sessions[bisect.bisect_left(sessions, start) : bisect.bisect_right(sessions, end)]


def is_trading_day(day: date) -> bool:
    """Whether `day` is an XNYS session (early-close days are)."""
    _check_bounds(day)
    sessions = _sessions()
    index = bisect.bisect_left(sessions, day)
    return index < len(sessions) and sessions[index] == day


def previous_trading_day(day: date) -> date:
    """The last XNYS session strictly before `day`."""
    _check_bounds(day)
    sessions = _sessions()
    index = bisect.bisect_left(sessions, day) - 1
    if index < 0:
        raise CalendarError(f"the {EXCHANGE} calendar has no session before {day}")
    return sessions[index]


def next_trading_day(day: date) -> date:
    """The first XNYS session strictly after `day`."""
    _check_bounds(day)
    sessions = _sessions()
    index = bisect.bisect_right(sessions, day)
    if index >= len(sessions):
        raise CalendarError(f"the {EXCHANGE} calendar has no session after {day}")
    return sessions[index]


def trading_day_on_or_before(day: date) -> date:
    """`day` itself if it is an XNYS session, else the session before it."""
    return day if is_trading_day(day) else previous_trading_day(day)


def last_closed_trading_day(now: datetime | None = None) -> date:
    """The latest XNYS session whose close (early closes included) is at or before `now`."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise CalendarError("`now` must be timezone-aware")
    day = trading_day_on_or_before(now.astimezone(UTC).date())
    close = _calendar().session_close(pd.Timestamp(day)).to_pydatetime()
    return day if close <= now else previous_trading_day(day)
