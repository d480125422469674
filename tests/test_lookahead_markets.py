"""The look-ahead harness on the other markets: hourly sessions and crypto weekend sessions.

The harness of `tests/test_lookahead.py`, generalised to a session of any market: a bar label in
an answer is market time (allowed up to the session's fill time, and the session's own label), an
instant with an offset is compared with the fill time in UTC. One SQLite store holds the real
NASDAQ-100 and SSE 50 hourly bars, their daily bars (which an hourly session must never reach),
the crypto coins, the news sample and canary items published around each session's fill time.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fastmcp
import pytest
from fastmcp import FastMCP
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent_tools.context import SessionContext, session_cutoff
from agent_tools.market_view import MarketView, PastBar, TodayOpen
from agent_tools.news import NewsArchive
from agent_tools.servers import build_server
from agent_tools.servers import prices as prices_tools
from configs.loader import load_universe
from configs.markets import Market, load_market
from market_data.aitrader_files import import_prices
from market_data.calendar import calendar
from market_data.news_feed import parse_published, store_news
from models.book import Portfolio
from models.engine import create_store_engine
from models.prices import PriceBook
from tests.conftest import store_copy
from tests.test_lookahead import (
    COMPACT_MOMENT,
    ISO_MOMENT,
    MIN_INTEGER_CHECKED,
    NUMBER,
    Answer,
    _leaves,
    _moment,
    ask,
)

NEW_YORK = ZoneInfo("America/New_York")  # Alpha Vantage's `time_published` is New York time
# The shared files each market reads (single files, not folders: the importer's folder listing
# is being extended, and an hourly session must be tested with the daily bars in the store).
PRICE_FILES = [
    "nasdaq100_hourly/merged.jsonl",
    "sse50_hourly/merged_hourly.jsonl",
    "sse50_hourly/A_stock_hourly.csv",
    "sse50_daily/merged.jsonl",
    "sse50_daily/daily_prices_sse_50.csv",
    "sse50_daily/index_daily_sse_50.json",
    "crypto_daily/CD5_crypto_index.json",
]
BAR_VALUES = ("high", "low", "close", "volume")  # what a bar shows beyond its open
# Forbidden numbers by what they are, so a failure says which rule broke.
LATER_BARS = "the session bar's close/high/low/volume or later bars"
DAILY_BAR = "the session day's daily bar (or later ones)"
Forbidden = dict[str, set[float]]
PRICE_GLOBS = ["nasdaq100_daily/daily_prices_*.json", "crypto_daily/daily_prices_*.json"]


@dataclass(frozen=True)
class Slot:
    """One session of a market: its bar label (market time, naive) and what follows from it."""

    market: Market
    at: datetime

    @property
    def day(self) -> date:
        return self.at.date()

    @property
    def fill(self) -> datetime:
        """When its orders fill, aware in the market's zone."""
        return self.market.fill_time(self.at)

    @property
    def fill_local(self) -> datetime:
        return self.fill.replace(tzinfo=None)

    @property
    def cutoff(self) -> datetime:
        """The fill time in UTC: news published from then on is hidden."""
        return self.fill.astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.market.name} {self.at:%Y-%m-%d %H:%M}"


def slot(market: str, at: str) -> Slot:
    return Slot(load_market(market), datetime.fromisoformat(at))


