"""News into the store and out of the archive: Alpha Vantage over a real local HTTP server, saved
answers, the CLI, idempotence, search by words and tickers, and clear errors on malformed items."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from agent_tools.context import session_cutoff
from agent_tools.news import NewsArchive
from deployments.cli import app
from market_data.alphavantage import AlphaVantageClient
from market_data.news_feed import (
    check_feed,
    fetch_news,
    import_news_file,
    parse_published,
    store_news,
)
from models.engine import dispose_engines
from models.errors import AlphaVantageRateLimited, NewsFormatError
from models.tables import NewsItem
from tests.alphavantage_stub import AlphaVantageStub, json_answer

API_KEY = "NEWSKEY0123456789"
OPEN_2025_10_15 = datetime(2025, 10, 15, 13, 30, tzinfo=UTC)  # 09:30 EDT


@dataclass
class FakeNews:
    """What the local Alpha Vantage answers; tests switch `mode` and read `requests`."""

    feed_file: Path
    mode: str = "ok"
    requests: list[dict[str, str]] = field(default_factory=list)

    def answer(self, query: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append(query)
        if query.get("function") != "NEWS_SENTIMENT":
            return json_answer({"Error Message": "Invalid API call."})
        if self.mode == "rate-limit":
            return json_answer(
                {"Information": "Our standard API rate limit is 25 requests per day."}
            )
        if self.mode == "malformed":
            feed = json.loads(self.feed_file.read_text())["feed"]
            del feed[3]["url"]
            return json_answer({"items": str(len(feed)), "feed": feed})
        return 200, self.feed_file.read_bytes()


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[AlphaVantageStub]:
    with AlphaVantageStub(FakeNews(shared_data / "alphavantage_news_sample.json")) as stub:
        yield stub


@pytest.fixture
def fake(server: AlphaVantageStub, shared_data: Path) -> FakeNews:
    server.fake = FakeNews(shared_data / "alphavantage_news_sample.json")
    return server.fake


@pytest.fixture
def base_url(server: AlphaVantageStub) -> str:
    return server.base_url


@pytest.fixture
def client(base_url: str) -> Iterator[AlphaVantageClient]:
    with AlphaVantageClient(API_KEY, base_url=base_url, timeout=5) as client:
        yield client


@pytest.fixture
def sample(shared_data: Path) -> list[dict[str, Any]]:
    return json.loads((shared_data / "alphavantage_news_sample.json").read_text())["feed"]


def _stored(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(NewsItem)).scalar_one()


# --- download and storage (SQLite and PostgreSQL) ---------------------------------------------


def test_fetch_asks_for_the_days_before_the_cutoff_and_stores_once(
    session: Session, engine: Engine, client: AlphaVantageClient, fake: FakeNews
) -> None:
    added = fetch_news(session, client, ["aapl", " MSFT "], OPEN_2025_10_15, days=30, limit=50)
    session.commit()
    assert added == 20 and _stored(engine) == 20
    (query,) = fake.requests
    assert query["function"] == "NEWS_SENTIMENT"
    assert query["tickers"] == "AAPL,MSFT"
    assert (query["time_from"], query["time_to"]) == ("20250915T1330", "20251015T1330")
    assert query["limit"] == "50" and query["apikey"] == API_KEY

    assert fetch_news(session, client, None, OPEN_2025_10_15) == 0
    session.commit()
    assert _stored(engine) == 20
    assert "tickers" not in fake.requests[-1]


def test_fetch_needs_an_aware_cutoff(session: Session, client: AlphaVantageClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fetch_news(session, client, ["AAPL"], datetime(2025, 10, 15, 9, 30))
    with pytest.raises(ValueError, match="positive"):
        fetch_news(session, client, ["AAPL"], OPEN_2025_10_15, days=0)


def test_a_refused_or_malformed_download_stores_nothing(
    session: Session, engine: Engine, client: AlphaVantageClient, fake: FakeNews
) -> None:
    fake.mode = "rate-limit"
    with pytest.raises(AlphaVantageRateLimited, match="rate limit"):
        fetch_news(session, client, ["AAPL"], OPEN_2025_10_15)
    fake.mode = "malformed"
    with pytest.raises(NewsFormatError, match=r"feed item 3 has no 'url'"):
        fetch_news(session, client, ["AAPL"], OPEN_2025_10_15)
    session.commit()
    assert _stored(engine) == 0


def test_storing_is_idempotent_by_url(
    session: Session, engine: Engine, sample: list[dict[str, Any]]
) -> None:
    assert store_news(session, sample[:5]) == 5
    assert store_news(session, sample) == 15
    assert store_news(session, sample) == 0
    session.commit()
    assert _stored(engine) == 20


def test_archive_searches_words_and_tickers_before_the_cutoff(
    session: Session, engine: Engine, sample: list[dict[str, Any]]
) -> None:
    store_news(session, sample)
    session.commit()
    archive = NewsArchive(engine)
    visible = [i for i in sample if parse_published(i["time_published"]) < OPEN_2025_10_15]
    assert len(visible) == 20

    latest = archive.search(OPEN_2025_10_15, limit=5)
    assert [h.title for h in latest] == [i["title"] for i in visible[:5]]  # newest first
    assert latest[0].published_at == "2025-10-15T01:18+00:00"  # 21:18 EDT the evening before
    assert archive.search(OPEN_2025_10_15, query="to an") == archive.search(OPEN_2025_10_15)

    found = archive.search(OPEN_2025_10_15, query="STABLECOIN", limit=50)
    expected = [i["url"] for i in visible if "stablecoin" in (i["title"] + i["summary"]).lower()]
    assert [h.url for h in found] == expected and len(expected) >= 3

    by_ticker = archive.search(OPEN_2025_10_15, tickers=["nvda"], limit=50)
    assert [h.url for h in by_ticker] == [
        i["url"] for i in visible if "NVDA" in {t["ticker"] for t in i["ticker_sentiment"]}
    ]
    assert len(by_ticker) == 2 and all("NVDA" in h.tickers for h in by_ticker)

    (both,) = archive.search(OPEN_2025_10_15, query="bitcoin winklevoss", tickers=["META"])
    assert "Winklevoss" in both.title

    # On 2025-10-13 the items of that day's 13:00 ET and later are not out yet.
    open_13 = session_cutoff(datetime(2025, 10, 13))
    earlier = archive.search(open_13, limit=50)
    assert len(earlier) == 18
    assert all(datetime.fromisoformat(h.published_at) < open_13 for h in earlier)


# --- malformed items ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda item: item.pop("title"), r"feed item 1 has no 'title'"),
        (lambda item: item.update(url=None), r"feed item 1 has no 'url' text \(got None\)"),
        (lambda item: item.update(time_published="yesterday"), r"unreadable time_published"),
        (lambda item: item.update(ticker_sentiment="AAPL"), r"feed item 1 \(https://"),
    ],
    ids=["no title", "url null", "bad time", "tickers not a list"],
)
def test_malformed_items_are_named_and_nothing_is_stored(
    session: Session, engine: Engine, sample: list[dict[str, Any]], change, message: str
) -> None:
    feed = json.loads(json.dumps(sample[:3]))
    change(feed[1])
    with pytest.raises(NewsFormatError, match=message):
        store_news(session, check_feed(feed))
    session.commit()
    assert _stored(engine) == 0


def test_a_feed_must_be_a_list_of_objects() -> None:
    with pytest.raises(NewsFormatError, match="list of items, got dict"):
        check_feed({"title": "x"})
    with pytest.raises(NewsFormatError, match="feed item 0 is a str"):
        check_feed(["not an item"])


# --- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):
    """Invoke `aitrader ...` on an empty SQLite store; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", API_KEY)
    monkeypatch.delenv("AITRADER_DEBUG", raising=False)
    runner = CliRunner()

    def invoke(*args: str | Path) -> tuple[int, str, str]:
        result = runner.invoke(app, [str(a) for a in args])
        return result.exit_code, result.stdout, result.stderr

    yield invoke
    dispose_engines()


