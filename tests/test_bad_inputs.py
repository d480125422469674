"""Bad inputs wherever a user gives one: each refused in one clear line, the store untouched.

The CLI cases run in-process (typer's CliRunner): exit 1, exactly one `error: ...` line on stderr
naming the problem, no traceback, and the store's digest (every table's rows, in primary-key
order) unchanged. A refused `aitrader backtest` must also be quick and start no Prefect. The
notebook API raises an `AITraderError` with a one-line message instead; REST triggers of the
served deployments are refused by Prefect (4xx) or end Failed with a one-line message.
Everything runs on a SQLite and on a PostgreSQL store holding real content.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import MetaData, select
from sqlmodel import Session
from typer.testing import CliRunner

from configs.loader import load_universe
from deployments.cli import app
from market_data.synthetic import synthesize_into
from models.engine import create_store_engine, dispose_engines, upgrade
from models.errors import (
    AITraderError,
    ConfigError,
    LegacyImportError,
    PlanError,
    PriceFileError,
)
from models.prices import Bar, insert_bars
from models.tables import Holding, ModelDay, NewsItem, Run, Trade
from tests.conftest import POSTGRES_TEST_DB, postgres_database, prefect_api, wait_for

runner = CliRunner()

MEGACAPS = load_universe("megacaps").symbols
SEED = 5  # the test config's synthetic market, fully stored by `fill_store`
MARKET_START, MARKET_END = date(2025, 1, 2), date(2025, 1, 31)
REAL_DAYS = (date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8))
REAL_SYMBOLS = ("AAPL", "MSFT", "QQQ")
UNSET_KEY = "AITRADER_BAD_INPUTS_UNSET_KEY"
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"
MAX_REFUSAL_S = 2.0


# --- the store: real content, and its digest ------------------------------------------------


def fill_store(url: str) -> None:
    """Synthetic bars of the test config's market, a few real bars, a run with a completed
    model-day (a trade and a holding) and a news item."""
    engine = create_store_engine(url)
    with Session(engine) as session:
        synthesize_into(session, MEGACAPS, MARKET_START, MARKET_END, seed=SEED, benchmark="QQQ")
        insert_bars(
            session,
            [
                Bar(
                    symbol=symbol,
                    ts=datetime(day.year, day.month, day.day),
                    open=100.0 + number,
                    high=101.0 + number,
                    low=99.0 + number,
                    close=100.5 + number,
                    volume=1e6,
                    source="test",
                )
                for number, symbol in enumerate(REAL_SYMBOLS)
                for day in REAL_DAYS
            ],
        )
        run = Run(
            name="seeded",
            status="completed",
            models=["equal-weight"],
            portfolios={"equal-weight": "seeded/equal-weight"},
            start_date=REAL_DAYS[0],
            end_date=REAL_DAYS[0],
        )
        session.add(run)
        session.flush()
        model_day = ModelDay(
            run_id=run.id,
            model="equal-weight",
            portfolio="seeded/equal-weight",
            day=REAL_DAYS[0],
            status="completed",
            attempts=1,
            cash_end=9_598.0,
            value_end=10_000.0,
        )
        session.add(model_day)
        session.flush()
        session.add(
            Trade(
                model_day_id=model_day.id,
                seq=1,
                side="buy",
                symbol="AAPL",
                shares=4,
                price=100.5,
                cash_after=9_598.0,
            )
        )
        session.add(Holding(model_day_id=model_day.id, symbol="AAPL", shares=4, close=100.5))
        session.add(
            NewsItem(
                url="https://example.com/aapl",
                title="AAPL does things",
                published_at=datetime(2025, 1, 6, 12, tzinfo=UTC),
                tickers=["AAPL"],
            )
        )
        session.commit()
    engine.dispose()


def table_digests(url: str) -> dict[str, str]:
    """A hash of each table's rows in primary-key order (SQL, not file bytes: SQLite's WAL
    files change on reads)."""
    engine = create_store_engine(url)
    digests = {}
    try:
        with engine.connect() as connection:
            metadata = MetaData()
            metadata.reflect(connection)
            for name in sorted(metadata.tables):
                table = metadata.tables[name]
                order = list(table.primary_key.columns) or list(table.columns)
                digest = hashlib.sha256()
                for row in connection.execute(select(table).order_by(*order)):
                    digest.update(repr(tuple(row)).encode() + b"\n")
                digests[name] = digest.hexdigest()
    finally:
        engine.dispose()
    return digests


def store_digest(url: str) -> str:
    """One hash of every table's rows; `table_digests` says which table changed."""
    return hashlib.sha256(json.dumps(table_digests(url), sort_keys=True).encode()).hexdigest()


