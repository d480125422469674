"""News items in the store, so every model of a run sees the same evidence, cut off at the open.

Alpha Vantage's `time_published` carries no zone. We read it as US/Eastern: if it were UTC, that
reading only hides an item for a few hours more, while the opposite mistake would show items
published after the open.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import String, cast, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.tables import NewsItem

PUBLISHED_TZ = ZoneInfo("America/New_York")
SUMMARY_CHARS = 1000


class NewsFormatError(ValueError):
    """A news item lacks a title, URL or a readable publication time."""


class NewsHeadline(BaseModel):
    """A news item as the agent sees it."""

    title: str
    summary: str
    source: str
    published_at: str
    url: str
    tickers: list[str]


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
    tickers = [t.get("ticker", "").upper() for t in item.get("ticker_sentiment", [])]
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


class NewsArchive:
    """Searches stored news published strictly before a cutoff."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def search(
        self,
        cutoff: datetime,
        query: str = "",
        tickers: Iterable[str] = (),
        limit: int = 10,
    ) -> list[NewsHeadline]:
        """The newest items published before `cutoff` that match `query`'s words or `tickers`."""
        statement = select(NewsItem).where(NewsItem.published_at < cutoff)
        words = [w for w in query.lower().split() if len(w) > 2]
        if words:
            statement = statement.where(
                or_(
                    *(NewsItem.title.ilike(f"%{w}%") for w in words),
                    *(NewsItem.summary.ilike(f"%{w}%") for w in words),
                )
            )
        wanted = sorted({t.strip().upper() for t in tickers if t.strip()})
        if wanted:  # tickers are a JSON list; matching its text works on SQLite and Postgres
            tickers_text = cast(NewsItem.tickers, String)
            statement = statement.where(or_(*(tickers_text.like(f'%"{t}"%') for t in wanted)))
        statement = statement.order_by(NewsItem.published_at.desc()).limit(limit)
        with Session(self.engine) as session:
            rows = session.exec(statement).all()
        return [
            NewsHeadline(
                title=r.title,
                summary=r.summary,
                source=r.source,
                published_at=r.published_at.astimezone(UTC).isoformat(timespec="minutes"),
                url=r.url,
                tickers=r.tickers,
            )
            for r in rows
        ]
