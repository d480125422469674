"""The look-ahead guard as a harness: on day D no tool answer may reveal anything after D's open.

Every tool is called the way the agent calls it (fastmcp in-memory client, LangChain tools from
`load_mcp_tools`), with ordinary and adversarial arguments, on real NASDAQ-100 data and real news
plus canary items published after the open. `assert_no_lookahead` scans each answer; a test with
deliberately leaky variants shows that it catches leaks.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import fastmcp
import pytest
from fastmcp import FastMCP
from langchain_mcp_adapters.tools import load_mcp_tools
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent_tools.context import EXCHANGE_TZ, SessionContext, session_cutoff
from agent_tools.market_view import MarketView, PastBar
from agent_tools.news import NewsArchive
from agent_tools.servers import build_server
from configs.loader import load_universe
from market_data.aitrader_files import import_prices
from market_data.calendar import is_trading_day, next_trading_day, previous_trading_day
from market_data.news_feed import parse_published, store_news
from models.book import Portfolio
from models.engine import create_store_engine
from models.prices import PriceBook
from tests.conftest import store_copy

# 15 of the 100 sessions in the shared data: first and last, after holidays (Juneteenth, July 4th,
# Labor Day), an early close, FB's last day, and days with real news published after the open.
DAYS = [
    date(2025, 6, 10),  # first day of the data: no history at all
    date(2025, 6, 20),  # the Friday after Juneteenth
    date(2025, 7, 3),  # early close
    date(2025, 7, 7),  # a Monday after a holiday (July 4th)
    date(2025, 7, 21),
    date(2025, 8, 4),
    date(2025, 8, 15),  # a sample item is published at 13:30 ET that day
    date(2025, 8, 26),
    date(2025, 9, 2),  # the Tuesday after Labor Day
    date(2025, 9, 3),  # a sample item is published at 09:45 ET that day
    date(2025, 9, 22),
    date(2025, 10, 1),
    date(2025, 10, 13),  # a sample item is published at 13:00 ET that day
    date(2025, 10, 16),  # FB's last bar
    date(2025, 10, 30),  # last day of the data
]
LEAK_DAY = date(2025, 10, 15)

# ISO dates and datetimes ("2025-10-15", "2025-10-15 10:00:00", "2025-10-15T13:30+00:00") and
# Alpha Vantage's compact times ("20251015T1000").
ISO_MOMENT = re.compile(
    r"(?<!\d)(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?(?!\d)"
)
COMPACT_MOMENT = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?(?!\d)")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w])")
# Prices always reach the text as floats ("260.0"); bare integers are counts, limits and echoed
# arguments ("le=260"), so only integers as large as a volume are compared.
MIN_INTEGER_CHECKED = 100_000


# --- the harness ---------------------------------------------------------------------------------


def _moment(match: re.Match[str]) -> date | datetime | None:
    """The date, or aware datetime (naive ones are exchange time), a match names; None if none."""
    year, month, day, hour, minute, second = match.groups()[:6]
    offset = match.groups()[6] if len(match.groups()) > 6 else None
    try:
        when = date(int(year), int(month), int(day))
        if hour is None:
            return when
        local = datetime(when.year, when.month, when.day, int(hour), int(minute), int(second or 0))
    except ValueError:
        return None  # not a calendar date: it reveals nothing
    if offset is None:
        return local.replace(tzinfo=EXCHANGE_TZ)
    if offset == "Z":
        return local.replace(tzinfo=UTC)
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return local.replace(tzinfo=timezone(sign * delta))


def _moments(text: str) -> Iterator[tuple[str, date | datetime]]:
    for pattern in (ISO_MOMENT, COMPACT_MOMENT):
        for match in pattern.finditer(text):
            moment = _moment(match)
            if moment is not None:
                yield match.group(0), moment


def _after(moment: date | datetime, day: date, cutoff: datetime) -> bool:
    return moment > cutoff if isinstance(moment, datetime) else moment > day


def assert_no_lookahead(
    answer_text: str,
    day: date,
    forbidden_numbers: set[float],
    forbidden_texts: Iterable[str],
) -> None:
    """Fail if `answer_text` names a moment after `day`'s open, a forbidden number or text.

    Dates after `day` and datetimes after its 09:30 ET open are leaks; so is any number of
    `forbidden_numbers` (day's high/low/close/volume, later bars) and any of `forbidden_texts`.
    """
    cutoff = session_cutoff(datetime.combine(day, time.min))
    problems = []
    later = sorted({text for text, moment in _moments(answer_text) if _after(moment, day, cutoff)})
    if later:
        problems.append(f"dates after {day} (open {cutoff:%H:%M} UTC): {later[:5]}")
    # Dates are checked above; their digits are no prices.
    bare = COMPACT_MOMENT.sub(" ", ISO_MOMENT.sub(" ", answer_text))
    numbers = set()
    for token in NUMBER.findall(bare):
        is_float = "." in token or "e" in token.lower()
        value = float(token)
        if (is_float or abs(value) >= MIN_INTEGER_CHECKED) and value in forbidden_numbers:
            numbers.add(token)
    if numbers:
        problems.append(
            f"numbers of {day}'s close/high/low/volume or of later bars: {sorted(numbers)[:5]}"
        )
    texts = [
        text
        for text in forbidden_texts
        if text in answer_text or json.dumps(text)[1:-1] in answer_text
    ]
    if texts:
        problems.append(f"texts published after the open: {texts[:3]}")
    assert not problems, "look-ahead: " + "; ".join(problems)


def assert_structured_no_lookahead(structured: Any, day: date) -> None:
    """Fail if a structured answer holds a bar of `day` with more than its open, or a later date."""
    cutoff = session_cutoff(datetime.combine(day, time.min))
    if isinstance(structured, dict):
        if _day_of(structured.get("date")) == day:
            shown = {k for k in ("high", "low", "close", "volume") if structured.get(k) is not None}
            assert not shown, f"look-ahead: {day}'s bar shows {sorted(shown)}"
        for value in structured.values():
            assert_structured_no_lookahead(value, day)
    elif isinstance(structured, list):
        # get_recent_closes answers [date, close] pairs: a pair of the day is its close.
        if len(structured) == 2 and isinstance(structured[1], float | int):
            assert _day_of(structured[0]) != day, f"look-ahead: {day}'s close {structured}"
        for value in structured:
            assert_structured_no_lookahead(value, day)
    elif isinstance(structured, str):
        for text, moment in _moments(structured):
            assert not _after(moment, day, cutoff), f"look-ahead: field {text!r} is after {day}"


def _day_of(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    match = ISO_MOMENT.match(value)
    moment = _moment(match) if match else None
    return moment.date() if isinstance(moment, datetime) else moment


def forbidden_numbers(prices: PriceBook, day: date) -> set[float]:
    """Every value of `day`'s bars but the open and of later bars, unless also knowable on `day`."""
    at = datetime.combine(day, time.min)
    visible: set[float] = set()
    hidden: set[float] = set()
    bars = (prices.bar_at(symbol, ts) for ts in prices.times() for symbol in prices.symbols)
    for bar in bars:
        if bar is None:
            continue
        values = {bar.open, bar.high, bar.low, bar.close, bar.volume} - {None}
        if bar.ts < at:
            visible |= values
        elif bar.ts == at:
            visible.add(bar.open)
            hidden |= values
        else:
            hidden |= values
    return hidden - visible


def without_echoes(text: str, args: dict[str, Any]) -> str:
    """`text` without the dates and numbers the caller itself sent (errors quote arguments).

    Stripping a date cannot hide a leak of that day's data: its numbers are still forbidden.
    """
    leaves = [str(leaf) for leaf in _leaves(args)]
    asked_days = {_day_of(found) for leaf in leaves for found, _ in _moments(leaf)}
    asked_numbers = {float(number) for leaf in leaves for number in NUMBER.findall(leaf)}

    def strip_day(match: re.Match[str]) -> str:
        return " " if _day_of(match.group(0)) in asked_days else match.group(0)

    def strip_number(match: re.Match[str]) -> str:
        return " " if float(match.group(0)) in asked_numbers else match.group(0)

    return NUMBER.sub(strip_number, ISO_MOMENT.sub(strip_day, text))


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


# --- the market, the news and the canaries -------------------------------------------------------


@dataclass
class Market:
    engine: Engine
    prices: PriceBook
    universe: list[str]
    news: list[tuple[str, datetime]]  # every stored title with its publication time (UTC)


def _eastern(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=EXCHANGE_TZ)


def canary_times(day: date) -> dict[str, datetime]:
    """When `day`'s canaries are published: one just before the open, the others at or after it."""
    return {
        "pre": _eastern(day, 9, 29, 59),
        "open": _eastern(day, 9, 30),
        "post": _eastern(day, 10, 0),
        "close": _eastern(day, 16, 5),
        "next": _eastern(next_trading_day(day), 8, 0),
        "far": _eastern(day + timedelta(days=30), 12, 0),
    }


def canary_title(day: date, kind: str) -> str:
    return f"CANARY {kind} {day:%Y%m%d}"


def canary_feed(days: Iterable[date]) -> list[dict[str, Any]]:
    """Alpha Vantage-like feed items named after the moment they are published."""
    return [
        {
            "title": canary_title(day, kind),
            "url": f"https://canary.test/{day:%Y%m%d}/{kind}",
            "time_published": f"{moment:%Y%m%dT%H%M%S}",
            "summary": f"Canary item published {moment.isoformat()} about Apple and Nvidia.",
            "source": "canary",
            "ticker_sentiment": [{"ticker": "AAPL"}, {"ticker": "NVDA"}],
        }
        for day in days
        for kind, moment in canary_times(day).items()
    ]


@pytest.fixture(scope="module")
def market(
    sqlite_template: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Market]:
    """One SQLite store for the module: the daily data, the news sample and the canaries."""
    path = tmp_path_factory.mktemp("lookahead") / "store.db"
    engine = create_store_engine(store_copy(sqlite_template, path))
    sample = json.loads((shared_data / "alphavantage_news_sample.json").read_text())["feed"]
    feed = [*sample, *canary_feed([*DAYS, LEAK_DAY])]
    with Session(engine) as session:
        import_prices(session, shared_data / "nasdaq100_daily")
        assert store_news(session, feed) == len(feed)
        session.commit()
        prices = PriceBook.load(session)
    news = [(item["title"], parse_published(item["time_published"])) for item in feed]
    # FB stopped trading before the data ends: a symbol whose last close is long ago.
    universe = [*load_universe("nasdaq100").symbols, "FB"]
    yield Market(engine, prices, universe, news)
    engine.dispose()


def make_context(market: Market, day: date, cash: float = 10_000.0) -> SessionContext:
    return SessionContext.create(
        run_id=1,
        model="lookahead",
        portfolio="lookahead",
        day=day,
        universe=market.universe,
        prices=market.prices,
        book=Portfolio(cash=cash, positions={"AAPL": 3, "MSFT": 2}),
        is_session_day=is_trading_day,
        news=NewsArchive(market.engine),
    )


def forbidden_titles(market: Market, day: date) -> list[str]:
    cutoff = session_cutoff(datetime.combine(day, time.min))
    return [title for title, published in market.news if published >= cutoff]


# --- calling the tools as the agent does ---------------------------------------------------------


@dataclass
class Answer:
    tool: str
    args: dict[str, Any]
    text: str
    structured: Any
    is_error: bool


def _parsed(text: str) -> Any:
    """A tool's JSON answer as data (answers are compact JSON text)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


async def _ask(
    server: FastMCP, calls: list[tuple[str, dict[str, Any]]], every_tool: bool
) -> list[Answer]:
    async with fastmcp.Client(server) as client:
        tools = {tool.name: tool for tool in await load_mcp_tools(client.session)}
        uncalled = set(tools) - {name for name, _ in calls}
        assert not (every_tool and uncalled), f"tools left uncalled: {sorted(uncalled)}"
        answers = []
        for number, (name, args) in enumerate(calls):
            call = {"name": name, "args": args, "id": f"c{number}", "type": "tool_call"}
            message = await tools[name].ainvoke(call)
            content = message.content
            text = (
                content
                if isinstance(content, str)
                else "\n".join(
                    b.get("text", "") if isinstance(b, dict) else str(b) for b in content
                )
            )
            structured = _parsed(text) if message.status != "error" else None
            answers.append(Answer(name, args, text, structured, message.status == "error"))
        return answers


def ask(
    server: FastMCP, calls: list[tuple[str, dict[str, Any]]], every_tool: bool = False
) -> list[Answer]:
    """Every call's answer, through fastmcp.Client in memory and the LangChain MCP tools."""
    return asyncio.run(_ask(server, calls, every_tool))


def sweep_calls(day: date) -> list[tuple[str, dict[str, Any]]]:
    """Ordinary and adversarial calls of every tool on `day`."""
    before, after = previous_trading_day(day), next_trading_day(day)
    today, tomorrow = day.isoformat(), (day + timedelta(days=1)).isoformat()
    return [
        ("get_universe_snapshot", {}),
        ("get_price_history", {"symbol": "AAPL"}),
        ("get_price_history", {"symbol": "aapl", "sessions": 260}),
        ("get_price_history", {"symbol": " qqq ", "sessions": 5}),
        ("get_price_history", {"symbol": "FB", "sessions": 260}),
        ("get_price_history", {"symbol": "MSFT", "sessions": 100_000}),
        ("get_price_history", {"symbol": "MSFT", "sessions": 0}),
        ("get_price_history", {"symbol": "MSFT", "sessions": -3}),
        ("get_price_history", {"symbol": "NVDA", "sessions": "all"}),
        ("get_price_history", {"symbol": "'; DROP TABLE pricebar; --"}),
        ("get_price", {"symbol": "AAPL", "date": today}),
        ("get_price", {"symbol": "msft", "date": today}),
        ("get_price", {"symbol": "QQQ", "date": today}),
        ("get_price", {"symbol": "aapl", "date": before.isoformat()}),
        ("get_price", {"symbol": "AAPL", "date": f"{today}T16:00:00"}),
        ("get_price", {"symbol": "AAPL", "date": f"{today} 23:59"}),
        ("get_price", {"symbol": "AAPL", "date": tomorrow}),
        ("get_price", {"symbol": "AAPL", "date": after.isoformat()}),
        ("get_price", {"symbol": "QQQ", "date": f"{after}T09:30:00"}),
        ("get_price", {"symbol": "AAPL", "date": "2025-10-30"}),
        ("get_price", {"symbol": "AAPL", "date": "2099-12-31"}),
        ("get_price", {"symbol": "AAPL", "date": "9999-12-31"}),
        ("get_price", {"symbol": "AAPL", "date": "today"}),
        ("get_price", {"symbol": "AAPL", "date": "tomorrow"}),
        ("get_price", {"symbol": "AAPL", "date": "2025-13-45"}),
        ("get_price", {"symbol": "AAPL", "date": ""}),
        ("get_price", {"symbol": "AAPL", "date": "1999-01-04"}),
        ("get_price", {"symbol": "AAPL", "date": 20251030}),
        ("get_price", {"symbol": "NOT A SYMBOL!", "date": today}),
        ("get_price", {"symbol": "", "date": today}),
        ("get_recent_closes", {}),
        ("get_recent_closes", {"sessions": 260, "symbols": ["AAPL", "QQQ", "msft", "FB"]}),
        ("get_recent_closes", {"sessions": 1, "symbols": ["qqq"]}),
        ("get_recent_closes", {"symbols": ["AAPL", "NOPE"]}),
        ("get_recent_closes", {"symbols": []}),
        ("get_recent_closes", {"sessions": 99_999}),
        ("get_recent_closes", {"symbols": "AAPL"}),
        ("search_news", {}),
        ("search_news", {"query": "canary", "limit": 50}),
        ("search_news", {"query": "CANARY post close next far", "limit": 50}),
        ("search_news", {"tickers": ["AAPL", "nvda", "COIN"], "limit": 50}),
        ("search_news", {"query": f"{after} tomorrow bitcoin", "limit": 50}),
        ("search_news", {"query": "%", "tickers": ["%"], "limit": 50}),
        ("search_news", {"limit": 1000}),
        ("get_portfolio", {}),
        ("buy", {"symbol": "AAPL", "shares": 1}),
        ("buy", {"symbol": "msft", "shares": "2"}),
        ("buy", {"symbol": "QQQ", "shares": 1}),
        ("buy", {"symbol": "FB", "shares": 1}),
        ("buy", {"symbol": "AAPL", "shares": 10**9}),
        ("buy", {"symbol": "AAPL", "shares": 100_000}),
        ("buy", {"symbol": "NVDA", "shares": 1.5}),
        ("sell", {"symbol": "AAPL", "shares": 1}),
        ("sell", {"symbol": "TSLA", "shares": 1}),
        ("sell", {"symbol": "MSFT", "shares": 10**6}),
        ("calculate", {"expression": "(10000 - 2555.5) / 189.6"}),
        ("calculate", {"expression": "__import__('os').getcwd()"}),
        ("get_portfolio", {}),
    ]


def check_answers(answers: list[Answer], day: date, numbers: set[float], texts: list[str]) -> None:
    """Run the harness on every answer; the failure names the call."""
    for answer in answers:
        try:
            text = without_echoes(answer.text, answer.args)
            assert_no_lookahead(text, day, numbers, texts)
            assert_structured_no_lookahead(answer.structured, day)
        except AssertionError as exc:
            raise AssertionError(f"{answer.tool}({answer.args}): {exc}") from None


def sweep(
    market: Market,
    day: date,
    server: FastMCP | None = None,
    extra_calls: Iterable[tuple[str, dict[str, Any]]] = (),
) -> list[Answer]:
    """Call every tool on `day` and check every answer with the harness."""
    server = server or build_server(make_context(market, day))
    answers = ask(server, [*sweep_calls(day), *extra_calls], every_tool=True)
    check_answers(
        answers, day, forbidden_numbers(market.prices, day), forbidden_titles(market, day)
    )
    return answers


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_no_tool_answer_reveals_anything_after_the_open(market: Market, day: date) -> None:
    answers = sweep(market, day)
    by_call = {(a.tool, json.dumps(a.args)): a for a in answers}

    def answer(tool: str, **args: Any) -> Answer:
        return by_call[(tool, json.dumps(args))]

    # The harness saw real data, not only errors.
    assert sum(not a.is_error for a in answers) >= 25
    today_open = market.prices.bar_on("AAPL", day).open
    assert answer("get_price", symbol="AAPL", date=str(day)).structured == {
        "symbol": "AAPL",
        "date": str(day),
        "open": today_open,
    }
    history = answer("get_price_history", symbol="aapl", sessions=260).structured
    assert history["today"] == {"date": str(day), "open": today_open}
    assert all(bar["date"] < str(day) for bar in history["bars"])
    assert len(history["bars"]) == len(
        market.prices.history("AAPL", datetime.combine(day, time.min))
    )
    asked_later = [
        args for tool, args in sweep_calls(day) if (_day_of(str(args.get("date"))) or day) > day
    ]
    assert len(asked_later) >= 5
    assert all(answer("get_price", **args).is_error for args in asked_later)
    for future in (str(day + timedelta(days=1)), "2099-12-31"):
        assert "future" in answer("get_price", symbol="AAPL", date=future).text
    # The canary published a second before the open is the newest item the agent may read.
    news = answer("search_news", query="canary", limit=50).structured
    assert news["items"][0]["title"] == canary_title(day, "pre")
    assert news["published_before"] == session_cutoff(datetime.combine(day, time.min)).isoformat(
        timespec="minutes"
    )
    bought = answer("buy", symbol="AAPL", shares=1).structured["filled"]
    assert bought["price"] == today_open


def _leak_close_of_today(monkeypatch: pytest.MonkeyPatch, market: Market) -> None:
    def bar_on(self: MarketView, symbol: str, day: date) -> PastBar | None:
        bar = market.prices.bar_on(symbol, day)
        if bar is None:
            return None
        fields = {name: getattr(bar, name) for name in ("open", "high", "low", "close", "volume")}
        return PastBar(date=day.isoformat(), **fields)

    monkeypatch.setattr(MarketView, "bar_on", bar_on)


def _leak_future_bars(monkeypatch: pytest.MonkeyPatch, market: Market) -> None:
    history = PriceBook.history

    def leaky(self: PriceBook, symbol: str, before: datetime, limit: int | None = None) -> list:
        return history(self, symbol, before + timedelta(days=7), limit)

    monkeypatch.setattr(PriceBook, "history", leaky)


def _leak_news_after_the_open(monkeypatch: pytest.MonkeyPatch, market: Market) -> None:
    late = property(lambda self: session_cutoff(self.at) + timedelta(hours=1))
    monkeypatch.setattr(SessionContext, "cutoff", late)


LEAKS: dict[str, tuple[Callable[[pytest.MonkeyPatch, Market], None], str]] = {
    "close of today via MarketView.bar_on": (_leak_close_of_today, "close/high/low/volume"),
    "future bars via PriceBook.history": (_leak_future_bars, "dates after"),
    "news after the open via the cutoff": (_leak_news_after_the_open, "texts published after"),
}


@pytest.mark.parametrize("leak", list(LEAKS))
def test_the_harness_catches_a_leaky_variant(
    market: Market, monkeypatch: pytest.MonkeyPatch, leak: str
) -> None:
    install, expected = LEAKS[leak]
    install(monkeypatch, market)
    with pytest.raises(AssertionError, match=expected):
        sweep(market, LEAK_DAY)


def test_the_harness_catches_a_leaky_tool_added_to_the_server(market: Market) -> None:
    context = make_context(market, LEAK_DAY)
    server = build_server(context)

    @server.tool(output_schema=None)
    async def peek(symbol: str) -> dict[str, Any]:
        """A tool that forgets the rule: the day's close, without a date to give it away."""
        return {"symbol": symbol, "value": market.prices.bar_on(symbol, context.day).close}

    with pytest.raises(AssertionError, match=r"peek\(.*close/high/low/volume"):
        sweep(market, LEAK_DAY, server, extra_calls=[("peek", {"symbol": "AAPL"})])
    # The same tool answering yesterday's close is no leak.
    yesterday = previous_trading_day(LEAK_DAY)
    close = market.prices.bar_on("AAPL", yesterday).close
    assert_no_lookahead(
        json.dumps({"value": close}), LEAK_DAY, forbidden_numbers(market.prices, LEAK_DAY), []
    )


def test_the_harness_reads_every_date_format() -> None:
    day, numbers = date(2025, 10, 15), {251.5}
    for text in ("2025-10-16", "2025-10-15 10:00:00", "2025-10-15T13:31+00:00", "20251015T1000"):
        with pytest.raises(AssertionError, match="dates after"):
            assert_no_lookahead(f"published {text}", day, numbers, [])
    for text in ("2025-10-15", "2025-10-15T13:30+00:00", "2025-10-15 09:29:00", "2025-02-30"):
        assert_no_lookahead(f"published {text}", day, numbers, [])
    with pytest.raises(AssertionError, match="close/high/low/volume"):
        assert_no_lookahead('{"close": 251.5}', day, numbers, [])
    with pytest.raises(AssertionError, match="texts"):
        assert_no_lookahead('{"title": "Big \\"news\\""}', day, numbers, ['Big "news"'])
    with pytest.raises(AssertionError, match="shows"):
        assert_structured_no_lookahead({"bars": [{"date": "2025-10-15", "close": 1.0}]}, day)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2025, 3, 7), datetime(2025, 3, 7, 14, 30, tzinfo=UTC)),  # EST, before DST
        (datetime(2025, 3, 10), datetime(2025, 3, 10, 13, 30, tzinfo=UTC)),  # EDT, after
        (datetime(2025, 10, 31), datetime(2025, 10, 31, 13, 30, tzinfo=UTC)),  # EDT, before
        (datetime(2025, 11, 3), datetime(2025, 11, 3, 14, 30, tzinfo=UTC)),  # EST, after
        (datetime(2025, 11, 3, 10, 0), datetime(2025, 11, 3, 15, 0, tzinfo=UTC)),  # hourly bar
        (datetime(2025, 10, 31, 15, 0), datetime(2025, 10, 31, 19, 0, tzinfo=UTC)),
    ],
    ids=str,
)
def test_session_cutoff_is_the_new_york_open(at: datetime, expected: datetime) -> None:
    assert session_cutoff(at) == expected


