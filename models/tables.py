"""The results store: SQLModel tables for runs, model-days, books, conversations and market data.

A *run* is one trigger of a simulation (or one legacy import). A *portfolio* names one model's
book through time (`<prefix>/<model>@<config hash>`, plus `#t<n>` for trial n >= 2 of a repeated
backtest): its model-days chain, each starting from the previous completed one, and a portfolio
never has two model-days on one day, whichever run asked for them. A run's results are its
portfolios over its date range.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, Index, UniqueConstraint, func
from sqlmodel import Field, Session, SQLModel, select


def utcnow() -> datetime:
    """Aware UTC now: timestamp columns store aware datetimes and return them in UTC."""
    return datetime.now(UTC)


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"
    CRASHED = "crashed"  # stopped without finishing: its process died, or its flow run crashed


class Track(StrEnum):
    """Whether a model-day's decision was made before its session closed (its outcome unknown
    to anyone then) or after, over a day whose prices were already known."""

    LIVE = "live"
    BACKTEST = "backtest"


class ModelDayStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    # An hourly day traded live, session by session: the sessions begun so far are traded and
    # sealed (`SessionSeal`), the rest wait for their bars.
    PARTIAL = "partial"


class RunBase(SQLModel):
    """What a run is asked to do; the shape a caller creates a run from (`RunCreate`)."""

    name: str = Field(index=True)
    kind: str = Field(default="backtest", description="backtest | backtest-replay | legacy-import")
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    config_hash: str = Field(default="", index=True)
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    portfolios: dict[str, str] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description="trial label (`TrialRef.label`; runs before it: `name#<n>`) -> portfolio key",
    )
    start_date: date | None = None
    end_date: date | None = None
    market: str = Field(default="real", description="the price market its books are valued in")
    initial_cash: float = 10_000.0
    currency: str = Field(
        default="USD",
        sa_column_kwargs={"server_default": "USD"},
        description="the money its books are counted in (USD, CNY, USDT)",
    )
    benchmark: str = "QQQ"
    flow_run_id: str | None = Field(default=None, index=True)
    trials: int = Field(
        default=1,
        sa_column_kwargs={"server_default": "1"},
        description="independent trials of every model; `portfolios` holds one per trial",
    )


class Run(RunBase, table=True):
    """One backtest (one flow run) or one legacy import, with its status as it goes."""

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=RunStatus.PENDING, index=True)
    message: str | None = None
    holder: str | None = Field(default=None, description="host:pid of the process running it")
    heartbeat_at: datetime | None = Field(
        default=None, description="renewed while it runs; a lapsed one means it crashed"
    )
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RunCreate(RunBase):
    """A new run as the flow or an importer describes it (`models.runs.start_run` stores it)."""


class ModelDay(SQLModel, table=True):
    """One model's trading day: its status, cost and end-of-day cash and value."""

    # The store-level guard against simulating one portfolio's day twice.
    __table_args__ = (UniqueConstraint("portfolio", "day", name="uq_model_day_portfolio_day"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True, ondelete="CASCADE")
    model: str = Field(index=True)
    trial: int = Field(
        default=1,
        sa_column_kwargs={"server_default": "1"},
        description="which trial of a repeated backtest (1 without trials); its own portfolio",
    )
    portfolio: str = Field(index=True)
    day: date = Field(index=True)
    session: str | None = Field(default=None, description="session timestamps for hourly runs")
    status: str = Field(default=ModelDayStatus.PENDING, index=True)
    error: str | None = None
    skip_reason: str | None = None
    attempts: int = 0
    claimed_by: str | None = Field(default=None, description="who is simulating it")
    lease_until: datetime | None = Field(
        default=None, description="a running claim older than this may be taken over"
    )
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    cash_end: float | None = None
    value_end: float | None = None
    decided_at: datetime | None = Field(
        default=None, description="when the model's decision was made (wall clock, UTC)"
    )
    track: str | None = Field(
        default=None, description="live (decided before its session closed) | backtest"
    )
    seal_seq: int | None = Field(default=None, description="its place in the portfolio's chain")
    seal_prev: str | None = Field(default=None, description="the chain's previous entry's hash")
    seal: str | None = Field(default=None, description="this entry's hash (models/seals.py)")


class SessionSeal(SQLModel, table=True):
    """A chain entry sealing some of a day's sessions, written before the day is over: an hourly
    day traded live is sealed group by group, then whole when its last session is traded."""

    __table_args__ = (UniqueConstraint("portfolio", "seq", name="uq_session_seal_portfolio_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    model_day_id: int = Field(foreign_key="modelday.id", index=True, ondelete="CASCADE")
    portfolio: str = Field(index=True)
    seq: int = Field(description="its place in the portfolio's chain")
    entry: dict[str, Any] = Field(
        sa_column=Column(JSON, nullable=False), description="the entry as it was hashed"
    )
    seal: str = Field(description="the entry's hash (models/seals.py)")


class Trade(SQLModel, table=True):
    """A filled order at its session's open: whole shares, lots, or a coin fraction."""

    id: int | None = Field(default=None, primary_key=True)
    model_day_id: int = Field(foreign_key="modelday.id", index=True, ondelete="CASCADE")
    seq: int
    side: str = Field(description="buy | sell")
    symbol: str
    shares: float
    price: float
    cash_after: float
    session_at: NaiveDatetime | None = Field(
        default=None, description="the session it filled in (bar label, exchange local time)"
    )
    cost: float = Field(
        default=0.0,
        sa_column_kwargs={"server_default": "0"},
        description="commission, taxes, fees and slippage it paid, in the run's currency",
    )
    executed_at: datetime = Field(default_factory=utcnow)


class Holding(SQLModel, table=True):
    """One line of a model-day's end-of-day book (cash lives on the model-day)."""

    __table_args__ = (UniqueConstraint("model_day_id", "symbol", name="uq_holding_day_symbol"),)

    id: int | None = Field(default=None, primary_key=True)
    model_day_id: int = Field(foreign_key="modelday.id", index=True, ondelete="CASCADE")
    symbol: str
    shares: float
    close: float | None = Field(default=None, description="the close it was valued at")
    value: float = 0.0


class Message(SQLModel, table=True):
    """A chat message of a model-day's agent session."""

    id: int | None = Field(default=None, primary_key=True)
    model_day_id: int = Field(foreign_key="modelday.id", index=True, ondelete="CASCADE")
    seq: int
    role: str
    content: str = ""
    reasoning: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ToolCall(SQLModel, table=True):
    """A tool the agent called, with its arguments and answer."""

    id: int | None = Field(default=None, primary_key=True)
    model_day_id: int = Field(foreign_key="modelday.id", index=True, ondelete="CASCADE")
    seq: int
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: str = ""
    is_error: bool = False
    latency_ms: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)


class LLMCall(SQLModel, table=True):
    """One chat-completion request and its response, kept for accounting and replay."""

    id: int | None = Field(default=None, primary_key=True)
    model_day_id: int | None = Field(
        default=None, foreign_key="modelday.id", index=True, ondelete="SET NULL"
    )
    model: str = Field(index=True)
    fingerprint: str = Field(index=True)
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cost_usd: float | None = None
    created_at: datetime = Field(default_factory=utcnow)


class BarBase(SQLModel):
    """One OHLCV bar as sources deliver it; `close` is None for an open-only live bar."""

    market: str = Field(default="real")
    symbol: str = Field(index=True)
    interval: str = Field(default="1d", description="1d | 60min")
    ts: NaiveDatetime = Field(description="bar start, exchange local time (US/Eastern)")
    open: float
    high: float | None = None
    low: float | None = None
    close: float | None = None
    volume: float | None = None
    source: str = "import"


class PriceBar(BarBase, table=True):
    """A stored bar. Daily bars have `ts` at midnight; the newest live bar may hold only an open.

    Bars belong to a *market*: `real` for downloaded and imported prices, `synthetic-<seed>` for a
    seeded synthetic one, so a synthetic day never shadows a real one.
    """

    __table_args__ = (
        UniqueConstraint("market", "symbol", "interval", "ts", name="uq_price_bar"),
        Index("ix_price_bar_market_interval_day", "market", "interval", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: date


class NewsItem(SQLModel, table=True):
    """A news article, stored once so every model sees the same evidence."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(unique=True)
    title: str
    summary: str = ""
    source: str = ""
    published_at: datetime = Field(index=True, description="publication time, UTC")
    tickers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sentiment: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fetched_at: datetime = Field(default_factory=utcnow)


class StoreIdentity(SQLModel, table=True):
    """The store's own id, made once when it is created (one row): a store deleted and made
    again at the same URL is another store to every cache keyed by it."""

    id: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


# A model-day's rows kept in order: its messages, tool calls or trades.
Row = TypeVar("Row", Message, ToolCall, Trade)


def day_rows(session: Session, table: type[Row], model_day_id: int | None) -> list[Row]:
    """A model-day's messages, tool calls or trades, in their order."""
    query = select(table).where(table.model_day_id == model_day_id).order_by(table.seq)
    return list(session.exec(query).all())


def count_day_rows(session: Session, table: type[Row], model_day_id: int | None) -> int:
    """How many messages, tool calls or trades a model-day has (a resumed day numbers after)."""
    query = select(func.count()).select_from(table).where(table.model_day_id == model_day_id)
    return session.exec(query).one()
