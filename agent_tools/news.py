"""The news an agent may read: stored items published strictly before the session's open, so
every model of a run sees the same evidence (`market_data.news_feed` stores them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import String, cast, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.tables import NewsItem


class NewsHeadline(BaseModel):
    """A news item as the agent sees it."""

    title: str
    summary: str
    source: str
    published_at: str
    url: str
    tickers: list[str]


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
