"""The live daily run: the daily deployment's flow refreshes prices from a local Alpha Vantage,
stores of a session not yet ended only its open, catches up, marks a day decided before its close
live, survives a rate limit, and values a live day again once its close arrives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from configs.loader import load_config
from deployments.health import run_checks
from deployments.serve import deployments
from flows.backtest import backtest
from market_data.refresh import as_of, session_in_progress
from models.prices import Bar
from models.seals import verify_chains
from models.tables import Message, ModelDay, PriceBar, SessionSeal, Trade
from tests.alphavantage_stub import AlphaVantageStub, json_answer

pytestmark = pytest.mark.usefixtures("prefect_harness")

SYMBOLS = ["AAPL", "MSFT", "NVDA"]
COINS = ["BTC", "ETH", "SOL"]
D, D1, D2 = date(2025, 10, 27), date(2025, 10, 28), date(2025, 10, 29)
RATE_LIMIT_NOTE = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per "
    "minute and 500 calls per day."
}


class LiveAlphaVantage:
    """Alpha Vantage as a day goes by: complete bars through `through`, and the session
    `forming` half-formed (its open, and a high, low and close so far); a `Note` once `limit`
    calls are spent. Stocks answer TIME_SERIES_DAILY; coins DIGITAL_CURRENCY_DAILY."""

    def __init__(self, shared: Path, symbols: list[str], through: date = D) -> None:
        self.series = {
            symbol: json.loads((shared / f"daily_prices_{symbol}.json").read_text())[
                "Time Series (Daily)"
            ]
            for symbol in symbols
        }
        self.through = through
        self.forming: date | None = None
        self.limit: int | None = None
        self.calls = 0

    def answer(self, query: dict[str, str]) -> tuple[int, bytes]:
        self.calls += 1
        if self.limit is not None and self.calls > self.limit:
            return json_answer(RATE_LIMIT_NOTE)
        if query["function"] == "NEWS_SENTIMENT":
            return json_answer({"items": "0", "feed": []})
        symbol = query["symbol"]
        bars: dict[str, Any] = {
            day: values
            for day, values in self.series[symbol].items()
            if day <= self.through.isoformat()
        }
        if self.forming is not None:
            real = self.series[symbol][self.forming.isoformat()]
            opened = float(real["1. open"])
            bars[self.forming.isoformat()] = {
                "1. open": real["1. open"],
                "2. high": f"{opened * 1.02:.4f}",
                "3. low": f"{opened * 0.99:.4f}",
                "4. close": f"{opened * 1.01:.4f}",  # so far: not the day's close
                "5. volume": "1000",
            }
        if query["function"] == "DIGITAL_CURRENCY_DAILY":
            meta = {"2. Digital Currency Code": symbol, "4. Market Code": "USD"}
            return json_answer({"Meta Data": meta, "Time Series (Digital Currency Daily)": bars})
        meta = {"1. Information": "Daily Prices", "2. Symbol": symbol}
        return json_answer({"Meta Data": meta, "Time Series (Daily)": bars})


EQUAL_WEIGHT = {"name": "equal-weight", "strategy": "equal-weight"}
RANDOM = {"name": "random", "strategy": "random", "params": {"seed": 4}}


def live_config(
    path: Path, market: str, universe: list[str], benchmark: str, start: date, models: list[dict]
) -> str:
    """A config trading `market` from Alpha Vantage (the local one the test points at)."""
    path.write_text(
        yaml.safe_dump(
            {
                "name": path.stem,
                "universe": universe,
                "benchmark": benchmark,
                "start_date": start.isoformat(),
                "market": {"name": market, "source": "alphavantage"},
                "agent": {"max_steps": 8, "retries": 0, "day_timeout_s": 30},
                "models": models,
            }
        )
    )
    return str(path)


@contextmanager
def local_alphavantage(fake, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`fake` served as Alpha Vantage, and the client pointed at it with a key."""
    with AlphaVantageStub(fake) as server:
        monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "av-test-key")
        monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", server.base_url)
        yield