def assert_unchanged(url: str, before: dict[str, str]) -> None:
    after = table_digests(url)
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    assert changed == [], f"the store changed: {changed}"


def test_the_digest_sees_any_change_to_the_content(store: str) -> None:
    digest = store_digest(store)
    assert store_digest(store) == digest  # reading changes nothing
    engine = create_store_engine(store)
    with Session(engine) as session:
        assert session.scalars(select(NewsItem)).all() != []  # real content to protect
        holding = session.scalars(select(Holding)).one()
        holding.shares += 1
        session.add(holding)
        session.commit()
    engine.dispose()
    assert store_digest(store) != digest


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of a filled store (SQLite, then PostgreSQL), set as DATABASE_URL."""
    fill_store(store_url)
    monkeypatch.setenv("DATABASE_URL", store_url)
    monkeypatch.delenv("AITRADER_DEBUG", raising=False)
    monkeypatch.delenv(UNSET_KEY, raising=False)
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return store_url


@pytest.fixture(scope="module")
def warm() -> None:
    """Import what a refusal needs once, so its time measures the checks, not the imports."""
    import deployments.backtest_cli  # noqa: F401
    import flows.backtest
    import flows.preflight  # noqa: F401
    from market_data.calendar import is_trading_day

    is_trading_day(date(2025, 1, 6))


@pytest.fixture
def flow_calls(warm: None, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The backtest flow's calls: any is a refusal that came too late (Prefect would start)."""
    calls: list[dict[str, Any]] = []

    def reached(**parameters: Any) -> None:
        calls.append(parameters)
        raise AssertionError("the backtest flow was started")

    monkeypatch.setattr("flows.backtest.backtest", reached)
    return calls


# --- files the cases read --------------------------------------------------------------------

BASE_CONFIG: dict[str, Any] = {
    "name": "bad-inputs",
    "universe": "megacaps",
    "initial_cash": 10_000.0,
    "start_date": "2025-01-06",
    "end_date": "2025-01-17",
    "market": {
        "source": "synthetic",
        "seed": SEED,
        "start": MARKET_START.isoformat(),
        "end": MARKET_END.isoformat(),
    },
    "models": [
        {"name": "equal-weight", "strategy": "equal-weight"},
        {"name": "momentum", "strategy": "momentum", "params": {"top_k": 3, "lookback": 5}},
    ],
}
DROP = object()


def config_yaml(**changes: Any) -> str:
    """The test config as YAML with top-level `changes` (DROP removes a key); dates unquoted,
    as people write them."""
    data = copy.deepcopy(BASE_CONFIG)
    for key, value in changes.items():
        if value is DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return re.sub(r"'(\d{4}-\d{2}-\d{2})'", r"\1", yaml.safe_dump(data, sort_keys=False))


def one_model(**model: Any) -> str:
    return config_yaml(models=[model])


def momentum(**params: Any) -> str:
    return one_model(name="momentum", strategy="momentum", params=params)


def price_file(symbol: str = "AAPL", **bar: Any) -> str:
    """An Alpha Vantage daily answer with one bar on 2025-01-09 (`bar` overrides its fields)."""
    values = {"1. open": "101.0", "2. high": "102.0", "3. low": "100.0", "4. close": "101.5"}
    values.update({"5. volume": "1000"}, **bar)
    return json.dumps(
        {
            "Meta Data": {"2. Symbol": symbol},
            "Time Series (Daily)": {"2025-01-09": {k: v for k, v in values.items() if v}},
        }
    )


def news_file(**item: Any) -> str:
    """A NEWS_SENTIMENT answer with one item (`item` overrides its fields; None drops one)."""
    base = {
        "title": "Something happened",
        "url": "https://example.com/new",
        "time_published": "20250107T130000",
        "summary": "text",
        "ticker_sentiment": [{"ticker": "AAPL"}],
    }
    base.update(item)
    return json.dumps({"items": "1", "feed": [{k: v for k, v in base.items() if v is not None}]})


def position_line(day: str = "2024-12-02", number: int = 0, **fields: Any) -> str:
    record = {
        "date": day,
        "id": number,
        "positions": {"AAPL": 0, "CASH": 10000.0},
        "this_action": {"action": "no_trade", "symbol": "", "amount": 0},
    }
    record.update(fields)
    return json.dumps(record)