HOURLY_SLOTS = [
    slot("nasdaq100-hourly", "2025-10-01 10:00"),  # first bar of the data: no history
    slot("nasdaq100-hourly", "2025-10-15 10:00"),  # first bar of a day with a daily bar too
    slot("nasdaq100-hourly", "2025-10-15 13:00"),
    slot("nasdaq100-hourly", "2025-10-30 15:00"),  # last bar of the daily data's last day
    slot("nasdaq100-hourly", "2025-11-03 10:00"),  # the Monday after the end of DST
    slot("nasdaq100-hourly", "2025-11-10 15:00"),  # the newest bar, open-only in the file
    slot("sse50-hourly", "2025-10-09 10:30"),  # first bar after the Golden Week holiday
    slot("sse50-hourly", "2025-10-15 10:30"),  # fills at 09:30 Shanghai = 01:30 UTC
    slot("sse50-hourly", "2025-10-15 11:30"),
    slot("sse50-hourly", "2025-10-15 14:00"),  # after the lunch break: fills at 13:00
    slot("sse50-hourly", "2025-10-15 15:00"),
    slot("sse50-hourly", "2025-11-19 15:00"),  # the last bar
]
FIRST_DAYS = {date(2025, 10, 1), date(2025, 10, 9)}  # of the hourly data: no earlier day
# Thursday to Monday: the weekend sessions must see the calendar day before, never Friday twice.
CRYPTO_SLOTS = [slot("crypto", f"2025-11-{day:02d} 00:00") for day in (6, 7, 8, 9, 10)]
ALL_SLOTS = [*HOURLY_SLOTS, *CRYPTO_SLOTS]
BOOKS = {
    "nasdaq100-hourly": Portfolio(cash=10_000.0, positions={"AAPL": 3, "MSFT": 2}),
    "sse50-hourly": Portfolio(cash=100_000.0, positions={"600028.SH": 200, "600519.SH": 100}),
    "crypto": Portfolio(cash=50_000.0, positions={"BTC": 0.5, "ETH": 2.0}),
}
# (a symbol to look at, a cheap one to buy) per market
SYMBOLS = {
    "nasdaq100-hourly": ("AAPL", "MSFT"),
    "sse50-hourly": ("600519.SH", "600028.SH"),
    "crypto": ("BTC", "ADA"),
}


# --- the harness, by session ---------------------------------------------------------------------


def slot_moments(text: str) -> Iterator[tuple[str, date | datetime]]:
    """Every date or time `text` names: a date, a bar label (naive, market time) or an instant
    (aware: ISO with an offset, or Alpha Vantage's compact New York time)."""
    for pattern in (ISO_MOMENT, COMPACT_MOMENT):
        for match in pattern.finditer(text):
            moment = _moment(match)
            if moment is None:
                continue
            if pattern is ISO_MOMENT and isinstance(moment, datetime) and not match.group(7):
                moment = moment.replace(tzinfo=None)
            yield match.group(0), moment


def is_late(moment: date | datetime, session: Slot) -> bool:
    """Whether naming `moment` reveals something after the session's fill time."""
    if not isinstance(moment, datetime):
        return moment > session.day
    if moment.tzinfo is None:  # a label: up to the fill time, or the session's own bar
        return moment > session.fill_local and moment != session.at
    return moment > session.cutoff


def is_complete_before(moment: date | datetime | None, session: Slot) -> bool:
    """Whether a bar labelled `moment` may be shown whole: it ended by the fill time. In an
    hourly session a bar labelled by a day is a daily bar, which it must never show."""
    if moment is None or isinstance(moment, datetime):
        return moment is None or (moment.tzinfo is None and moment < session.at)
    return not session.market.hourly and moment < session.day


def assert_session_clean(
    text: str, session: Slot, numbers: Forbidden, titles: Iterable[str]
) -> None:
    """Fail if `text` names a moment after the session's fill, a forbidden number or title."""
    problems = []
    late = sorted({found for found, moment in slot_moments(text) if is_late(moment, session)})
    if late:
        problems.append(f"dates after the fill at {session.cutoff:%Y-%m-%d %H:%M} UTC: {late[:5]}")
    bare = COMPACT_MOMENT.sub(" ", ISO_MOMENT.sub(" ", text))
    checked = {
        token
        for token in NUMBER.findall(bare)
        if "." in token or "e" in token.lower() or abs(float(token)) >= MIN_INTEGER_CHECKED
    }
    for kind, values in numbers.items():
        found = sorted(token for token in checked if float(token) in values)
        if found:
            problems.append(f"numbers of {kind}: {found[:5]}")
    leaked = [t for t in titles if t in text or json.dumps(t)[1:-1] in text]
    if leaked:
        problems.append(f"texts published after the fill: {leaked[:3]}")
    assert not problems, f"look-ahead in {session}: " + "; ".join(problems)


def _label_of(value: Any) -> date | datetime | None:
    if not isinstance(value, str):
        return None
    moments = list(slot_moments(value))
    return moments[0][1] if len(moments) == 1 and moments[0][0] == value.strip() else None


