"""News into the store: Alpha Vantage's `NEWS_SENTIMENT` over HTTP, or a saved answer of it.

Every item is checked before anything is stored, so a malformed feed stores nothing and the error
names the item. Items are stored once (by URL); the archive, not the download, applies the cutoff.

Alpha Vantage's `time_published` carries no zone. We read it as US/Eastern: if it were UTC, that
reading only hides an item for a few hours more, while the opposite mistake would show items
published after the open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from market_data.alphavantage import AlphaVantageClient, error_text
from market_data.json_files import read_json
from models.errors import NewsFormatError
from models.tables import NewsItem

PUBLISHED_TZ = ZoneInfo("America/New_York")
SUMMARY_CHARS = 1000


def parse_published(text: str) -> datetime:
    """Alpha Vantage's `20251014T211802` (or without seconds) as an aware UTC datetime."""
    for layout in ("%Y%m%dT%H%M%S", "%Y%m%dT%H%M"):
        try:
            local = datetime.strptime(text, layout)
        except ValueError:
            continue
        return local.replace(tzinfo=PUBLISHED_TZ).astimezone(UTC)
    raise NewsFormatError(f"unreadable time_published {text!r}")


def news_item_from_feed(item: dict[str, Any]) -> NewsItem:
    """A `NewsItem` row from one entry of Alpha Vantage's `NEWS_SENTIMENT` feed."""
    try:
        title, url, published = item["title"], item["url"], item["time_published"]
    except KeyError as exc:
        raise NewsFormatError(f"news item without {exc.args[0]!r}") from None
    sentiments = item.get("ticker_sentiment") or []
    if not isinstance(sentiments, list) or not all(isinstance(t, dict) for t in sentiments):
        raise NewsFormatError(f"ticker_sentiment is not a list of objects (got {sentiments!r:.80})")
    tickers = [str(t.get("ticker") or "").upper() for t in sentiments]
    return NewsItem(
        url=url,
        title=title,
        summary=(item.get("summary") or "")[:SUMMARY_CHARS],
        source=item.get("source") or "",
        published_at=parse_published(published),
        tickers=[t for t in tickers if t],
        sentiment={
            "score": item.get("overall_sentiment_score"),
            "label": item.get("overall_sentiment_label"),
        },
    )


def store_news(session: Session, feed: Iterable[dict[str, Any]]) -> int:
    """Store feed items not stored yet (by URL); return how many were added. The caller commits."""
    rows = [news_item_from_feed(item).model_dump(exclude={"id"}) for item in feed]
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(NewsItem).on_conflict_do_nothing(index_elements=["url"]).returning(NewsItem.id)
    )
    return len(session.execute(statement, rows).all())


def check_feed(feed: Any) -> list[dict[str, Any]]:
    """The feed's items if each has a title, a URL and a readable time; else `NewsFormatError`."""
    if not isinstance(feed, list):
        raise NewsFormatError(f"a news feed is a list of items, got {type(feed).__name__}")
    for index, item in enumerate(feed):
        if not isinstance(item, dict):
            raise NewsFormatError(f"feed item {index} is a {type(item).__name__}, not an object")
        for key in ("title", "url", "time_published"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                raise NewsFormatError(f"feed item {index} has no {key!r} text (got {value!r})")
        try:
            news_item_from_feed(item)
        except (NewsFormatError, AttributeError, TypeError) as exc:
            raise NewsFormatError(f"feed item {index} ({item['url']}): {exc}") from None
    return feed


def fetch_news(
    session: Session,
    client: AlphaVantageClient,
    tickers: Sequence[str] | None,
    until: datetime,
    days: int = 30,
    limit: int = 50,
) -> int:
    """Download news published in the `days` before `until` (aware) and store the new items.

    Returns how many were added; the caller commits.
    """
    if until.tzinfo is None:
        raise ValueError(f"until must be timezone-aware, got {until.isoformat()}")
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    wanted = [t.strip().upper() for t in tickers or () if t.strip()]
    feed = client.news(
        tickers=wanted or None,
        time_from=until - timedelta(days=days),
        time_to=until,
        limit=limit,
    )
    return store_news(session, check_feed(feed))


def read_news_file(path: str | Path) -> list[dict[str, Any]]:
    """The checked items of a saved `NEWS_SENTIMENT` answer (an object with a `feed` list)."""
    path = Path(path)
    payload = read_json(path, NewsFormatError)
    if not isinstance(payload, dict) or "feed" not in payload:
        problem = error_text(payload) or "no 'feed' list"
        raise NewsFormatError(f"{path}: not a NEWS_SENTIMENT answer ({problem})")
    try:
        return check_feed(payload["feed"])
    except NewsFormatError as exc:
        raise NewsFormatError(f"{path}: {exc}") from None


def import_news_file(session: Session, path: str | Path) -> tuple[int, int]:
    """Store a saved `NEWS_SENTIMENT` answer (idempotent); return (items read, items added)."""
    feed = read_news_file(path)
    return len(feed), store_news(session, feed)
