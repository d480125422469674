"""Books in the store: a portfolio's starting state, end-of-day value, and atomic day records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time

from pydantic import BaseModel
from sqlalchemy import exists
from sqlmodel import Session, select

from models.book import Fill, Portfolio, Quantity
from models.prices import PriceBook
from models.seals import seal_day, seal_sessions
from models.tables import (
    Holding,
    ModelDay,
    ModelDayStatus,
    SessionSeal,
    Track,
    Trade,
    count_day_rows,
    utcnow,
)


class HoldingValue(BaseModel):
    symbol: str
    shares: Quantity
    close: float | None
    value: float


class Valuation(BaseModel):
    """A book valued at a day's close (the last known close where a symbol has none that day)."""

    cash: float
    holdings: list[HoldingValue]
    total: float
    missing: list[str] = []


def value_portfolio(portfolio: Portfolio, prices: PriceBook, day: date) -> Valuation:
    """Value `portfolio` at the close of `day`; a symbol never priced counts 0 and is listed."""
    end_of_day = datetime.combine(day, time.max)
    holdings: list[HoldingValue] = []
    missing: list[str] = []
    for symbol, shares in sorted(portfolio.positions.items()):
        quote = prices.close_asof(symbol, end_of_day)
        close = quote[0] if quote else None
        if close is None:
            missing.append(symbol)
        holdings.append(
            HoldingValue(symbol=symbol, shares=shares, close=close, value=shares * (close or 0.0))
        )
    total = portfolio.cash + sum(h.value for h in holdings)
    return Valuation(cash=portfolio.cash, holdings=holdings, total=total, missing=missing)


def latest_completed_day(session: Session, portfolio: str, before: date) -> ModelDay | None:
    """The portfolio's last completed model-day strictly before `before`."""
    query = (
        select(ModelDay)
        .where(ModelDay.portfolio == portfolio)
        .where(ModelDay.status == ModelDayStatus.COMPLETED)
        .where(ModelDay.day < before)
        .order_by(ModelDay.day.desc())
        .limit(1)
    )
    return session.exec(query).first()


def day_in_progress(session: Session, portfolio: str, day: date) -> ModelDay | None:
    """The portfolio's `day` when some of its sessions are traded and sealed but not all (an
    hourly day traded live): the next run resumes it after them."""
    query = select(ModelDay).where(
        ModelDay.portfolio == portfolio,
        ModelDay.day == day,
        ModelDay.status != ModelDayStatus.COMPLETED,
        exists().where(SessionSeal.model_day_id == ModelDay.id),
    )
    return session.exec(query).first()


def session_label(at: datetime) -> str:
    """How a model-day's `session` names one of its sessions: its bar's label, `HH:MM`."""
    return f"{at:%H:%M}"


def sessions_traded(model_day: ModelDay | None) -> list[str]:
    """The session labels (`session_label`) a day in progress has traded so far."""
    return model_day.session.split(", ") if model_day and model_day.session else []


class DayStart(BaseModel):
    """Where a portfolio's day starts: its book, and the sessions of it already traded (an
    hourly day in progress resumes after them, from the book they left)."""

    book: Portfolio
    traded: list[str] = []


def day_start(session: Session, portfolio: str, day: date, initial_cash: float) -> DayStart:
    """The book a portfolio starts (or resumes) `day` with: a day in progress's book after the
    sessions traded so far, else its last completed day's close, else initial cash."""
    in_progress = day_in_progress(session, portfolio, day)
    previous = in_progress or latest_completed_day(session, portfolio, day)
    if previous is None:
        return DayStart(book=Portfolio(cash=initial_cash))
    holdings = session.exec(select(Holding).where(Holding.model_day_id == previous.id)).all()
    book = Portfolio(
        cash=previous.cash_end if previous.cash_end is not None else initial_cash,
        positions={h.symbol: h.shares for h in holdings if h.shares},
    )
    return DayStart(book=book, traded=sessions_traded(in_progress))