def assert_structured_session_clean(structured: Any, session: Slot) -> None:
    """Fail if a structured answer shows more than the open of a bar not complete by the fill."""
    if isinstance(structured, dict):
        when = _label_of(structured.get("date"))
        shown = sorted(
            k for k in ("high", "low", "close", "volume") if structured.get(k) is not None
        )
        if shown and "date" in structured and not is_complete_before(when, session):
            raise AssertionError(f"look-ahead in {session}: bar {structured['date']} shows {shown}")
        for value in structured.values():
            assert_structured_session_clean(value, session)
    elif isinstance(structured, list):
        # get_recent_closes answers [label, close] pairs.
        if len(structured) == 2 and isinstance(structured[1], float | int):
            when = _label_of(structured[0])
            assert when is None or is_complete_before(when, session), (
                f"look-ahead in {session}: close {structured}"
            )
        for value in structured:
            assert_structured_session_clean(value, session)
    elif isinstance(structured, str):
        for found, moment in slot_moments(structured):
            assert not is_late(moment, session), f"look-ahead in {session}: field {found!r}"


def strip_echoes(text: str, args: dict[str, Any], session: Slot) -> str:
    """`text` without the moments and numbers the caller sent (errors quote them); stricter than
    the daily harness's: only the very moment asked goes, not its whole day."""
    leaves = [str(leaf) for leaf in _leaves(args)]
    asked = {moment for leaf in leaves for _, moment in slot_moments(leaf)}
    zone = ZoneInfo(session.market.timezone)
    asked |= {
        m.astimezone(zone).replace(tzinfo=None)
        for m in asked
        if isinstance(m, datetime) and m.tzinfo
    }
    numbers = {float(n) for leaf in leaves for n in NUMBER.findall(leaf)}

    def strip_moment(match: re.Match[str]) -> str:
        moments = list(slot_moments(match.group(0)))
        return " " if moments and moments[0][1] in asked else match.group(0)

    def strip_number(match: re.Match[str]) -> str:
        return " " if float(match.group(0)) in numbers else match.group(0)

    return NUMBER.sub(strip_number, ISO_MOMENT.sub(strip_moment, text))


# --- the store: prices of every market, the news sample and canaries ------------------------------


@dataclass
class Stores:
    engine: Engine
    hourly: PriceBook
    daily: PriceBook
    news: list[tuple[str, datetime]]  # every stored title with its publication time (UTC)

    def book(self, session: Slot) -> PriceBook:
        return self.hourly if session.market.hourly else self.daily


def canary_times(session: Slot) -> dict[str, datetime]:
    """When a session's canaries are published: one a second before its fill, the rest later."""
    zone = ZoneInfo(session.market.timezone)
    fill = session.fill
    return {
        "pre": fill - timedelta(seconds=1),
        "fill": fill,
        "post": fill + timedelta(seconds=1),
        "label": session.at.replace(tzinfo=zone),  # an SSE bar's end
        "label-read-as-utc": session.at.replace(tzinfo=UTC),  # the original's zone-less cutoff
        "evening": datetime.combine(session.day, time(20, 0), tzinfo=zone),
        "next": datetime.combine(session.day + timedelta(days=1), time(8, 0), tzinfo=zone),
        "far": fill + timedelta(days=30),
    }


def canary_title(session: Slot, kind: str) -> str:
    return f"CANARY {session.market.name} {kind} {session.at:%Y%m%d%H%M}"


def canary_feed(sessions: Iterable[Slot]) -> list[dict[str, Any]]:
    """Alpha Vantage-like feed items (New York `time_published`) named after their moment."""
    return [
        {
            "title": canary_title(session, kind),
            "url": f"https://canary.test/{session.market.name}/{session.at:%Y%m%d%H%M}/{kind}",
            "time_published": f"{moment.astimezone(NEW_YORK):%Y%m%dT%H%M%S}",
            "summary": f"Canary item published {moment.isoformat()}.",
            "source": "canary",
            "ticker_sentiment": [{"ticker": "AAPL"}, {"ticker": "600519.SH"}, {"ticker": "BTC"}],
        }
        for session in sessions
        for kind, moment in canary_times(session).items()
    ]


def import_shared_prices(session: Session, shared_data: Path) -> None:
    """Every market's bars, hourly and daily, into one store."""
    files = [shared_data / name for name in PRICE_FILES]
    files += sorted({f for pattern in PRICE_GLOBS for f in shared_data.glob(pattern)} - set(files))
    for file in files:
        import_prices(session, file)