@pytest.mark.parametrize(
    ("until", "time_to"),
    [("2025-10-15", "20251015T1330"), ("2025-12-01", "20251201T1430")],  # EDT, then EST
)
def test_cli_news_downloads_what_was_published_before_the_open(
    cli, fake: FakeNews, base_url: str, until: str, time_to: str
) -> None:
    args = ["data", "news", "--tickers", "AAPL,msft", "--until", until, "--base-url", base_url]
    code, out, err = cli(*args)
    assert (code, err) == (0, "")
    assert "stored 20 new news item(s)" in out
    assert fake.requests[-1]["time_to"] == time_to
    assert fake.requests[-1]["tickers"] == "AAPL,MSFT"
    code, out, _ = cli(*args)
    assert code == 0 and "stored 0 new" in out


def test_cli_news_errors_are_one_line(
    cli, fake: FakeNews, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli("data", "news", "--until", "15/10/2025", "--base-url", base_url)
    assert code == 1 and "Invalid value for '--until'" in err
    fake.mode = "rate-limit"
    code, _, err = cli("data", "news", "--until", "2025-10-15", "--base-url", base_url)
    assert code == 1 and "rate limit" in err and API_KEY not in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY")
    code, _, err = cli("data", "news", "--base-url", base_url)
    assert code == 1 and "ALPHAVANTAGE_API_KEY is not set" in err


def test_cli_import_news_is_idempotent(cli, shared_data: Path, sqlite_url: str) -> None:
    path = shared_data / "alphavantage_news_sample.json"
    code, out, _ = cli("data", "import-news", path)
    assert code == 0 and "read 20 news item(s); stored 20 new" in out
    code, out, _ = cli("data", "import-news", path)
    assert code == 0 and "read 20 news item(s); stored 0 new" in out


def test_cli_import_news_rejects_malformed_files(
    cli, tmp_path: Path, sample: list[dict[str, Any]]
) -> None:
    bad_item = [*sample[:2], {**sample[2], "time_published": "2025-10-01"}]
    files = {
        "item.json": (json.dumps({"feed": bad_item}), "feed item 2 .*unreadable time_published"),
        "text.json": ("<html>busy</html>", "not valid JSON"),
        "refused.json": (json.dumps({"Information": "rate limit"}), "Information: rate limit"),
        "missing.json": (None, "cannot read"),
    }
    for name, (text, message) in files.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        code, _, err = cli("data", "import-news", tmp_path / name)
        assert code == 1, name
        assert name in err and len(err.strip().splitlines()) == 1
        assert re.search(message, err), (message, err)
    # The file with one bad item stored none of its good ones.
    (tmp_path / "good.json").write_text(json.dumps({"feed": sample[:2]}))
    code, out, _ = cli("data", "import-news", tmp_path / "good.json")
    assert code == 0 and "stored 2 new" in out


def test_import_news_file_reads_the_shared_sample(session: Session, shared_data: Path) -> None:
    assert import_news_file(session, shared_data / "alphavantage_news_sample.json") == (20, 20)
    session.commit()
    assert import_news_file(session, shared_data / "alphavantage_news_sample.json") == (20, 0)


def test_the_cutoff_of_a_day_is_its_new_york_open() -> None:
    assert session_cutoff(datetime.combine(date(2025, 10, 15), time.min)) == OPEN_2025_10_15