@pytest.fixture
def live(shared_data: Path, flow_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = LiveAlphaVantage(shared_data / "nasdaq100_daily", [*SYMBOLS, "QQQ"])
    config = live_config(
        tmp_path / "live.yaml", "nasdaq100", SYMBOLS, "QQQ", D, [EQUAL_WEIGHT, RANDOM]
    )
    with local_alphavantage(fake, monkeypatch):
        yield fake, config, flow_store


def daily_run(config: str, now: datetime, monkeypatch: pytest.MonkeyPatch):
    """The daily deployment's flow run, with its parameters, at wall-clock time `now`."""
    (daily, _) = deployments(config)
    monkeypatch.setenv("AITRADER_NOW", now.isoformat())
    return asyncio.run(backtest(**daily.parameters, return_state=True))


def bars_of(store, day: date) -> dict[str, PriceBar]:
    with Session(store) as session:
        return {b.symbol: b for b in session.exec(select(PriceBar).where(PriceBar.day == day))}


def days_of(store) -> dict[tuple[str, date], ModelDay]:
    with Session(store) as session:
        return {(d.model, d.day): d for d in session.exec(select(ModelDay))}


def test_a_live_day_is_fetched_at_its_open_traded_live_and_valued_at_its_close(
    live, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, config, store = live
    (daily, _) = deployments(config)
    assert daily.parameters == {"config": config, "refresh": True}
    assert daily.schedules[0].schedule.cron == "35 9 * * 1-5"  # just after the open

    # 09:35 New York on D+1; the source has D: D is fetched and simulated, as a backtest.
    state = daily_run(config, datetime(2025, 10, 28, 13, 35, tzinfo=UTC), monkeypatch)
    assert state.is_completed() and state.name == "Completed", state.message
    assert "refresh of nasdaq100 (alphavantage) up to 2025-10-28" in state.message
    assert {day for (_, day) in days_of(store)} == {D}
    assert all(b.close is not None for b in bars_of(store, D).values())

    # D+1 whole and D+2 half-formed, but a rate limit after two symbols: what was complete is
    # kept, the rest named stale, and no day is simulated without its whole universe.
    fake.through, fake.forming, fake.limit, fake.calls = D1, D2, 2, 0
    at_d2_open = datetime(2025, 10, 29, 13, 35, tzinfo=UTC)
    state = daily_run(config, at_d2_open, monkeypatch)
    assert state.is_completed() and state.name == "UpToDate", state.message
    assert "stale: NVDA, QQQ" in state.message and "call frequency" in state.message
    assert "days after 2025-10-27 wait for prices of 1 symbol(s): NVDA" in state.message
    assert set(bars_of(store, D1)) == {"AAPL", "MSFT"}
    assert {day for (_, day) in days_of(store)} == {D}

    # The next run completes the rest, then simulates D+1 and D+2; D+2 at its open, live.
    fake.limit = None
    state = daily_run(config, at_d2_open, monkeypatch)
    assert state.is_completed() and state.name == "Completed", state.message
    assert "2 day(s), 4 model-day(s): 4 simulated" in state.message
    assert "open only of 2025-10-29 (not ended)" in state.message
    forming = bars_of(store, D2)
    assert set(forming) == {*SYMBOLS, "QQQ"}
    assert all(b.open and b.high is b.low is b.close is b.volume is None for b in forming.values())
    days = days_of(store)
    assert len(days) == 6  # three days, two models: none twice
    assert {days[m, D2].track for m in ("equal-weight", "random")} == {"live"}
    assert {days[m, d].track for m in ("equal-weight", "random") for d in (D, D1)} == {"backtest"}
    provisional = days["equal-weight", D2].value_end
    fresh = {c.check: c for c in run_checks(load_config(config))}["fresh nasdaq100"]
    assert fresh.detail == (
        "complete through 2025-10-28; open only: 2025-10-29 (a session not ended); "
        "last closed session 2025-10-28, up to date"
    )

    # After the close a later refresh completes D+2 with the real bars and values its books
    # again; nothing is simulated twice, and every sealed chain still holds.
    fake.through, fake.forming = D2, None
    state = daily_run(config, datetime(2025, 10, 29, 21, 0, tzinfo=UTC), monkeypatch)
    assert state.name == "UpToDate", state.message
    assert "book(s) valued again" in state.message
    closed = bars_of(store, D2)
    assert closed["AAPL"].close == float(fake.series["AAPL"]["2025-10-29"]["4. close"])
    after = days_of(store)
    assert len(after) == 6 and after["equal-weight", D2].value_end != provisional
    with Session(store) as session:
        assert verify_chains(session) == []


def test_crypto_trades_live_over_a_weekend(
    shared_data: Path, flow_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    friday, saturday, sunday = date(2025, 11, 7), date(2025, 11, 8), date(2025, 11, 9)
    fake = LiveAlphaVantage(shared_data / "crypto_daily", COINS, friday)
    fake.forming = saturday
    config = live_config(
        tmp_path / "live-crypto.yaml",
        "crypto",
        ["BTC", "ETH", "SOL"],
        "CD5",
        friday,
        [EQUAL_WEIGHT],
    )
    with local_alphavantage(fake, monkeypatch):
        (daily, _) = deployments(config)
        assert daily.schedules[0].schedule.cron == "5 0 * * *"  # every day, weekends too
        # Saturday 00:05 UTC: Friday has ended, Saturday has just opened.
        state = daily_run(config, datetime(2025, 11, 8, 0, 5, tzinfo=UTC), monkeypatch)
        assert state.name == "Completed", state.message
        assert "open only of 2025-11-08" in state.message
        fake.through, fake.forming = saturday, sunday
        state = daily_run(config, datetime(2025, 11, 9, 0, 5, tzinfo=UTC), monkeypatch)
        assert state.name == "Completed", state.message
        assert "1 day(s), 1 model-day(s): 1 simulated" in state.message
    days = days_of(flow_store)
    tracks = {day: days["equal-weight", day].track for day in (friday, saturday, sunday)}
    assert tracks == {friday: "backtest", saturday: "live", sunday: "live"}
    assert bars_of(flow_store, saturday)["BTC"].close == float(
        fake.series["BTC"]["2025-11-08"]["4. close"]
    )
    assert bars_of(flow_store, sunday)["BTC"].close is None
    with Session(flow_store) as session:
        assert verify_chains(session) == []


def test_of_a_session_not_ended_only_the_open_is_stored() -> None:
    from configs.markets import load_market

    market = load_market("nasdaq100")
    bar = Bar(symbol="AAPL", ts=datetime(2025, 10, 29), open=1.0, high=2.0, low=0.5, close=1.5)
    before_open = datetime(2025, 10, 29, 13, 0, tzinfo=UTC)
    during = datetime(2025, 10, 29, 15, 0, tzinfo=UTC)
    after_close = datetime(2025, 10, 29, 20, 0, tzinfo=UTC)
    assert as_of(market, before_open)([bar]) == []  # a source running ahead
    (open_only,) = as_of(market, during)([bar])
    assert (open_only.open, open_only.high, open_only.close, open_only.volume) == (
        1.0,
        None,
        None,
        None,
    )
    assert as_of(market, after_close)([bar]) == [bar]
    assert session_in_progress(market, during) == date(2025, 10, 29)
    assert session_in_progress(market, before_open) == date(2025, 10, 28)
    # Crypto: a UTC day, every day (a Sunday too); an hourly bar is its hour.
    crypto = load_market("crypto")
    sunday = datetime(2025, 11, 2, 12, 0, tzinfo=UTC)
    assert session_in_progress(crypto, sunday) == date(2025, 11, 2)
    coin = Bar(symbol="BTC", ts=datetime(2025, 11, 2), open=1.0, close=2.0)
    assert as_of(crypto, sunday)([coin])[0].close is None
    assert as_of(crypto, datetime(2025, 11, 3, 0, 0, tzinfo=UTC))([coin])[0].close == 2.0
    hourly = load_market("nasdaq100-hourly")
    ten = Bar(symbol="AAPL", ts=datetime(2025, 10, 29, 10), open=1.0, close=2.0, interval="60min")
    assert as_of(hourly, datetime(2025, 10, 29, 14, 30, tzinfo=UTC))([ten])[0].close is None
    assert as_of(hourly, datetime(2025, 10, 29, 15, 0, tzinfo=UTC))([ten])[0].close == 2.0


class LiveIntraday:
    """TIME_SERIES_INTRADAY as a day goes by: the 60-minute bars that have ended by `now` (New
    York time), the one running then half-formed, none after it."""

    def __init__(self, merged: Path) -> None:
        self.bars: dict[str, dict[str, dict[str, str]]] = {}
        for line in merged.read_text().splitlines():
            series = json.loads(line)
            symbol = series["Meta Data"]["2. Symbol"]
            if symbol in ("AAPL", "MSFT"):
                self.bars[symbol] = series["Time Series (60min)"]
        self.bars["QQQ"] = self.bars["MSFT"]  # the shared hourly file has no QQQ
        self.now = datetime(2025, 10, 8, 12, 30)

    def answer(self, query: dict[str, str]) -> tuple[int, bytes]:
        if query["function"] == "NEWS_SENTIMENT":
            return json_answer({"items": "0", "feed": []})
        series = {}
        for ts, values in self.bars[query["symbol"]].items():
            start = datetime.fromisoformat(ts)
            if "4. sell price" not in values or start > self.now:
                continue
            if query.get("month") and not ts.startswith(query["month"]):
                continue
            bar = {"1. open": values["1. buy price"], "2. high": values["2. high"]}
            bar |= {"3. low": values["3. low"], "4. close": values["4. sell price"]}
            if start + timedelta(hours=1) > self.now:  # running: its close is the price so far
                bar["4. close"] = bar["1. open"]
            series[ts] = bar | {"5. volume": values["5. volume"]}
        meta = {"2. Symbol": query["symbol"], "4. Interval": "60min"}
        return json_answer({"Meta Data": meta, "Time Series (60min)": series})


def test_an_hourly_day_is_traded_hour_by_hour_each_group_sealed_as_it_goes(
    shared_data: Path, flow_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = date(2025, 10, 8)
    fake = LiveIntraday(shared_data / "nasdaq100_hourly" / "merged.jsonl")
    config = live_config(
        tmp_path / "live-hourly.yaml",
        "nasdaq100-hourly",
        ["AAPL", "MSFT"],
        "QQQ",
        day,
        [RANDOM],
    )
    (daily, _) = deployments(config)
    assert daily.schedules[0].schedule.cron == "5 10-15 * * 1-5"  # just after each bar opens
    with local_alphavantage(fake, monkeypatch):
        # 12:30 New York: the 10:00 and 11:00 bars have ended, the 12:00 bar is running. The
        # three sessions begun are traded (12:00 at its open); the day stays partial.
        state = daily_run(config, datetime(2025, 10, 8, 16, 30, tzinfo=UTC), monkeypatch)
        assert state.name == "Completed" and "1 partial" in state.message, state.message
        with Session(flow_store) as session:
            stored = session.exec(select(PriceBar).where(PriceBar.symbol == "AAPL")).all()
        by_hour = {bar.ts.hour: bar for bar in stored if bar.day == day}
        assert sorted(by_hour) == [10, 11, 12]
        assert by_hour[11].close is not None and by_hour[12].close is None
        assert by_hour[12].open == float(fake.bars["AAPL"]["2025-10-08 12:00:00"]["1. buy price"])
        (first,) = days_of(flow_store).values()
        assert first.status == "partial" and first.session == "10:00, 11:00, 12:00"
        assert first.track == "backtest"  # 10:00 and 11:00 were decided after their bars ended

        # 12:40: no bar has begun since; the day is handed back untouched.
        state = daily_run(config, datetime(2025, 10, 8, 16, 40, tzinfo=UTC), monkeypatch)
        assert "1 partial" in state.message, state.message
        assert len(groups_of(flow_store)) == 1

        # 13:05: the 13:00 bar has opened; it alone is traded, live, from the book left at 12:00.
        fake.now = datetime(2025, 10, 8, 13, 5)
        state = daily_run(config, datetime(2025, 10, 8, 17, 5, tzinfo=UTC), monkeypatch)
        assert "1 partial" in state.message, state.message
        groups = groups_of(flow_store)
        assert [(g["session"], g["track"]) for g in groups] == [
            ("10:00, 11:00, 12:00", "backtest"),
            ("10:00, 11:00, 12:00, 13:00", "live"),
        ]
        assert groups[1]["prev"] == groups_of(flow_store, seal=True)[0]

        # After the close: the last two sessions complete the day, sealed whole after its groups.
        fake.now = datetime(2025, 10, 8, 16, 15)
        state = daily_run(config, datetime(2025, 10, 8, 20, 15, tzinfo=UTC), monkeypatch)
        assert state.name == "Completed", state.message
    (only,) = days_of(flow_store).values()
    assert only.status == "completed" and only.track == "backtest"
    assert only.session == "10:00, 11:00, 12:00, 13:00, 14:00, 15:00"
    assert only.seal_seq == 3 and only.seal_prev == groups_of(flow_store, seal=True)[1]
    with Session(flow_store) as session:
        assert verify_chains(session) == []
        seqs = session.exec(select(Message.seq).where(Message.model_day_id == only.id)).all()
        assert len(seqs) == len(set(seqs))  # each run's messages after the last's

    # Traded in three runs, the day's fills are those of one run over the whole day.
    whole = live_config(
        tmp_path / "whole-hourly.yaml",
        "nasdaq100-hourly",
        ["AAPL", "MSFT"],
        "QQQ",
        day,
        [RANDOM],
    )
    monkeypatch.setenv("AITRADER_NOW", datetime(2025, 10, 9, 12, 0, tzinfo=UTC).isoformat())
    state = asyncio.run(backtest(start=day, end=day, config=whole, return_state=True))
    assert state.name == "Completed", state.message
    with Session(flow_store) as session:
        hours, one_go = session.exec(select(ModelDay).order_by(ModelDay.id)).all()
    assert one_go.session == only.session and one_go.portfolio != only.portfolio
    assert fills_of(flow_store, hours) == fills_of(flow_store, one_go)
    assert len(fills_of(flow_store, hours)) > 2

    # A trade edited after its group was sealed is named with the group's sessions.
    with Session(flow_store) as session:
        trade = session.exec(
            select(Trade).where(Trade.model_day_id == only.id, Trade.seq == 1)
        ).one()
        trade.shares += 1
        session.add(trade)
        session.commit()
        named = {(p.day, p.problem.split(":")[0]) for p in verify_chains(session)}
    holding_it = {f"2025-10-08 sessions {g['session']}" for g in groups if g["through"]["fills"]}
    assert holding_it and named == {("2025-10-08", "edited")} | {(g, "edited") for g in holding_it}


def groups_of(store, seal: bool = False) -> list:
    """The session groups' sealed entries in chain order (or their seals)."""
    with Session(store) as session:
        rows = session.exec(select(SessionSeal).order_by(SessionSeal.seq)).all()
    return [row.seal if seal else row.entry for row in rows]


def fills_of(store, model_day: ModelDay) -> list[tuple]:
    with Session(store) as session:
        trades = session.exec(
            select(Trade).where(Trade.model_day_id == model_day.id).order_by(Trade.seq)
        ).all()
    return [(t.seq, t.session_at, t.side, t.symbol, t.shares, t.price) for t in trades]