def record_completed_day(
    session: Session,
    model_day: ModelDay,
    fills: Sequence[Fill],
    book: Portfolio,
    prices: PriceBook,
    decided_at: datetime | None = None,
    track: Track = Track.BACKTEST,
) -> Valuation:
    """Add a model-day's trades and end-of-day book, mark it completed and seal it into its
    portfolio's chain (models/seals.py) with when it was decided; nothing is committed.

    The caller commits once, so the trades, the snapshot and the seal land together or not at all.
    """
    try:
        valuation = _record_book(session, model_day, fills, book, prices)
        model_day.status = ModelDayStatus.COMPLETED
        model_day.finished_at = utcnow()
        if model_day.started_at is not None:
            model_day.duration_s = (model_day.finished_at - model_day.started_at).total_seconds()
        model_day.decided_at = decided_at
        # A day traded session group by session group is live only if every group was.
        earlier = session.exec(
            select(SessionSeal.entry).where(SessionSeal.model_day_id == model_day.id)
        ).all()
        live = all(entry["track"] == Track.LIVE for entry in earlier)
        model_day.track = track if live else Track.BACKTEST
        session.add(model_day)
        seal_day(session, model_day)
    except BaseException:
        session.rollback()
        raise
    return valuation


def record_sessions(
    session: Session,
    model_day: ModelDay,
    fills: Sequence[Fill],
    book: Portfolio,
    prices: PriceBook,
    decided_at: datetime,
    track: Track,
) -> Valuation:
    """Add the trades of some of a day's sessions and the book after them, leave the day
    `partial` and seal these sessions into the portfolio's chain; nothing is committed."""
    try:
        valuation = _record_book(session, model_day, fills, book, prices)
        model_day.status = ModelDayStatus.PARTIAL
        model_day.decided_at = decided_at
        model_day.track = track
        session.add(model_day)
        seal_sessions(session, model_day)
    except BaseException:
        session.rollback()
        raise
    return valuation


def _record_book(
    session: Session, model_day: ModelDay, fills: Sequence[Fill], book: Portfolio, prices: PriceBook
) -> Valuation:
    """Append `fills` after the day's earlier trades and put `book` in place of its book."""
    valuation = value_portfolio(book, prices, model_day.day)
    earlier = count_day_rows(session, Trade, model_day.id)
    for fill in fills:
        session.add(
            Trade(model_day_id=model_day.id, **fill.model_dump() | {"seq": fill.seq + earlier})
        )
    for line in session.exec(select(Holding).where(Holding.model_day_id == model_day.id)):
        session.delete(line)  # the book after the sessions traded before: replaced
    session.flush()
    for line in valuation.holdings:
        session.add(Holding(model_day_id=model_day.id, **line.model_dump()))
    model_day.cash_end = book.cash
    model_day.value_end = valuation.total
    return valuation


def revalue_days(
    session: Session, prices: PriceBook, run_ids: list[int], first: date, last: date
) -> int:
    """Value again the completed books of runs `run_ids` (priced by `prices`, the bars they
    trade on) from `first` to `last` (a live day was valued before its close was known); count
    those whose value changed. The caller commits. Only values move: the books themselves (and
    their seals) stay as decided."""
    query = (
        select(ModelDay)
        .where(ModelDay.run_id.in_(run_ids), ModelDay.status == ModelDayStatus.COMPLETED)
        .where(ModelDay.day >= first, ModelDay.day <= last)
    )
    changed = 0
    for model_day in session.exec(query).all():
        lines = session.exec(select(Holding).where(Holding.model_day_id == model_day.id)).all()
        book = Portfolio(
            cash=model_day.cash_end or 0.0, positions={h.symbol: h.shares for h in lines}
        )
        valuation = value_portfolio(book, prices, model_day.day)
        closes = {h.symbol: h.close for h in valuation.holdings}
        if valuation.total == model_day.value_end and all(
            line.close == closes[line.symbol] for line in lines
        ):
            continue
        for line in lines:
            line.close = closes[line.symbol]
            session.add(line)
        model_day.value_end = valuation.total
        session.add(model_day)
        changed += 1
    return changed
