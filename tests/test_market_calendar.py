"""The XNYS calendar: holidays, early closes, weekends, bounds, and the shared data's days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data.calendar import (
    is_trading_day,
    last_closed_trading_day,
    next_trading_day,
    previous_trading_day,
    trading_day_on_or_before,
    trading_days,
)
from models.errors import CalendarError


@pytest.mark.parametrize(
    "holiday",
    [
        date(2025, 1, 1),
        date(2025, 1, 9),  # national day of mourning for President Carter
        date(2025, 4, 18),  # Good Friday
        date(2025, 7, 4),
        date(2025, 11, 27),
        date(2025, 12, 25),
    ],
)
def test_holidays_are_not_trading_days(holiday: date) -> None:
    assert not is_trading_day(holiday)
    assert holiday not in trading_days(holiday - timedelta(days=7), holiday + timedelta(days=7))


@pytest.mark.parametrize("early_close", [date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24)])
def test_early_close_days_are_trading_days(early_close: date) -> None:
    assert is_trading_day(early_close)


def test_weekends_are_excluded() -> None:
    days = trading_days(date(2025, 1, 1), date(2025, 12, 31))
    assert all(day.weekday() < 5 for day in days)
    assert not is_trading_day(date(2025, 10, 4))  # a Saturday
    assert len(days) == 250


def test_previous_and_next_skip_holidays_and_weekends() -> None:
    assert previous_trading_day(date(2025, 7, 7)) == date(2025, 7, 3)
    assert next_trading_day(date(2025, 7, 3)) == date(2025, 7, 7)
    assert previous_trading_day(date(2025, 12, 1)) == date(2025, 11, 28)
    assert next_trading_day(date(2025, 12, 24)) == date(2025, 12, 26)
    assert trading_day_on_or_before(date(2025, 7, 5)) == date(2025, 7, 3)
    assert trading_day_on_or_before(date(2025, 7, 3)) == date(2025, 7, 3)


def test_shared_daily_files_cover_exactly_the_xnys_days(shared_data) -> None:
    aapl = json.loads((shared_data / "nasdaq100_daily" / "daily_prices_AAPL.json").read_text())
    file_days = sorted(date.fromisoformat(d) for d in aapl["Time Series (Daily)"])
    assert file_days == trading_days(date(2025, 6, 10), date(2025, 10, 30))
    assert len(file_days) == 100


def test_works_from_2015_to_the_end_of_next_year() -> None:
    assert trading_days(date(2015, 1, 1), date(2015, 1, 9))[0] == date(2015, 1, 2)
    end_of_next_year = date(date.today().year + 1, 12, 31)
    assert previous_trading_day(end_of_next_year) < end_of_next_year
    assert len(trading_days(date(2015, 1, 1), end_of_next_year)) > 250 * 10


@pytest.mark.parametrize("outside", [date(1990, 1, 2), date(date.today().year + 5, 1, 2)])
def test_dates_outside_the_calendar_give_a_clear_error(outside: date) -> None:
    for call in (is_trading_day, previous_trading_day, next_trading_day):
        with pytest.raises(CalendarError, match=f"{outside} is outside the XNYS calendar"):
            call(outside)
    with pytest.raises(ValueError, match="outside the XNYS calendar"):
        trading_days(outside, outside)


def test_no_session_before_the_first_one() -> None:
    with pytest.raises(CalendarError, match="no session before"):
        previous_trading_day(date(2000, 1, 3))


def test_empty_range() -> None:
    assert trading_days(date(2025, 7, 5), date(2025, 7, 6)) == []
    assert trading_days(date(2025, 7, 10), date(2025, 7, 1)) == []


def test_last_closed_trading_day_respects_early_closes() -> None:
    # 2025-11-28 closes at 13:00 US/Eastern (18:00 UTC).
    assert last_closed_trading_day(datetime(2025, 11, 28, 17, 59, tzinfo=UTC)) == date(2025, 11, 26)
    assert last_closed_trading_day(datetime(2025, 11, 28, 18, 0, tzinfo=UTC)) == date(2025, 11, 28)
    # 20:30 US/Eastern on a Thursday is already Friday in UTC.
    assert last_closed_trading_day(datetime(2025, 10, 31, 0, 30, tzinfo=UTC)) == date(2025, 10, 30)
    with pytest.raises(CalendarError, match="timezone-aware"):
        last_closed_trading_day(datetime(2025, 10, 31, 12))


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 12, 31)))
def test_neighbours_are_the_closest_sessions(day: date) -> None:
    before, after = previous_trading_day(day), next_trading_day(day)
    assert before < day < after
    assert is_trading_day(before) and is_trading_day(after)
    # Nothing trades strictly between the neighbours except `day` itself.
    assert set(trading_days(before, after)) <= {before, day, after}
    assert (day in trading_days(before, after)) == is_trading_day(day)
    assert after - before <= timedelta(days=6)
