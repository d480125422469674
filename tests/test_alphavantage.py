"""The Alpha Vantage client and sync against a real local HTTP server in Alpha Vantage's format."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner, Result

from deployments.cli import app
from market_data.alphavantage import (
    AlphaVantageClient,
    months_between,
    parse_time_series,
    sync_crypto_daily,
    sync_daily,
    sync_intraday,
)
from models.engine import create_store_engine, dispose_engines
from models.errors import AlphaVantageError, AlphaVantagePremiumOnly, AlphaVantageRateLimited
from models.prices import DAILY, HOURLY, Bar, insert_bars
from models.tables import PriceBar
from tests.alphavantage_stub import (
    AlphaVantageStub,
    crypto_daily_answer,
    intraday_answer,
    json_answer,
)
from tests.conftest import free_port

API_KEY = "SECRETKEY0123456789"
# Before the US open on the day after the shared files' last day: 2025-10-30 is the last close.
NOW = datetime(2025, 10, 31, 12, 0, tzinfo=UTC)
LAST_DAY = date(2025, 10, 30)

NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
    "and 500 calls per day."
)
RATE_LIMIT_INFORMATION = (
    f"We have detected your API key as {API_KEY} and our standard API rate limit is 25 requests "
    "per day. Please subscribe to any of the premium plans to remove all daily rate limits."
)
PREMIUM_INFORMATION = (
    "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium feature "
    "for the TIME_SERIES_DAILY endpoint."
)
ERROR_MESSAGE = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
)


@dataclass
class FakeAlphaVantage:
    """What the local server answers; tests switch `mode` and read `requests`."""

    daily_dir: Path
    news_file: Path
    crypto_dir: Path | None = None
    hourly_file: Path | None = None
    crypto_old_style: bool = False
    mode: str = "ok"
    rate_limit_after: int | None = None
    premium_full: bool = False
    slow_seconds: float = 1.0
    requests: list[dict[str, str]] = field(default_factory=list)

    def answer(self, query: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append(query)
        mode = self.mode
        if self.rate_limit_after is not None and len(self.requests) > self.rate_limit_after:
            mode = "note"
        if mode == "note":
            return json_answer({"Note": NOTE})
        if mode == "information":
            return json_answer({"Information": RATE_LIMIT_INFORMATION})
        if mode == "http500":
            return 500, f"Internal Server Error (apikey={query.get('apikey')})".encode()
        if mode == "invalid-json":
            return 200, b"<html>Service temporarily unavailable</html>"
        if mode == "slow":
            time.sleep(self.slow_seconds)
        if query.get("function") == "NEWS_SENTIMENT":
            return 200, self.news_file.read_bytes()
        if self.premium_full and query.get("outputsize") == "full":
            return json_answer({"Information": PREMIUM_INFORMATION})
        if query.get("function") == "DIGITAL_CURRENCY_DAILY":
            return self._crypto(query)
        if query.get("function") == "TIME_SERIES_INTRADAY":
            return self._intraday(query)
        path = self.daily_dir / f"daily_prices_{query.get('symbol', '')}.json"
        if query.get("function") != "TIME_SERIES_DAILY" or not path.is_file():
            return json_answer({"Error Message": ERROR_MESSAGE})
        return 200, path.read_bytes()

    def _crypto(self, query: dict[str, str]) -> tuple[int, bytes]:
        assert self.crypto_dir is not None
        path = self.crypto_dir / f"daily_prices_{query.get('symbol', '')}.json"
        if query.get("market") != "USD" or not path.is_file():
            return json_answer({"Error Message": ERROR_MESSAGE})
        return json_answer(crypto_daily_answer(path, old_style=self.crypto_old_style))

    def _intraday(self, query: dict[str, str]) -> tuple[int, bytes]:
        assert self.hourly_file is not None
        symbol, month = query.get("symbol", ""), query.get("month")
        answer = intraday_answer(self.hourly_file, symbol, month, query.get("outputsize", ""))
        if query.get("interval") != "60min" or answer is None:
            return json_answer({"Error Message": ERROR_MESSAGE})
        return json_answer(answer)

    def symbols_requested(self) -> list[str]:
        return [q["symbol"] for q in self.requests if "symbol" in q]


def _new_fake(shared_data: Path) -> FakeAlphaVantage:
    return FakeAlphaVantage(
        shared_data / "nasdaq100_daily",
        shared_data / "alphavantage_news_sample.json",
        crypto_dir=shared_data / "crypto_daily",
        hourly_file=shared_data / "nasdaq100_hourly" / "merged.jsonl",
    )


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[AlphaVantageStub]:
    with AlphaVantageStub(_new_fake(shared_data)) as stub:
        yield stub


@pytest.fixture
def fake(server: AlphaVantageStub, shared_data: Path) -> FakeAlphaVantage:
    server.fake = _new_fake(shared_data)
    return server.fake


@pytest.fixture
def client(server: AlphaVantageStub, fake: FakeAlphaVantage) -> Iterator[AlphaVantageClient]:
    with AlphaVantageClient(API_KEY, base_url=server.base_url, timeout=0.5) as client:
        yield client


def _file_series(shared_data: Path, symbol: str) -> dict[str, dict[str, str]]:
    path = shared_data / "nasdaq100_daily" / f"daily_prices_{symbol}.json"
    return json.loads(path.read_text())["Time Series (Daily)"]


def _stored(engine: Engine, symbol: str) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(PriceBar).where(PriceBar.symbol == symbol)
        return session.execute(query).scalar_one()


# --- the client ------------------------------------------------------------------------------


def test_daily_bars_match_the_file(
    client: AlphaVantageClient, fake: FakeAlphaVantage, shared_data: Path
) -> None:
    bars = client.daily("aapl")
    series = _file_series(shared_data, "AAPL")
    assert len(bars) == len(series) == 100
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)
    for bar in bars:
        values = series[bar.ts.date().isoformat()]
        assert (bar.symbol, bar.interval, bar.source) == ("AAPL", DAILY, "alphavantage")
        assert bar.ts == datetime.combine(bar.ts.date(), datetime.min.time())
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(
            float(values[k]) for k in ("1. open", "2. high", "3. low", "4. close", "5. volume")
        )
    assert fake.requests == [
        {
            "function": "TIME_SERIES_DAILY",
            "symbol": "AAPL",
            "outputsize": "compact",
            "apikey": API_KEY,
        }
    ]
    client.daily("MSFT", outputsize="full")
    assert fake.requests[-1]["outputsize"] == "full"


def test_news_returns_the_raw_feed(client: AlphaVantageClient, fake: FakeAlphaVantage) -> None:
    eastern = timezone(timedelta(hours=-4))
    items = client.news(
        tickers=["AAPL", "MSFT"],
        time_from=datetime(2025, 10, 1, 9, 30),
        time_to=datetime(2025, 10, 14, 20, 0, tzinfo=eastern),
        limit=20,
    )
    assert len(items) == 20
    assert {"title", "url", "time_published", "summary"} <= set(items[0])
    query = fake.requests[-1]
    assert query["function"] == "NEWS_SENTIMENT"
    assert query["tickers"] == "AAPL,MSFT"
    assert query["time_from"] == "20251001T0930"
    assert query["time_to"] == "20251015T0000"  # aware times are sent in UTC
    assert query["limit"] == "20"


@pytest.mark.parametrize(
    ("mode", "symbol", "error", "text"),
    [
        ("note", "AAPL", AlphaVantageRateLimited, "Note: Thank you for using Alpha Vantage"),
        ("information", "AAPL", AlphaVantageRateLimited, "rate limit is 25 requests per day"),
        ("ok", "NOPE", AlphaVantageError, "Error Message: Invalid API call"),
        ("http500", "AAPL", AlphaVantageError, "HTTP 500 to function=TIME_SERIES_DAILY"),
        ("slow", "AAPL", AlphaVantageError, "did not answer function=TIME_SERIES_DAILY"),
        ("invalid-json", "AAPL", AlphaVantageError, "not JSON: '<html>Service"),
    ],
)
def test_errors_are_clear_and_never_hold_the_key(
    client: AlphaVantageClient,
    fake: FakeAlphaVantage,
    mode: str,
    symbol: str,
    error: type[Exception],
    text: str,
) -> None:
    fake.mode = mode
    with pytest.raises(error) as caught:
        client.daily(symbol)
    message = str(caught.value)
    assert text in message
    assert "\n" not in message
    assert API_KEY not in message
    assert API_KEY not in "".join(traceback.format_exception(caught.value))
    if mode not in ("note", "information"):
        assert not isinstance(caught.value, AlphaVantageRateLimited)


def test_premium_answers_are_told_apart(client: AlphaVantageClient, fake: FakeAlphaVantage) -> None:
    fake.premium_full = True
    with pytest.raises(AlphaVantagePremiumOnly, match="premium feature"):
        client.daily("AAPL", outputsize="full")
    assert len(client.daily("AAPL", outputsize="compact")) == 100


def test_unreachable_server(fake: FakeAlphaVantage) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/query"  # bound, then closed: nothing listens
    with (
        AlphaVantageClient(API_KEY, base_url=base_url, timeout=0.5) as client,
        pytest.raises(AlphaVantageError, match="cannot reach Alpha Vantage") as caught,
    ):
        client.daily("AAPL")
    assert API_KEY not in "".join(traceback.format_exception(caught.value))


def test_the_key_never_reaches_the_logs(
    client: AlphaVantageClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.daily("AAPL")
    assert "apikey=***" in caplog.text  # httpx logged the request, redacted
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(client)


def test_from_env(
    monkeypatch: pytest.MonkeyPatch, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY", raising=False)
    with pytest.raises(AlphaVantageError, match="ALPHAVANTAGE_API_KEY is not set"):
        AlphaVantageClient.from_env()
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", API_KEY)
    with AlphaVantageClient.from_env(base_url=client.base_url) as from_env:
        assert len(from_env.daily("QQQ")) == 100
    assert fake.requests[-1]["apikey"] == API_KEY


def test_parse_time_series_rejects_garbage() -> None:
    with pytest.raises(ValueError, match=r"'2\. high' is not a number"):
        parse_time_series(
            {"Time Series (Daily)": {"2025-10-01": {"1. open": "1", "2. high": "x"}}}, "A"
        )
    with pytest.raises(ValueError, match="unsupported time series"):
        parse_time_series({"Time Series (5min)": {}}, "A")


# --- sync ------------------------------------------------------------------------------------


def test_sync_downloads_only_missing_symbols(
    session: Session, client: AlphaVantageClient, fake: FakeAlphaVantage, shared_data: Path
) -> None:
    # MSFT is stored up to date, AAPL up to 2025-10-20, NVDA not at all.
    msft = client.daily("MSFT")
    aapl = [b for b in client.daily("AAPL") if b.ts.date() <= date(2025, 10, 20)]
    insert_bars(session, [*msft, *aapl])
    session.commit()
    fake.requests.clear()

    report = sync_daily(session, client, ["msft", "AAPL", "NVDA"], until=LAST_DAY, now=NOW)
    assert report.target_day == LAST_DAY
    assert report.skipped == ["MSFT"]
    assert fake.symbols_requested() == ["AAPL", "NVDA"]
    assert report.outputsize == {"AAPL": "compact", "NVDA": "full"}
    assert report.inserted == {"AAPL": 8, "NVDA": 100}  # 2025-10-21 .. 2025-10-30
    assert report.stopped_reason is None and not report.failed

    fake.requests.clear()
    again = sync_daily(session, client, ["MSFT", "AAPL", "NVDA"], until=LAST_DAY, now=NOW)
    assert fake.requests == []
    assert again.skipped == ["MSFT", "AAPL", "NVDA"]
    assert again.total_inserted == 0


def test_sync_stops_at_a_rate_limit_and_keeps_earlier_symbols(
    session: Session, engine: Engine, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    fake.rate_limit_after = 1
    report = sync_daily(session, client, ["AAPL", "MSFT", "NVDA"], until=LAST_DAY, now=NOW)
    assert report.inserted == {"AAPL": 100}
    assert report.not_attempted == ["MSFT", "NVDA"]
    assert report.stopped_reason is not None
    assert "call frequency is 5 calls per minute" in report.stopped_reason
    assert "symbol=MSFT" in report.stopped_reason
    assert API_KEY not in report.model_dump_json()
    assert fake.symbols_requested() == ["AAPL", "MSFT"]
    session.rollback()  # whatever the caller does next, AAPL was committed
    assert (_stored(engine, "AAPL"), _stored(engine, "MSFT")) == (100, 0)


def test_sync_goes_on_after_a_bad_symbol(
    session: Session, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    report = sync_daily(session, client, ["NOPE", "AAPL"], until=LAST_DAY, now=NOW)
    assert list(report.failed) == ["NOPE"]
    assert "Invalid API call" in report.failed["NOPE"]
    assert report.inserted == {"AAPL": 100}


def test_sync_falls_back_to_compact_on_a_free_key(
    session: Session, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    fake.premium_full = True
    report = sync_daily(session, client, ["AAPL"], until=LAST_DAY, now=NOW)
    assert [q["outputsize"] for q in fake.requests] == ["full", "compact"]
    assert report.outputsize == {"AAPL": "compact"}
    assert report.inserted == {"AAPL": 100}


def test_sync_stores_nothing_after_until_or_before_the_close(
    session: Session, engine: Engine, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    # `until` on a Saturday means the Thursday before (Friday 2025-07-04 is a holiday).
    report = sync_daily(session, client, ["AAPL"], until=date(2025, 7, 5), now=NOW)
    assert report.target_day == date(2025, 7, 3)
    last = session.execute(select(func.max(PriceBar.day))).scalar_one()
    assert last == date(2025, 7, 3)
    assert report.inserted == {"AAPL": 17}  # 2025-06-10 .. 2025-07-03

    # At 15:00 US/Eastern on 2025-10-30 that day's bar is not final yet.
    during = datetime(2025, 10, 30, 19, 0, tzinfo=UTC)
    later = sync_daily(session, client, ["AAPL"], until=LAST_DAY, now=during)
    assert later.target_day == date(2025, 10, 29)
    assert later.outputsize == {"AAPL": "compact"}
    assert session.execute(select(func.max(PriceBar.day))).scalar_one() == date(2025, 10, 29)


# --- crypto and intraday -------------------------------------------------------------------------

# Before the US open on the day after the merged hourly file's last day (2025-11-10).
NOW_HOURLY = datetime(2025, 11, 11, 12, 0, tzinfo=UTC)
LAST_HOURLY_DAY = date(2025, 11, 10)
FIELDS = ("1. open", "2. high", "3. low", "4. close", "5. volume")
MERGED_FIELDS = ("1. buy price", "2. high", "3. low", "4. sell price", "5. volume")


def _coin_series(shared_data: Path, coin: str) -> dict[str, dict[str, str]]:
    path = shared_data / "crypto_daily" / f"daily_prices_{coin}.json"
    return json.loads(path.read_text())["Time Series (Daily)"]


def _complete_hours(shared_data: Path, symbol: str, first: str = "") -> dict[str, dict[str, str]]:
    """The complete 60-minute bars of `symbol` in the merged file, from `first` on."""
    for line in (shared_data / "nasdaq100_hourly" / "merged.jsonl").read_text().splitlines():
        payload = json.loads(line)
        if payload["Meta Data"]["2. Symbol"] == symbol:
            series = payload["Time Series (60min)"]
            return {k: v for k, v in sorted(series.items()) if "4. sell price" in v and k >= first}
    raise AssertionError(f"{symbol} is not in the merged file")


def _stored_times(engine: Engine, symbol: str, interval: str) -> list[datetime]:
    query = select(PriceBar.ts).where(PriceBar.symbol == symbol, PriceBar.interval == interval)
    with Session(engine) as session:
        return list(session.execute(query.order_by(PriceBar.ts)).scalars())


@pytest.mark.parametrize("old_style", [False, True], ids=["fields-2024", "fields-USD"])
def test_crypto_daily_bars_match_the_coin_file(
    client: AlphaVantageClient, fake: FakeAlphaVantage, shared_data: Path, old_style: bool
) -> None:
    fake.crypto_old_style = old_style  # "1a. open (USD)" ... before Alpha Vantage's 2024 change
    bars = client.crypto_daily("link")
    series = _coin_series(shared_data, "LINK")
    assert len(bars) == len(series) == 397
    assert [b.ts for b in bars] == sorted(datetime.fromisoformat(day) for day in series)
    for bar in bars:
        assert (bar.symbol, bar.interval) == ("LINK", DAILY)
        values = series[bar.ts.date().isoformat()]
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(
            float(values[k]) for k in FIELDS
        )
    assert date(2025, 11, 8) in {b.ts.date() for b in bars}  # a Saturday
    assert fake.requests == [
        {"function": "DIGITAL_CURRENCY_DAILY", "symbol": "LINK", "market": "USD", "apikey": API_KEY}
    ]


def test_intraday_bars_of_one_month(
    client: AlphaVantageClient, fake: FakeAlphaVantage, shared_data: Path
) -> None:
    bars = client.intraday("aapl", month="2025-10")
    october = _complete_hours(shared_data, "AAPL", "2025-10")
    october = {k: v for k, v in october.items() if k < "2025-11"}
    assert len(bars) == len(october) == 23 * 6
    for bar in bars:
        assert (bar.symbol, bar.interval) == ("AAPL", HOURLY)
        values = october[bar.ts.strftime("%Y-%m-%d %H:%M:%S")]
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(
            float(values[k]) for k in MERGED_FIELDS
        )
    assert {b.ts.hour for b in bars} == set(range(10, 16))
    assert fake.requests == [
        {
            "function": "TIME_SERIES_INTRADAY",
            "symbol": "AAPL",
            "interval": "60min",
            "extended_hours": "false",
            "outputsize": "full",
            "month": "2025-10",
            "apikey": API_KEY,
        }
    ]
    with pytest.raises(AlphaVantageError, match="month '2025-13' is not YYYY-MM"):
        client.intraday("AAPL", month="2025-13")
    assert len(fake.requests) == 1


def test_months_between() -> None:
    assert months_between(date(2024, 11, 30), date(2025, 2, 1)) == [
        "2024-11",
        "2024-12",
        "2025-01",
        "2025-02",
    ]
    assert months_between(date(2025, 3, 5), date(2025, 3, 6)) == ["2025-03"]


def test_sync_crypto_daily_stores_weekends_but_not_the_running_day(
    session: Session, engine: Engine, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    coins = ["LINK", "SUI"]
    sunday_noon = datetime(2025, 11, 9, 12, 0, tzinfo=UTC)
    report = sync_crypto_daily(session, client, coins, until=date(2025, 12, 31), now=sunday_noon)
    assert report.target_day == date(2025, 11, 8)  # Saturday, which ended at midnight UTC
    assert report.outputsize == {"LINK": "full", "SUI": "full"}
    link = _stored_times(engine, "LINK", DAILY)
    assert link[-1] == datetime(2025, 11, 8)
    assert link[-7:] == [datetime(2025, 11, day) for day in range(2, 9)]  # every day of a week
    assert report.inserted == {"LINK": len(link), "SUI": len(_stored_times(engine, "SUI", DAILY))}

    # Half an hour into Monday (UTC) Sunday has ended: it is the only new bar.
    monday = datetime(2025, 11, 10, 0, 30, tzinfo=UTC)
    later = sync_crypto_daily(session, client, coins, until=date(2025, 12, 31), now=monday)
    assert (later.target_day, later.inserted) == (date(2025, 11, 9), {"LINK": 1, "SUI": 1})
    requests = len(fake.requests)
    again = sync_crypto_daily(session, client, coins, until=date(2025, 12, 31), now=monday)
    assert again.skipped == coins and len(fake.requests) == requests


def test_sync_intraday_month_by_month(
    session: Session,
    engine: Engine,
    client: AlphaVantageClient,
    fake: FakeAlphaVantage,
    shared_data: Path,
) -> None:
    report = sync_intraday(session, client, ["AAPL"], until=LAST_HOURLY_DAY, now=NOW_HOURLY)
    assert report.target_day == LAST_HOURLY_DAY
    # Nothing stored and no start: 30 days back from the target, Alpha Vantage's own window.
    assert [q["month"] for q in fake.requests] == ["2025-10", "2025-11"]
    assert report.outputsize == {"AAPL": "2025-10,2025-11"}
    expected = _complete_hours(shared_data, "AAPL", "2025-10-11")
    stored = _stored_times(engine, "AAPL", HOURLY)
    assert [ts.strftime("%Y-%m-%d %H:%M:%S") for ts in stored] == list(expected)
    assert report.inserted == {"AAPL": len(expected)}

    # MSFT is stored up to 2025-10-20, NVDA not at all but wanted from a start day.
    msft = client.intraday("MSFT", month="2025-10")
    insert_bars(session, [b for b in msft if b.ts.date() <= date(2025, 10, 20)])
    session.commit()
    fake.requests.clear()
    again = sync_intraday(
        session,
        client,
        ["AAPL", "MSFT", "NVDA"],
        until=LAST_HOURLY_DAY,
        now=NOW_HOURLY,
        start=date(2025, 11, 3),
    )
    assert again.skipped == ["AAPL"]
    assert [(q["symbol"], q["month"]) for q in fake.requests] == [
        ("MSFT", "2025-10"),
        ("MSFT", "2025-11"),
        ("NVDA", "2025-11"),
    ]
    assert again.inserted == {
        "MSFT": len(_complete_hours(shared_data, "MSFT", "2025-10-21")),
        "NVDA": len(_complete_hours(shared_data, "NVDA", "2025-11-03")),
    }


def test_sync_intraday_keeps_the_months_stored_before_a_rate_limit(
    session: Session, client: AlphaVantageClient, fake: FakeAlphaVantage, shared_data: Path
) -> None:
    fake.rate_limit_after = 1
    start = date(2025, 10, 1)
    symbols = ["AAPL", "MSFT"]
    report = sync_intraday(session, client, symbols, LAST_HOURLY_DAY, NOW_HOURLY, start=start)
    assert report.inserted == {"AAPL": 23 * 6} and report.outputsize == {"AAPL": "2025-10"}
    assert report.not_attempted == symbols and "call frequency" in (report.stopped_reason or "")

    fake.rate_limit_after = None
    fake.requests.clear()
    later = sync_intraday(session, client, symbols, LAST_HOURLY_DAY, NOW_HOURLY, start=start)
    # AAPL goes on from its last stored day, 2025-10-31.
    assert [(q["symbol"], q["month"]) for q in fake.requests] == [
        ("AAPL", "2025-10"),
        ("AAPL", "2025-11"),
        ("MSFT", "2025-10"),
        ("MSFT", "2025-11"),
    ]
    assert later.inserted == {
        "AAPL": len(_complete_hours(shared_data, "AAPL", "2025-11")),
        "MSFT": len(_complete_hours(shared_data, "MSFT")),
    }


def test_sync_intraday_falls_back_to_compact_on_a_free_key(
    session: Session, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    fake.premium_full = True
    report = sync_intraday(session, client, ["AAPL"], until=LAST_HOURLY_DAY, now=NOW_HOURLY)
    asked = [(q["outputsize"], q.get("month")) for q in fake.requests]
    assert asked == [("full", "2025-10"), ("compact", None)]
    assert report.outputsize == {"AAPL": "compact"}
    assert report.inserted == {"AAPL": 100}  # the latest 100 bars, all after 2025-10-11


def test_sync_daily_completes_an_open_only_bar(
    session: Session, engine: Engine, client: AlphaVantageClient, fake: FakeAlphaVantage
) -> None:
    # As a merged.jsonl import leaves it: the newest bar holds only its open.
    bars = client.daily("AAPL")
    newest = bars[-1]
    insert_bars(session, [*bars[:-1], Bar(symbol="AAPL", ts=newest.ts, open=newest.open)])
    session.commit()
    report = sync_daily(session, client, ["AAPL"], until=LAST_DAY, now=NOW)
    assert (report.outputsize, report.inserted) == ({"AAPL": "compact"}, {"AAPL": 1})
    with Session(engine) as fresh:
        stored = fresh.execute(select(PriceBar).where(PriceBar.day == LAST_DAY)).scalar_one()
    assert (stored.open, stored.close, stored.volume) == (newest.open, newest.close, newest.volume)


def test_cli_fetch_kinds(
    server: AlphaVantageStub,
    fake: FakeAlphaVantage,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", API_KEY)
    endpoint = ["--base-url", server.base_url]

    def fetch(*arguments: str) -> Result:
        return CliRunner().invoke(app, ["data", "fetch", *arguments, *endpoint])

    result = fetch("--kind", "crypto", "--symbol", "link", "--until", "2025-11-08")
    assert result.exit_code == 0, result.output
    assert "crypto: fetched 1 symbol(s) up to 2025-11-08, inserted 348 bars" in result.stdout
    result = fetch("--kind", "intraday", "--symbol", "AAPL", "--until", "2025-11-07")
    assert result.exit_code == 0, result.output
    engine = create_store_engine(sqlite_url)
    assert _stored_times(engine, "LINK", DAILY)[-1] == datetime(2025, 11, 8)
    hours = _stored_times(engine, "AAPL", HOURLY)
    assert (hours[0], hours[-1]) == (datetime(2025, 10, 8, 10), datetime(2025, 11, 7, 15))

    # Without --kind the config's market decides; crypto leaves out CD5, which is computed.
    config = tmp_path / "crypto.yaml"
    config.write_text("market: {name: crypto, source: files}\n")
    fake.crypto_dir = tmp_path  # no coin files here: each coin is asked for and fails
    fake.requests.clear()
    result = fetch("--config", str(config), "--until", "2025-11-08")
    assert result.exit_code == 0, result.output
    assert "failed BTC: Alpha Vantage refused function=DIGITAL_CURRENCY_DAILY" in result.stdout
    asked = {q["symbol"] for q in fake.requests if q["function"] == "DIGITAL_CURRENCY_DAILY"}
    assert asked == {"BTC", "ETH", "XRP", "SOL", "ADA", "SUI", "AVAX", "LTC", "DOT"}  # LINK: held

    config.write_text("market: {name: sse50, source: files}\n")
    result = fetch("--config", str(config))
    assert result.exit_code == 1 and "not this project's source of A-share" in result.stderr
    result = fetch("--kind", "stocks", "--start", "2025-10-01")
    assert result.exit_code == 1 and "--start is for --kind intraday only" in result.stderr
    engine.dispose()
    dispose_engines()