@pytest.fixture(scope="module")
def stores(
    sqlite_template: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stores]:
    """One SQLite store for the module: all markets' prices, the news sample and the canaries."""
    path = tmp_path_factory.mktemp("lookahead-markets") / "store.db"
    engine = create_store_engine(store_copy(sqlite_template, path))
    sample = json.loads((shared_data / "alphavantage_news_sample.json").read_text())["feed"]
    feed = [*sample, *canary_feed(ALL_SLOTS)]
    with Session(engine) as session:
        import_shared_prices(session, shared_data)
        assert store_news(session, feed) == len(feed)
        session.commit()
        hourly, daily = PriceBook.load(session, "60min"), PriceBook.load(session, "1d")
    news = [(item["title"], parse_published(item["time_published"])) for item in feed]
    yield Stores(engine, hourly, daily, news)
    engine.dispose()


def make_context(stores: Stores, session: Slot, book: Portfolio | None = None) -> SessionContext:
    """The session's context as agents/session.py builds it for a model-day's session."""
    market = session.market
    universe = load_universe(market.universe)
    return SessionContext.create(
        run_id=1,
        model="lookahead",
        portfolio="lookahead",
        day=session.at,
        universe=universe.symbols,
        prices=stores.book(session),
        book=book or BOOKS[market.name].model_copy(deep=True),
        is_session_day=calendar(market.calendar).is_trading_day,
        benchmark=universe.benchmark,
        news=NewsArchive(stores.engine),
        rules=market.rules,
        fill_time=market.fill_time(session.at),
        title=market.title,
    )


def forbidden_numbers(stores: Stores, session: Slot) -> Forbidden:
    """Values of the session's bar but its open and of later bars; in an hourly session also the
    day's daily high/low/close/volume and later daily bars; none also knowable before the fill."""
    universe = load_universe(session.market.universe)
    visible: set[float] = set()
    later: set[float] = set()
    daily: set[float] = set()
    for symbol in [*universe.symbols, universe.benchmark]:
        for bar in stores.book(session).history(symbol, datetime.max):
            values = {bar.open, bar.high, bar.low, bar.close, bar.volume} - {None}
            if bar.ts < session.at:
                visible |= values
            elif bar.ts == session.at:
                visible.add(bar.open)
                later |= values - {bar.open}
            else:
                later |= values
        if session.market.hourly:
            for bar in stores.daily.history(symbol, datetime.max):
                if bar.ts.date() >= session.day:
                    daily |= {bar.high, bar.low, bar.close, bar.volume} - {None}
                if bar.ts.date() > session.day:
                    daily.add(bar.open)
    return {LATER_BARS: later - visible, DAILY_BAR: daily - visible}


def forbidden_titles(stores: Stores, session: Slot) -> list[str]:
    return [title for title, published in stores.news if published >= session.cutoff]


def check(answers: list[Answer], session: Slot, numbers: Forbidden, titles: list[str]) -> None:
    """Run the harness on every answer; the failure names the call."""
    for answer in answers:
        try:
            text = strip_echoes(answer.text, answer.args, session)
            assert_session_clean(text, session, numbers, titles)
            assert_structured_session_clean(answer.structured, session)
        except AssertionError as exc:
            raise AssertionError(f"{answer.tool}({answer.args}): {exc}") from None


# --- the calls -----------------------------------------------------------------------------------