# --- the CLI cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """`aitrader ARGS` with FILES written under the test's folder ({tmp} in either is that
    folder) and ENV set (None unsets); refused naming FRAGMENT."""

    args: list[str]
    fragment: str
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)


def case(id: str, args: str | list[str], fragment: str, marks: Any = (), **more: Any) -> Any:
    arguments = args.split() if isinstance(args, str) else args
    return pytest.param(Case(arguments, fragment, **more), id=id, marks=marks)


GOOD = "--config {tmp}/good.yaml"
BACKTEST = f"backtest {GOOD}"


def config_case(id: str, text: str, fragment: str, args: str = "", **more: Any) -> Any:
    """`aitrader backtest --config bad.yaml ARGS` with TEXT as bad.yaml."""
    return case(
        f"config-{id}",
        f"backtest --config {{tmp}}/bad.yaml {args}".strip(),
        fragment,
        files={"bad.yaml": text},
        **more,
    )


BACKTEST_CASES = [
    case("start-not-a-day", f"{BACKTEST} --start 2025-02-30", "--start"),
    case("start-month-13", f"{BACKTEST} --start 2025-13-01", "--start"),
    case("end-not-a-day", f"{BACKTEST} --end yesterday", "--end"),
    case("end-before-start", f"{BACKTEST} --start 2025-01-10 --end 2025-01-06", "before start"),
    case("models-only-commas", f"{BACKTEST} --models ,", "--models"),
    case("models-blank", [*BACKTEST.split(), "-m", " "], "--models"),
    case("unknown-model", f"{BACKTEST} -m nobody", "unknown model 'nobody'"),
    case("budget-usd-negative", f"{BACKTEST} --budget-usd -1", "--budget-usd"),
    case("budget-usd-not-a-number", f"{BACKTEST} --budget-usd lots", "--budget-usd"),
    case("budget-usd-nan", f"{BACKTEST} --budget-usd nan", "--budget-usd"),
    case("budget-tokens-negative", f"{BACKTEST} --budget-tokens -1", "--budget-tokens"),
    case("budget-tokens-fraction", f"{BACKTEST} --budget-tokens 1.5", "--budget-tokens"),
    case("replay-with-value", f"{BACKTEST} --replay=yes", "--replay"),
    case("unknown-option", f"{BACKTEST} --frobnicate", "--frobnicate"),
    case("weekend-only", f"{BACKTEST} --start 2025-01-04 --end 2025-01-05", "no trading day"),
    case("before-calendar", f"{BACKTEST} --start 1999-12-01 --end 1999-12-31", "calendar"),
    case("after-calendar", f"{BACKTEST} --start 2199-01-05 --end 2199-01-09", "calendar"),
    case(
        "outside-synthetic-market",
        f"{BACKTEST} --start 2026-01-05 --end 2026-01-09",
        "synthetic market's span",
    ),
    case(
        "default-config-outside-its-market",
        "backtest --start 2025-07-07 --end 2025-07-11",
        "synthetic market's span",
    ),
    case(
        "unreachable-store",
        ["--db", UNREACHABLE, *BACKTEST.split()],
        "cannot migrate the store",
    ),
]

CONFIG_CASES = [
    case("config-missing", "backtest --config {tmp}/nowhere.yaml", "config file not found"),
    config_case("not-yaml", "name: [unclosed\n", "not valid YAML"),
    config_case("not-a-mapping", "- a\n- b\n", "must hold a mapping"),
    config_case("empty", "", "must hold a mapping"),
    config_case("unknown-key", config_yaml(colour="red"), "colour"),
    config_case("start-date-2025-02-30", config_yaml(start_date="2025-02-30"), "start_date"),
    config_case("start-date-not-a-day", config_yaml(start_date="yesterday"), "start_date"),
    config_case(
        "end-date-before-start-date",
        config_yaml(start_date="2025-01-17", end_date="2025-01-06"),
        "end_date 2025-01-06 is before start_date",
    ),
    config_case(
        "aitrader-config-bad-init-date",
        "date_range: {init_date: 2025-02-30, end_date: 2025-03-31}\n"
        "agent_config: {initial_cash: 10000}\n"
        "models: [{name: eq, signature: eq, strategy: equal-weight}]\n",
        "start_date",
    ),
    config_case(
        "duplicate-model-names",
        config_yaml(
            models=[
                {"name": "equal-weight", "strategy": "equal-weight"},
                {"name": "equal-weight", "strategy": "random"},
            ]
        ),
        "repeated: equal-weight",
    ),
    config_case("unknown-strategy", one_model(name="x", strategy="astrology"), "astrology"),
    config_case("top-k-negative", momentum(top_k=-3), "params.top_k"),
    config_case("lookback-1", momentum(lookback=1), "params.lookback"),
    config_case("unknown-param", momentum(colour="red"), "params.colour"),
    config_case("param-wrong-type", momentum(top_k="many"), "params.top_k"),
    config_case(
        "index-weight-without-index-weights",
        one_model(name="index", strategy="index-weight"),
        "universe 'megacaps' publishes no index weights",
    ),
    config_case(
        "index-weight-outside-universe",
        one_model(name="index", strategy="index-weight", params={"weights": {"BTC": 1}}),
        "outside universe 'megacaps': BTC",
    ),
    config_case(
        "index-weight-negative",
        one_model(name="index", strategy="index-weight", params={"weights": {"AAPL": -1}}),
        "params.weights",
    ),
    config_case("missing-basemodel", one_model(name="gpt"), "needs basemodel"),
    config_case(
        "api-key-in-config",
        one_model(name="gpt", basemodel="gpt-4o-mini", api_key="sk-secret"),
        "API key",
    ),
    config_case(
        "api-key-env-unset",
        one_model(name="gpt", basemodel="gpt-4o-mini", api_key_env=UNSET_KEY),
        UNSET_KEY,
    ),
    config_case(
        "api-key-env-not-a-name",
        one_model(name="gpt", basemodel="gpt-4o-mini", api_key_env="MY-KEY"),
        "api_key_env",
    ),
    config_case("model-name-with-space", one_model(name="my model", strategy="random"), "name"),
    config_case("temperature-too-high", one_model(name="g", basemodel="g", temperature=5), "temp"),
    config_case(
        "no-enabled-model",
        one_model(name="r", strategy="random", enabled=False),
        "enables no model",
    ),
    config_case("models-not-a-list", config_yaml(models="equal-weight"), "models"),
    config_case("unknown-universe", config_yaml(universe="nope"), "universe 'nope'"),
    config_case(
        "unknown-universe-unstored-market",
        config_yaml(universe="nope", market={"source": "synthetic", "seed": 99}),
        "universe 'nope'",
    ),
    config_case("initial-cash-negative", config_yaml(initial_cash=-100), "initial_cash"),
    config_case("budget-usd-zero", config_yaml(budget={"usd": 0}), "budget.usd"),
    config_case("budget-tokens-negative", config_yaml(budget={"tokens": -5}), "budget.tokens"),
    config_case("max-steps-zero", config_yaml(agent={"max_steps": 0}), "agent.max_steps"),
    config_case("market-source-unknown", config_yaml(market={"source": "bloomberg"}), "source"),
    config_case(
        "files-market-universe-not-stored",
        config_yaml(market={"source": "files"}),
        "no prices in market 'real'",
    ),
    config_case(
        "files-market-path-missing",
        config_yaml(universe=["AAPL", "MSFT"], market={"source": "files", "path": "{tmp}/gone"}),
        "market.path",
        args="--start 2025-01-06 --end 2025-01-08",
    ),
    case("health-config-missing", "health --config {tmp}/nowhere.yaml", "config file not found"),
    case("serve-config-missing", "serve --config {tmp}/nowhere.yaml", "config file not found"),
    case(
        "serve-config-invalid",
        "serve --config {tmp}/bad.yaml",
        "params.lookback",
        files={"bad.yaml": momentum(lookback=1)},
    ),
]

RESULTS_CASES = [
    case("results-unknown-run", "results --run 999", "no run with id 999"),
    case("results-run-not-a-number", "results --run abc", "--run"),
    case("results-unknown-view", "results standings", "standings"),
    case("results-detail-full-old-spelling", "results runs --detail full", "results details"),
    case("results-unknown-detail", "results days --detail some", "--detail"),
    case("results-bad-day", "results days --day 2025-02-30", "--day"),
    case("results-end-before-start", "results days --start 2025-01-10 --end 2025-01-06", "before"),
    case("results-unknown-format", "results runs --format xml", "--format"),
    case("results-bad-risk-free-rate", "results --risk-free-rate abc", "--risk-free-rate"),
    case("results-unknown-model", "results leaderboard --model nobody", "model 'nobody'"),
    case("unknown-command", "frobnicate", "frobnicate"),
]

PRICE_CASES = [
    case("import-missing-path", "data import {tmp}/nowhere", "no such file or folder"),
    case(
        "import-empty-folder",
        "data import {tmp}/prices",
        "no price files",
        files={"prices/readme.txt": "nothing here"},
    ),
    case(
        "import-not-json",
        "data import {tmp}/daily_prices_AAPL.json",
        "not valid JSON",
        files={"daily_prices_AAPL.json": "<html>rate limited</html>"},
    ),
    case(
        "import-not-a-time-series",
        "data import {tmp}/daily_prices_AAPL.json",
        "Information: slow down",
        files={"daily_prices_AAPL.json": json.dumps({"Information": "slow down"})},
    ),
    case(
        "import-price-not-a-number",
        "data import {tmp}/daily_prices_AAPL.json",
        "'4. close' is not a number",
        files={"daily_prices_AAPL.json": price_file(**{"4. close": "n/a"})},
    ),
    case(
        "import-price-negative",
        "data import {tmp}/daily_prices_AAPL.json",
        "'1. open' is out of range",
        files={"daily_prices_AAPL.json": price_file(**{"1. open": "-101.0"})},
    ),
    case(
        "import-price-ambiguous-comma",  # 1234 with a thousands separator, or 1.234 with a
        "data import {tmp}/daily_prices_AAPL.json",  # decimal comma: refused, never guessed
        "'4. close' is not a number (a misplaced or ambiguous comma): '1,234'",
        files={"daily_prices_AAPL.json": price_file(**{"4. close": "1,234"})},
    ),
    case(
        "import-price-nan",
        "data import {tmp}/daily_prices_AAPL.json",
        "out of range",
        files={"daily_prices_AAPL.json": price_file(**{"2. high": "NaN"})},
    ),
    case(
        "import-bar-without-open",
        "data import {tmp}/daily_prices_AAPL.json",
        "no '1. open'",
        files={"daily_prices_AAPL.json": price_file(**{"1. open": ""})},
    ),
    case(
        "import-bar-key-not-a-day",
        "data import {tmp}/daily_prices_AAPL.json",
        "not a 1d timestamp",
        files={
            "daily_prices_AAPL.json": price_file().replace("2025-01-09", "2025-13-45"),
        },
    ),
    case(
        "import-folder-one-bad-file",
        "data import {tmp}/prices",
        "daily_prices_MSFT.json",
        files={
            "prices/daily_prices_AAPL.json": price_file(),
            "prices/daily_prices_MSFT.json": price_file("MSFT", **{"4. close": "abc"}),
        },
    ),
    case(
        "import-merged-jsonl-bad-line",
        "data import {tmp}/merged.jsonl",
        "line 2",
        files={"merged.jsonl": price_file() + "\n{not json\n"},
    ),
    case("synth-end-before-start", "data synth --start 2025-01-10 --end 2025-01-06", "before"),
    case("synth-negative-seed", "data synth --seed -1 --start 2025-01-06 --end 2025-01-08", "seed"),
    case("synth-config-missing", "data synth --config {tmp}/nowhere.yaml", "config file not found"),
    case("coverage-unknown-format", "data coverage --format xml", "--format"),
    case("coverage-unknown-interval", "data coverage --interval 5min", "--interval '5min'"),
    case("fetch-without-key", "data fetch --symbol AAPL", "ALPHAVANTAGE_API_KEY"),
    case("news-blank-ticker", "data news --ticker ,", "--ticker"),
    case(
        "news-days-zero",
        "data news --days 0 --until 2025-01-08",
        "days must be positive",
        env={"ALPHAVANTAGE_API_KEY": "demo"},
    ),
]

NEWS_CASES = [
    case("import-news-missing-file", "data import-news {tmp}/nowhere.json", "cannot read"),
    case(
        "import-news-not-json",
        "data import-news {tmp}/news.json",
        "not valid JSON",
        files={"news.json": "feed: [oops"},
    ),
    case(
        "import-news-not-news-sentiment",
        "data import-news {tmp}/news.json",
        "not a NEWS_SENTIMENT answer",
        files={"news.json": json.dumps({"Meta Data": {}, "Time Series (Daily)": {}})},
    ),
    case(
        "import-news-error-answer",
        "data import-news {tmp}/news.json",
        "Note: call frequency",
        files={"news.json": json.dumps({"Note": "call frequency exceeded"})},
    ),
    case(
        "import-news-feed-not-a-list",
        "data import-news {tmp}/news.json",
        "a news feed is a list",
        files={"news.json": json.dumps({"feed": {"title": "x"}})},
    ),
    case(
        "import-news-item-without-url",
        "data import-news {tmp}/news.json",
        "'url'",
        files={"news.json": news_file(url=None)},
    ),
    case(
        "import-news-unreadable-time",
        "data import-news {tmp}/news.json",
        "time_published",
        files={"news.json": news_file(time_published="yesterday")},
    ),
    case(
        "import-news-tickers-not-a-list",
        "data import-news {tmp}/news.json",
        "feed item 0 (https://example.com/new): ticker_sentiment is not a list of objects",
        files={"news.json": news_file(ticker_sentiment="AAPL")},
    ),
]

LEGACY_CASES = [
    case("legacy-missing-folder", "import-aitrader {tmp}/agent_data", "no such file or folder"),
    case(
        "legacy-folder-without-logs",
        "import-aitrader {tmp}/agent_data",
        "no <model>/position/position.jsonl",
        files={"agent_data/gpt/log/notes.txt": "hello"},
    ),
    case(
        "legacy-bad-line",
        "import-aitrader {tmp}/agent_data",
        "position.jsonl:2: not a position record",
        files={"agent_data/gpt/position/position.jsonl": position_line() + "\n{oops\n"},
    ),
    case(
        "legacy-bad-date",
        "import-aitrader {tmp}/agent_data",
        "not a position record",
        files={"agent_data/gpt/position/position.jsonl": position_line("2024-13-02")},
    ),
    case(
        "legacy-empty-log",
        "import-aitrader {tmp}/agent_data",
        "holds no position records",
        files={"agent_data/gpt/position/position.jsonl": "\n"},
    ),
    case(
        "legacy-no-prices-in-store",
        "import-aitrader {tmp}/agent_data",
        "holds no 1d prices",
        files={
            "agent_data/gpt/position/position.jsonl": "\n".join(
                [position_line("2024-12-02", 0), position_line("2024-12-03", 1)]
            )
        },
    ),
]

TOOLS_CASES = [
    case("tools-weekend-day", "tools serve --day 2025-01-04", "not a trading day"),
    case(
        "tools-day-without-bar",
        "tools serve --day 2025-02-03 --universe megacaps",
        "no real daily bar on 2025-02-03",
    ),
    case(
        "tools-synthetic-day-without-bar",
        f"tools serve --day 2025-03-03 --universe megacaps --market synthetic-{SEED}",
        f"no synthetic-{SEED} daily bar",
    ),
    case("tools-unknown-universe", "tools serve --day 2025-01-06 --universe nope", "nope"),
    case("tools-universe-blank", "tools serve --day 2025-01-06 --universe ,", "--universe"),
    case("tools-bad-day", "tools serve --day 2025-02-30", "--day"),
    case("tools-day-outside-calendar", "tools serve --day 1999-01-04", "calendar"),
    case("tools-negative-cash", "tools serve --day 2025-01-06 --cash -5", "cash"),
]

DB_CASES = [
    case(
        "db-upgrade-unreachable",
        "db upgrade",
        "cannot open the store",
        env={"DATABASE_URL": UNREACHABLE},
    ),
    case("db-option-unreachable", ["--db", UNREACHABLE, "results", "runs"], "cannot migrate"),
    case("db-unknown-dialect", "--db notadb://somewhere results runs", "notadb"),
    case("db-not-a-url", ["--db", "not a url", "results"], "(DATABASE_URL or --db)"),
]

CLI_CASES = [
    *BACKTEST_CASES,
    *CONFIG_CASES,
    *RESULTS_CASES,
    *PRICE_CASES,
    *NEWS_CASES,
    *LEGACY_CASES,
    *TOOLS_CASES,
    *DB_CASES,
]


def _in(folder: Path, text: str) -> str:
    return text.replace("{tmp}", str(folder))


def write_files(folder: Path, files: dict[str, str]) -> None:
    (folder / "good.yaml").write_text(config_yaml())
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_in(folder, text))


def assert_one_error_line(result: Any, fragment: str) -> str:
    """Exit 1 through SystemExit, one `error:` line on stderr holding `fragment`, no traceback."""
    shown = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert isinstance(result.exception, SystemExit), f"{result.exception!r}\n{shown}"
    assert result.exit_code == 1, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert fragment in lines[0], shown
    return lines[0]


@pytest.mark.parametrize("bad", CLI_CASES)
def test_the_cli_refuses_a_bad_input_in_one_line(
    bad: Case,
    store: str,
    tmp_path: Path,
    flow_calls: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[Any] = []
    monkeypatch.setattr("deployments.serve.serve_deployments", lambda *a: served.append(a))
    write_files(tmp_path, bad.files)
    arguments = [_in(tmp_path, a) for a in bad.args]
    before = table_digests(store)

    started = time.monotonic()
    result = runner.invoke(app, arguments, env=bad.env)
    elapsed = time.monotonic() - started

    assert_one_error_line(result, bad.fragment)
    assert_unchanged(store, before)
    assert served == [], "the deployments were served"
    if "backtest" in arguments:
        assert flow_calls == [], "the backtest flow was started"
        assert "Starting temporary server" not in result.output
        assert elapsed < MAX_REFUSAL_S, f"refused after {elapsed:.2f} s"


def test_there_are_at_least_sixty_distinct_cli_cases() -> None:
    ids = [param.id for param in CLI_CASES]
    assert len(set(ids)) == len(ids) >= 60
    assert len({(tuple(p.values[0].args), repr(p.values[0].files)) for p in CLI_CASES}) == len(ids)


# --- the notebook API ------------------------------------------------------------------------


def api_case(id: str, error: type[AITraderError], fragment: str, **arguments: Any) -> Any:
    return pytest.param(arguments, error, fragment, id=id)


API_CASES = [
    api_case("start-not-a-day", PlanError, "start", start="2025-02-30"),
    api_case("start-wrong-type", PlanError, "start", start=20250106),
    api_case("end-before-start", PlanError, "before start", start="2025-01-10", end="2025-01-06"),
    api_case("models-empty", PlanError, "names no model", models=[]),
    api_case("models-a-string", PlanError, "models", models="equal-weight"),
    api_case("unknown-model", PlanError, "unknown model 'nobody'", models=["nobody"]),
    api_case("budget-usd-negative", PlanError, "budget_usd", budget_usd=-1),
    api_case("budget-tokens-fraction", PlanError, "budget_tokens", budget_tokens=1.5),
    api_case("replay-not-a-bool", PlanError, "replay", replay="maybe"),
    api_case("config-missing", ConfigError, "config file not found", config="{tmp}/none.yaml"),
    api_case("config-bad-param", ConfigError, "params.top_k", config="{tmp}/bad.yaml"),
    api_case(
        "outside-synthetic-market",
        PlanError,
        "synthetic market's span",
        start="2026-01-05",
        end="2026-01-09",
    ),
    api_case(
        "weekend-only",
        PlanError,
        "no trading day",
        start=date(2025, 1, 4),
        end=date(2025, 1, 5),
    ),
]


@pytest.mark.parametrize(("arguments", "error", "fragment"), API_CASES)
def test_run_backtest_refuses_bad_arguments_before_any_flow(
    arguments: dict[str, Any],
    error: type[AITraderError],
    fragment: str,
    store: str,
    tmp_path: Path,
    flow_calls: list[dict[str, Any]],
) -> None:
    from deployments.api import run_backtest

    write_files(tmp_path, {"bad.yaml": momentum(top_k=-3)})
    arguments = {"config": str(tmp_path / "good.yaml"), **arguments}
    arguments["config"] = _in(tmp_path, arguments["config"])
    before = table_digests(store)
    with pytest.raises(AITraderError) as refused:
        run_backtest(**arguments)
    message = str(refused.value)
    assert isinstance(refused.value, error), f"{type(refused.value).__name__}: {message}"
    assert "\n" not in message and fragment in message, message
    assert flow_calls == []
    assert_unchanged(store, before)


# --- REST triggers of the served deployments -------------------------------------------------

SERVED_SEED, SERVED_START, SERVED_END = 11, date(2024, 11, 1), date(2025, 2, 28)  # offline_config


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rest_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A filled store that also holds the served config's whole market (so that a trigger
    finds nothing to provide), in its own database."""

    def prepared(url: str) -> str:
        engine = create_store_engine(url)
        upgrade(engine)
        engine.dispose()
        fill_store(url)
        engine = create_store_engine(url)
        with Session(engine) as session:
            synthesize_into(session, MEGACAPS, SERVED_START, SERVED_END, seed=SERVED_SEED)
            session.commit()
        engine.dispose()
        return url

    if request.param == "sqlite":
        yield prepared(f"sqlite:///{tmp_path_factory.mktemp('rest-store') / 'store.db'}")
    else:
        with postgres_database(f"{POSTGRES_TEST_DB}_rest") as url:
            yield prepared(url)
    dispose_engines()