@pytest.mark.parametrize("day", [date(2025, 3, 7), date(2025, 3, 10), date(2025, 11, 3)], ids=str)
def test_news_cutoff_is_exact_on_both_sides_of_dst(
    session: Session, engine: Engine, day: date
) -> None:
    moments = {
        "early": _eastern(day, 8, 0),
        "last second": _eastern(day, 9, 29, 59),
        "at the open": _eastern(day, 9, 30),
        "a second later": _eastern(day, 9, 30, 1),
        "utc reading": datetime.combine(day, time(9, 31), tzinfo=UTC).astimezone(EXCHANGE_TZ),
    }
    feed = [
        {
            "title": f"boundary {name}",
            "url": f"https://boundary.test/{day}/{name.replace(' ', '-')}",
            "time_published": f"{moment:%Y%m%dT%H%M%S}",
        }
        for name, moment in moments.items()
    ]
    store_news(session, feed)
    session.commit()
    context = SessionContext.create(
        run_id=1,
        model="m",
        portfolio="p",
        day=day,
        universe=["AAPL"],
        prices=PriceBook([]),
        book=Portfolio(cash=0),
        is_session_day=is_trading_day,
        news=NewsArchive(engine),
    )
    (answer,) = ask(build_server(context, groups=("news",)), [("search_news", {"limit": 50})])
    titles = [item["title"] for item in answer.structured["items"]]
    cutoff = session_cutoff(datetime.combine(day, time.min))
    # 09:31 UTC is before the open in New York: only that and the items before 09:30 ET show.
    assert titles == ["boundary last second", "boundary early", "boundary utc reading"]
    assert answer.structured["published_before"] == cutoff.isoformat(timespec="minutes")
    check_answers([answer], day, set(), ["boundary at the open", "boundary a second later"])