def _label(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def neighbour_days(book: PriceBook, symbol: str, day: date) -> tuple[date | None, date | None]:
    """The days of `symbol`'s last bar before `day` and first bar after it."""
    before = book.history(symbol, datetime.combine(day, time.min), limit=1)
    after = [t for t in book.history(symbol, datetime.max) if t.ts.date() > day][:1]
    return (before[0].ts.date() if before else None), (after[0].ts.date() if after else None)


def common_calls(session: Slot) -> list[tuple[str, dict[str, Any]]]:
    """The calls of every market: snapshot, history, closes, news, the book and orders."""
    symbol, cheap = SYMBOLS[session.market.name]
    benchmark = load_universe(session.market.universe).benchmark
    lot = session.market.rules.lot if session.market.rules.quantity == "lots" else 1
    return [
        ("get_universe_snapshot", {}),
        ("get_price_history", {"symbol": symbol}),
        ("get_price_history", {"symbol": symbol.lower(), "sessions": 260}),
        ("get_price_history", {"symbol": benchmark, "sessions": 5}),
        ("get_recent_closes", {}),
        ("get_recent_closes", {"sessions": 260, "symbols": [symbol, benchmark]}),
        ("search_news", {}),
        ("search_news", {"query": "canary", "limit": 50}),
        ("search_news", {"query": "CANARY post label evening next far", "limit": 50}),
        ("search_news", {"tickers": ["AAPL", "600519.SH", "BTC"], "limit": 50}),
        ("get_portfolio", {}),
        ("buy", {"symbol": cheap, "shares": lot}),
        ("buy", {"symbol": symbol, "shares": 10**9}),
        ("sell", {"symbol": symbol, "shares": lot}),
        ("sell", {"symbol": cheap, "shares": 10**6}),
        ("calculate", {"expression": "(10000 - 2555.5) / 189.6"}),
        ("get_portfolio", {}),
    ]


def price_calls(stores: Stores, session: Slot) -> list[tuple[str, dict[str, Any]]]:
    """get_price with ordinary and adversarial dates: every bar time of the day, the days
    around it, times inside the current bar, instants with offsets, nonsense."""
    symbol = SYMBOLS[session.market.name][0]
    before, after = neighbour_days(stores.book(session), symbol, session.day)
    dates = [str(session.day), f"{session.day}T23:59:00", "2099-12-31", "today", "2025-13-45", ""]
    dates += [str(d) for d in (before, after, session.day + timedelta(days=1)) if d]
    if session.market.hourly:
        dates += [_label(at) for at in session.market.session_times(session.day)]
        dates += [f"{session.at:%Y-%m-%d %H:%M:%S}", session.at.isoformat()]
        dates += [_label(session.fill_local), _label(session.fill_local + timedelta(minutes=1))]
        dates += [session.cutoff.isoformat(), (session.cutoff + timedelta(hours=1)).isoformat()]
        dates += [f"{after} {session.at:%H:%M}" if after else "2099-12-31 10:00"]
        dates += [f"{session.day} 25:00", f"{before} 15:00" if before else "1999-01-04 10:00"]
    return [("get_price", {"symbol": symbol, "date": d}) for d in dates]


def sweep(
    stores: Stores,
    session: Slot,
    server: FastMCP | None = None,
    extra_calls: Iterable[tuple[str, dict[str, Any]]] = (),
) -> dict[tuple[str, str], Answer]:
    """Call every tool in `session`, check every answer with the harness; answers by call."""
    server = server or build_server(make_context(stores, session))
    calls = [*common_calls(session), *price_calls(stores, session), *extra_calls]
    answers = ask(server, calls, every_tool=True)
    check(answers, session, forbidden_numbers(stores, session), forbidden_titles(stores, session))
    return {(a.tool, json.dumps(a.args, sort_keys=True)): a for a in answers}


def answer_of(answers: dict[tuple[str, str], Answer], tool: str, **args: Any) -> Answer:
    return answers[(tool, json.dumps(args, sort_keys=True))]


# --- hourly sessions -----------------------------------------------------------------------------


@pytest.mark.parametrize("session", HOURLY_SLOTS, ids=str)
def test_no_tool_answer_in_an_hourly_session_reveals_anything_after_its_fill(
    stores: Stores, session: Slot
) -> None:
    answers = sweep(stores, session)
    symbol = SYMBOLS[session.market.name][0]
    assert sum(not a.is_error for a in answers.values()) >= 15
    this_bar = stores.hourly.bar_at(symbol, session.at)
    opening = {"symbol": symbol, "date": f"{session.at:%Y-%m-%d %H:%M:%S}", "open": this_bar.open}
    for asked in (str(session.day), _label(session.at), session.at.isoformat()):
        assert answer_of(answers, "get_price", symbol=symbol, date=asked).structured == opening
    # Earlier bars of the day come whole; later ones, and later days, are refused.
    for at in session.market.session_times(session.day):
        got = answer_of(answers, "get_price", symbol=symbol, date=_label(at))
        if at < session.at:
            bar = stores.hourly.bar_at(symbol, at)
            assert got.structured["close"] == bar.close and got.structured["high"] == bar.high
        elif at > session.at:
            assert got.is_error and "in the future" in got.text
    history = answer_of(answers, "get_price_history", symbol=symbol.lower(), sessions=260)
    assert history.structured["today"] == {"date": opening["date"], "open": this_bar.open}
    assert all(bar["date"] < opening["date"] for bar in history.structured["bars"])
    assert len(history.structured["bars"]) == len(stores.hourly.history(symbol, session.at, 260))
    cheap, lot = (
        SYMBOLS[session.market.name][1],
        100 if session.market.name == "sse50-hourly" else 1,
    )
    bought = answer_of(answers, "buy", symbol=cheap, shares=lot).structured["filled"]
    assert bought["price"] == stores.hourly.open_at(cheap, session.at)
    assert_news_is_cut_at_the_fill(answers, session)


def assert_news_is_cut_at_the_fill(answers: dict[tuple[str, str], Answer], session: Slot) -> None:
    """The canary published a second before the fill is the newest item the agent may read."""
    news = answer_of(answers, "search_news", query="canary", limit=50).structured
    assert news["items"][0]["title"] == canary_title(session, "pre")
    assert news["published_before"] == session.cutoff.isoformat(timespec="minutes")


@pytest.mark.parametrize("session", [s for s in HOURLY_SLOTS if s.day not in FIRST_DAYS], ids=str)
def test_a_past_day_in_an_hourly_session_is_its_last_hourly_bar_never_a_daily_bar(
    stores: Stores, session: Slot
) -> None:
    symbol = SYMBOLS[session.market.name][0]
    before, _ = neighbour_days(stores.hourly, symbol, session.day)
    assert before is not None
    last = stores.hourly.history(symbol, datetime.combine(session.day, time.min), limit=1)[0]
    server = build_server(make_context(stores, session), groups=("prices",))
    (got,) = ask(server, [("get_price", {"symbol": symbol, "date": str(before)})])
    assert got.structured == {
        "symbol": symbol,
        "date": f"{last.ts:%Y-%m-%d %H:%M:%S}",
        "open": last.open,
        "high": last.high,
        "low": last.low,
        "close": last.close,
        "volume": last.volume,
    }
    daily = stores.daily.bar_on(symbol, before)
    if daily is not None:  # the store holds that day's daily bar too: it is not what came
        assert (daily.open, daily.volume) != (last.open, last.volume)


def test_sse50_news_cutoff_of_the_10_30_session_is_09_30_shanghai(stores: Stores) -> None:
    session = slot("sse50-hourly", "2025-10-15 10:30")
    assert session.cutoff == datetime(2025, 10, 15, 1, 30, tzinfo=UTC)
    server = build_server(make_context(stores, session), groups=("news",))
    (news,) = ask(server, [("search_news", {"query": "canary", "limit": 50})])
    assert news.structured["published_before"] == "2025-10-15T01:30+00:00"
    titles = [item["title"] for item in news.structured["items"]]
    assert titles[0] == canary_title(session, "pre")
    for kind in ("fill", "post", "label", "label-read-as-utc", "evening"):
        assert canary_title(session, kind) not in titles


# --- crypto weekends -----------------------------------------------------------------------------


@pytest.mark.parametrize("session", CRYPTO_SLOTS, ids=lambda s: f"{s.day:%a %Y-%m-%d}")
def test_a_crypto_session_sees_the_calendar_day_before_and_only_the_open_of_its_own(
    stores: Stores, session: Slot
) -> None:
    answers = sweep(stores, session)
    yesterday = session.day - timedelta(days=1)  # Saturday's is Friday, Sunday's is Saturday
    for symbol in ("BTC", "ETH"):
        bar = stores.daily.bar_on(symbol, yesterday)
        row = next(
            r
            for r in answer_of(answers, "get_universe_snapshot").structured["symbols"]
            if r["symbol"] == symbol
        )
        assert (row["previous_date"], row["previous_close"]) == (str(yesterday), bar.close)
        assert row["open"] == stores.daily.bar_on(symbol, session.day).open
    history = answer_of(answers, "get_price_history", symbol="btc", sessions=260).structured
    assert history["bars"][-1]["date"] == str(yesterday)
    assert history["today"] == {
        "date": str(session.day),
        "open": stores.daily.bar_on("BTC", session.day).open,
    }
    got = answer_of(answers, "get_price", symbol="BTC", date=str(yesterday)).structured
    assert got["close"] == stores.daily.bar_on("BTC", yesterday).close
    tomorrow = answer_of(answers, "get_price", symbol="BTC", date=str(session.day + timedelta(1)))
    assert tomorrow.is_error and "in the future" in tomorrow.text
    assert_news_is_cut_at_the_fill(answers, session)


# --- the harness catches leaky variants ----------------------------------------------------------


def _leak_the_current_bar_whole(monkeypatch: pytest.MonkeyPatch, stores: Stores) -> None:
    def today(self: MarketView, symbol: str) -> PastBar | TodayOpen:
        bar = self._prices.bar_at(symbol, self.at)
        if bar is None:
            return today_open(self, symbol)
        fields = {k: getattr(bar, k) for k in ("open", "high", "low", "close", "volume")}
        return PastBar(
            date=str(self.at.date())
            if self.at.time() == time.min
            else f"{self.at:%Y-%m-%d %H:%M:%S}",
            **fields,
        )

    today_open = MarketView.today

    monkeypatch.setattr(MarketView, "today", today)


def _leak_the_days_daily_bar(monkeypatch: pytest.MonkeyPatch, stores: Stores) -> None:
    """The original's get_price_local: a date-only query gets the day's daily bar."""
    bar_on = MarketView.bar_on

    def leaky(self: MarketView, symbol: str, day: date) -> Any:
        bar = stores.daily.bar_on(symbol, day)
        if day != self.day or bar is None:
            return bar_on(self, symbol, day)
        fields = {k: getattr(bar, k) for k in ("open", "high", "low", "close", "volume")}
        return PastBar(date=str(day), **fields)

    monkeypatch.setattr(MarketView, "bar_on", leaky)


def _leak_later_hours(monkeypatch: pytest.MonkeyPatch, stores: Stores) -> None:
    """The original's get_price_local: only the session's own bar is masked, any later time of
    any day comes whole (both the tool's date check and MarketView's are gone)."""
    bar_at = MarketView.bar_at

    def leaky(self: MarketView, symbol: str, ts: datetime) -> Any:
        bar = self._prices.bar_at(symbol, ts)
        if ts <= self.at or bar is None:
            return bar_at(self, symbol, ts)
        fields = {k: getattr(bar, k) for k in ("open", "high", "low", "close", "volume")}
        return PastBar(date=f"{ts:%Y-%m-%d %H:%M:%S}", **fields)

    def any_moment(context: SessionContext, text: str) -> date | datetime:
        text = text.strip()
        try:
            if len(text) <= len("YYYY-MM-DD"):
                return date.fromisoformat(text)
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise prices_tools.RejectedCall(f"unreadable date {text!r}") from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(context.fill_time.tzinfo).replace(tzinfo=None)
        return moment

    monkeypatch.setattr(MarketView, "bar_at", leaky)
    monkeypatch.setattr(prices_tools, "_past_moment", any_moment)


def _leak_news_up_to_the_label_in_new_york(monkeypatch: pytest.MonkeyPatch, _: Stores) -> None:
    """A context without the market's fill time: NASDAQ's rule reads the label in New York."""
    monkeypatch.setattr(SessionContext, "cutoff", property(lambda self: session_cutoff(self.at)))


def _leak_news_up_to_the_bar_end(monkeypatch: pytest.MonkeyPatch, _: Stores) -> None:
    """The bar's label (its end, for SSE) as the cutoff, in the market's zone."""
    late = property(lambda self: self.at.replace(tzinfo=self.fill_time.tzinfo).astimezone(UTC))
    monkeypatch.setattr(SessionContext, "cutoff", late)


LEAKS: dict[str, tuple[Callable[[pytest.MonkeyPatch, Stores], None], str, Slot]] = {
    "current bar whole via MarketView.today (nasdaq100-hourly)": (
        _leak_the_current_bar_whole,
        "close/high/low/volume|shows",
        slot("nasdaq100-hourly", "2025-10-15 13:00"),
    ),
    "current bar whole via MarketView.today (sse50-hourly)": (
        _leak_the_current_bar_whole,
        "close/high/low/volume|shows",
        slot("sse50-hourly", "2025-10-15 11:30"),
    ),
    "the day's daily bar via a date-only get_price (sse50-hourly)": (
        _leak_the_days_daily_bar,
        "daily bar",
        slot("sse50-hourly", "2025-10-15 14:00"),
    ),
    "the day's daily bar via a date-only get_price (nasdaq100-hourly)": (
        _leak_the_days_daily_bar,
        "daily bar",
        slot("nasdaq100-hourly", "2025-10-15 10:00"),
    ),
    "later hours whole via MarketView.bar_at": (
        _leak_later_hours,
        "dates after|close/high/low/volume",
        slot("sse50-hourly", "2025-10-15 10:30"),
    ),
    "news cut at the label read in New York (sse50-hourly)": (
        _leak_news_up_to_the_label_in_new_york,
        "texts published after",
        slot("sse50-hourly", "2025-10-15 10:30"),
    ),
    "news cut at the bar's end (sse50-hourly)": (
        _leak_news_up_to_the_bar_end,
        "texts published after",
        slot("sse50-hourly", "2025-10-15 10:30"),
    ),
    "current day whole via MarketView.today (crypto Saturday)": (
        _leak_the_current_bar_whole,
        "close/high/low/volume|shows",
        slot("crypto", "2025-11-08 00:00"),
    ),
}


@pytest.mark.parametrize("leak", list(LEAKS))
def test_the_harness_catches_a_leaky_variant(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, leak: str
) -> None:
    install, expected, session = LEAKS[leak]
    install(monkeypatch, stores)
    with pytest.raises(AssertionError, match=expected):
        sweep(stores, session)


def test_the_harness_reads_market_time_labels_and_instants() -> None:
    session = slot("sse50-hourly", "2025-10-15 11:30")  # fills at 10:30 Shanghai, 02:30 UTC
    for text in (
        "2025-10-15 10:30:00",
        "2025-10-15 11:30",
        "2025-10-15T02:30+00:00",
        "2025-10-14",
        "20251014T2230",
    ):
        assert_session_clean(f"at {text}", session, {}, [])
    for text in (
        "2025-10-15 11:00:00",
        "2025-10-15 14:00",
        "2025-10-16",
        "2025-10-15T02:31Z",
        "20251014T2231",
    ):
        with pytest.raises(AssertionError, match="dates after"):
            assert_session_clean(f"at {text}", session, {}, [])
    with pytest.raises(AssertionError, match="daily bar"):
        assert_session_clean('{"close": 1462.0}', session, {DAILY_BAR: {1462.0}}, [])
    assert_structured_session_clean({"date": "2025-10-15 10:30:00", "close": 1.0}, session)
    for bar in ({"date": "2025-10-15 11:30:00", "close": 1.0}, {"date": "2025-10-14", "low": 1.0}):
        with pytest.raises(AssertionError, match="shows"):
            assert_structured_session_clean(bar, session)
    with pytest.raises(AssertionError, match="close"):
        assert_structured_session_clean([["2025-10-15 11:30:00", 1.0]], session)


async def _descriptions(server: FastMCP) -> dict[str, str]:
    async with fastmcp.Client(server) as client:
        return {
            tool.name: f"{tool.description} {json.dumps(tool.inputSchema)}"
            for tool in await client.list_tools()
        }


def test_hourly_sessions_describe_hourly_bars_and_daily_ones_keep_their_words(
    stores: Stores,
) -> None:
    hourly = asyncio.run(_descriptions(build_server(make_context(stores, HOURLY_SLOTS[2]))))
    daily_context = SessionContext.create(
        run_id=1,
        model="lookahead",
        portfolio="lookahead",
        day=date(2025, 10, 15),
        universe=["AAPL"],
        prices=stores.daily,
        book=Portfolio(cash=1.0),
        is_session_day=calendar("XNYS").is_trading_day,
    )
    daily = asyncio.run(_descriptions(build_server(daily_context)))
    assert "YYYY-MM-DD HH:MM" in hourly["get_price"] and "hourly" in hourly["get_price_history"]
    assert daily["get_price"].startswith("One day's bar; for today only the open is known.")
    assert '"description": "YYYY-MM-DD, today or earlier"' in daily["get_price"]
    assert daily["get_price_history"].startswith("Daily bars of the last `sessions` trading days")
