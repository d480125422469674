"""What a model-day's agent and its environment pass each other: request, conversation, result."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from langchain_core.messages import BaseMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.recording import LLMCallRecord
from configs.loader import AgentConfig, ModelConfig, default_benchmark
from configs.markets import Market, default_market
from models.claims import Claim
from models.liveness import DEFAULT_LEASE_S
from models.trials import TrialRef


class ModelDayRequest(BaseModel):
    """Everything that identifies a model-day and how to run it."""

    run_id: int
    model: ModelConfig
    day: date
    portfolio: str
    universe: list[str]
    benchmark: str = Field(default_factory=default_benchmark)
    initial_cash: float = Field(default_factory=lambda: default_market().initial_cash)
    agent: AgentConfig = AgentConfig()
    mode: Literal["live", "replay"] = "live"
    claimant: str = Field(default_factory=lambda: uuid.uuid4().hex)
    lease_seconds: float = Field(default=DEFAULT_LEASE_S, gt=0)
    trial: int = Field(default=1, ge=1, description="which trial of a repeated backtest")
    market: Market = Field(default_factory=default_market)

    @property
    def recorded_model(self) -> str:
        """The name its LLM calls are recorded and replayed under, its trial's label, so each
        trial has its own record."""
        return TrialRef(model=self.model.name, trial=self.trial).label

    @property
    def claim(self) -> Claim:
        """The store's claim on this request's portfolio-day."""
        return Claim(
            run_id=self.run_id,
            model=self.model.name,
            portfolio=self.portfolio,
            day=self.day,
            claimant=self.claimant,
            lease_seconds=self.lease_seconds,
            trial=self.trial,
        )


class ModelDayResult(BaseModel):
    """What a model-day ended as."""

    model_day_id: int
    model: str
    day: date
    status: str
    trades: int = 0
    cash_end: float | None = None
    value_end: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0
    replayed_calls: int = 0
    finished: bool = False
    already_done: bool = False
    error: str | None = None
    transient: bool = False


# A dataclass, not pydantic: it holds langchain messages and a live exception as they are.
@dataclass
class Conversation:
    """What a model said and did in one model-day's conversation, finished or not."""

    transcript: list[BaseMessage] = field(default_factory=list)
    # tool_call_id -> milliseconds of each call with that id, in order: a built-in strategy
    # reuses its ids in each hourly session of a day.
    latencies: dict[str, list[float]] = field(default_factory=dict)
    records: list[LLMCallRecord] = field(default_factory=list)
    finished: bool = False  # the model gave the finish signal
    error: Exception | None = None  # what cut the conversation short (a timeout included)
    system: str | None = None  # the system prompt; None when the transcript carries its own
    sessions: list[datetime] = field(default_factory=list)  # the hourly bars it traded in

    def extend(self, session: Conversation) -> None:
        """Append a later session of the same day (an hourly bar), its system prompt inline."""
        if session.system is not None:
            self.transcript.append(SystemMessage(session.system))
        self.transcript.extend(session.transcript)
        for tool_call_id, times in session.latencies.items():
            self.latencies.setdefault(tool_call_id, []).extend(times)
        self.sessions.extend(session.sessions)
        self.records.extend(session.records)
        self.finished = self.finished and session.finished
        self.error = session.error