@pytest.mark.parametrize("day", [date(2025, 6, 10), date(2025, 7, 7), date(2025, 10, 30)], ids=str)
def test_orders_fill_at_the_open_of_the_day_never_later(market: Market, day: date) -> None:
    symbol = next(
        s
        for s in ("AAPL", "MSFT", "NVDA", "AMZN")
        if market.prices.bar_on(s, day).open != market.prices.bar_on(s, day).close
    )
    bar = market.prices.bar_on(symbol, day)
    calls = [
        ("buy", {"symbol": symbol.lower(), "shares": 3}),
        ("sell", {"symbol": symbol, "shares": 2}),
        ("get_portfolio", {}),
    ]
    context = make_context(market, day, cash=5_000.0)
    bought, sold, portfolio = ask(build_server(context, groups=("trade",)), calls)
    assert not (bought.is_error or sold.is_error)
    assert bought.structured["filled"]["price"] == bar.open
    assert sold.structured["filled"]["price"] == bar.open
    held = context.trading.portfolio
    assert held.cash == pytest.approx(5_000.0 - bar.open * 3 + bar.open * 2)
    value = held.cash + sum(
        n * market.prices.bar_on(s, day).open for s, n in held.positions.items()
    )
    assert portfolio.structured["value_at_open"] == pytest.approx(value, abs=1e-4)
    check_answers([bought, sold, portfolio], day, forbidden_numbers(market.prices, day), [])


def test_no_order_fills_on_a_day_without_a_session(market: Market) -> None:
    server = build_server(make_context(market, date(2025, 10, 18)), groups=("trade",))
    (answer,) = ask(server, [("buy", {"symbol": "AAPL", "shares": 1})])
    assert answer.is_error and "not a trading day" in answer.text