# Module-scoped, not session: its `aitrader serve` must stop before another test serves the
# same deployment names on the worker's Prefect server (two runners would take each other's runs).
@pytest.fixture(scope="module")
def manual_deployment(
    rest_store: str, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The id of the served manual deployment, its flow runs writing to `rest_store`."""
    from tests.test_deployment_e2e import served_deployments

    home = tmp_path_factory.mktemp("served")
    with served_deployments(prefect_server, rest_store, home), prefect_api(prefect_server) as api:
        yield api.get("/deployments/name/backtest/manual").json()["id"]


# Prefect's API checks the types of known parameters; the flow checks the rest with
# BacktestParameters (flows/backtest.py), so a refusal reads as it does from the CLI.
REST_CASES = [
    pytest.param({"start": "2025-02-30"}, "start", id="start-not-a-day"),
    pytest.param({"models": []}, "names no model", id="models-empty"),
    pytest.param({"budget_usd": "lots"}, "budget_usd", id="budget-usd-not-a-number"),
    pytest.param({"budget_tokens": 1.5}, "budget_tokens", id="budget-tokens-fraction"),
    pytest.param({"replay": "maybe"}, "replay", id="replay-not-a-bool"),
    pytest.param(
        {"frobnicate": 1},
        "frobnicate",
        id="unknown-parameter",
        marks=pytest.mark.xfail(
            strict=True,
            raises=AssertionError,
            reason="the API accepts it (the schema allows extra keys) and the flow run Crashes "
            "on the unexpected argument before the flow's own checks run",
        ),
    ),
    pytest.param({"models": ["nobody"]}, "unknown model 'nobody'", id="unknown-model"),
    pytest.param({"start": "2025-01-17", "end": "2025-01-06"}, "before start", id="end-before"),
    pytest.param({"start": "2026-01-05", "end": "2026-01-09"}, "no price data", id="no-prices"),
    pytest.param({"config": "/nowhere/config.yaml"}, "config file not found", id="no-config"),
    pytest.param(
        {"start": "2025-01-06", "end": "2025-01-07", "budget_usd": -1},
        "budget_usd",
        id="budget-usd-negative",
    ),
]
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.mark.slow
@pytest.mark.xdist_group("served-rest")  # one served deployment per store for all the cases
@pytest.mark.parametrize(("parameters", "fragment"), REST_CASES)
def test_a_rest_trigger_with_bad_parameters_is_refused(
    parameters: dict[str, Any],
    fragment: str,
    rest_store: str,
    manual_deployment: str,
    prefect_server: str,
) -> None:
    before = table_digests(rest_store)
    with prefect_api(prefect_server) as api:
        response = api.post(
            f"/deployments/{manual_deployment}/create_flow_run",
            json={"parameters": parameters, "tags": ["bad-input"]},
        )
        if 400 <= response.status_code < 500:
            assert fragment in response.text, response.text
        else:
            assert response.status_code == 201, response.text
            flow_run = response.json()["id"]

            def finished() -> bool:
                return api.get(f"/flow_runs/{flow_run}").json()["state"]["type"] in FINAL

            wait_for(finished, 180, "the refused flow run to finish")
            state = api.get(f"/flow_runs/{flow_run}").json()["state"]
            message = state["message"] or ""
            assert state["type"] == "FAILED", f"{state['type']}: {message}"
            assert "\n" not in message.strip() and fragment in message, message
            assert "Traceback" not in message
    assert_unchanged(rest_store, before)


def test_the_suite_covers_at_least_sixty_bad_inputs() -> None:
    total = len(CLI_CASES) + len(API_CASES) + len(REST_CASES)
    assert total >= 60, total


def test_a_relative_path_that_is_not_found_says_where_it_was_looked_for(tmp_path, monkeypatch):
    from configs.loader import load_config
    from market_data.aitrader_files import import_prices
    from market_data.legacy_import import import_aitrader_run

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"nope.yaml \\(looked for in {tmp_path}\\)"):
        load_config("configs/nope.yaml")
    with pytest.raises(LegacyImportError, match=f"looked for in {tmp_path}"):
        import_aitrader_run(None, Path("agent_data"))  # type: ignore[arg-type]
    with pytest.raises(PriceFileError, match=f"looked for in {tmp_path}"):
        import_prices(None, Path("prices"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^config file not found: /nowhere/c\.yaml$"):
        load_config("/nowhere/c.yaml")  # an absolute path is its own answer
