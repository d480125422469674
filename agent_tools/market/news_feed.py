"""News into the store: Alpha Vantage's `NEWS_SENTIMENT` over HTTP, or a saved answer of it.

Every item is checked before anything is stored, so a malformed feed stores nothing and the error
names the item. Items are stored once (by URL); the archive, not the download, applies the cutoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from agent_tools.market.alphavantage import AlphaVantageClient, error_text
from agent_tools.market.json_files import read_json
from agent_tools.news import NewsFormatError, news_item_from_feed, store_news


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
