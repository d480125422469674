"""One model-day: a chat model manages its book for one trading day through the MCP tools.

Everything the session did is persisted. Its trades and end-of-day book are written in one
transaction when the day completes; a day that fails leaves no trades behind, keeps its messages,
tool calls and LLM calls for diagnosis, and the next day starts from the last completed book.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Literal

import httpx
import openai
from fastmcp import Client
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_mcp_adapters.tools import load_mcp_tools
from langgraph.errors import GraphRecursionError
from pydantic import BaseModel, Field
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agent_tools.context import SessionContext
from agent_tools.news import NewsArchive
from agent_tools.servers import build_server
from agents.budget import RunBudget
from agents.chat_models import build_chat_model
from agents.prompt import FINISH_SIGNAL, first_message, system_prompt
from agents.recording import LLMCallRecord, RecordingChatModel, ReplayBook
from agents.transcript import message_rows, tool_call_rows
from configs.loader import AgentConfig, ModelConfig
from market_data.calendar import is_trading_day
from models.errors import BudgetExhausted, PortfolioDayTaken
from models.ledger import record_completed_day, starting_book
from models.prices import PriceBook
from models.tables import LLMCall, ModelDay, ModelDayStatus, utcnow

CONTINUE_PROMPT = (
    f"Continue. Act through the tools; when you are done, answer with {FINISH_SIGNAL}."
)
# Errors worth another attempt: the endpoint was busy, slow or unreachable.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
    httpx.TransportError,
    TimeoutError,
)


CLAIM_POLL_S = 0.25  # how often a day held by another simulator is looked at again


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


class ModelDayRequest(BaseModel):
    """Everything that identifies a model-day and how to run it."""

    run_id: int
    model: ModelConfig
    day: date
    portfolio: str
    universe: list[str]
    benchmark: str = "QQQ"
    initial_cash: float = 10_000.0
    agent: AgentConfig = AgentConfig()
    mode: Literal["live", "replay"] = "live"
    claimant: str = Field(default_factory=lambda: uuid.uuid4().hex)
    lease_seconds: float = Field(default=900.0, gt=0)


def claim_model_day(session: Session, request: ModelDayRequest) -> ModelDay:
    """The portfolio's model-day for the request's day, claimed for this request; commits.

    A completed day comes back as it is. A new, failed or skipped day, or one whose earlier claim
    has lapsed (its simulator died), is claimed atomically for `request.claimant`. A day another
    simulator holds a live claim on raises `PortfolioDayTaken`.
    """
    now = utcnow()
    for _ in range(3):  # a concurrent insert of the same day is re-read, then claimed or refused
        model_day = session.exec(
            select(ModelDay).where(
                ModelDay.portfolio == request.portfolio, ModelDay.day == request.day
            )
        ).first()
        if model_day is not None and model_day.status == ModelDayStatus.COMPLETED:
            return model_day
        claim = {
            "run_id": request.run_id,
            "status": ModelDayStatus.RUNNING,
            "claimed_by": request.claimant,
            "lease_until": now + timedelta(seconds=request.lease_seconds),
            "started_at": now,
            "error": None,
            "skip_reason": None,
        }
        if model_day is None:
            session.add(
                ModelDay(
                    model=request.model.name,
                    portfolio=request.portfolio,
                    day=request.day,
                    attempts=1,
                    **claim,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
        else:
            claimable = or_(
                ModelDay.status.in_(
                    [ModelDayStatus.PENDING, ModelDayStatus.FAILED, ModelDayStatus.SKIPPED]
                ),
                ModelDay.lease_until < now,
                ModelDay.claimed_by == request.claimant,
            )
            updated = session.execute(
                update(ModelDay)
                .where(ModelDay.id == model_day.id, claimable)
                .values(attempts=ModelDay.attempts + 1, **claim)
            )
            session.commit()
            if updated.rowcount != 1:
                raise PortfolioDayTaken(
                    f"{request.portfolio} on {request.day} is being simulated by "
                    f"{model_day.claimed_by} (claim until {model_day.lease_until}); "
                    "a day is never simulated twice"
                )
        session.expire_all()
        return session.exec(
            select(ModelDay).where(
                ModelDay.portfolio == request.portfolio, ModelDay.day == request.day
            )
        ).one()
    raise PortfolioDayTaken(f"{request.portfolio} on {request.day} could not be claimed")


async def claim_when_free(session: Session, request: ModelDayRequest) -> ModelDay:
    """Claim the model-day, waiting while another live simulator holds it.

    Overlapping runs meet here: the later one waits until the day completes (and takes it as
    done) or its claim lapses (and simulates it), for at most the day's time limit.
    """
    deadline = time.monotonic() + request.agent.day_timeout_s
    while True:
        try:
            return claim_model_day(session, request)
        except PortfolioDayTaken:
            if time.monotonic() >= deadline:
                raise
        session.expire_all()  # re-read the row the other simulator is writing
        await asyncio.sleep(CLAIM_POLL_S)


async def run_model_day(
    engine: Engine,
    request: ModelDayRequest,
    prices: PriceBook,
    *,
    budget: RunBudget | None = None,
    chat_model: BaseChatModel | None = None,
    news: NewsArchive | None = None,
    is_session_day: Callable[[date], bool] = is_trading_day,
) -> ModelDayResult:
    """Run one model-day end to end and persist it; a completed day is returned as it is."""
    if request.model.kind == "strategy":
        budget = None  # built-in strategies spend nothing
    with Session(engine, expire_on_commit=False) as session:
        model_day = await claim_when_free(session, request)
        if model_day.status == ModelDayStatus.COMPLETED:
            return _result(model_day, already_done=True)
        if budget is not None and budget.exhausted:
            return _skip(session, model_day, "budget", "run budget spent before this day")
        book = starting_book(session, request.portfolio, request.day, request.initial_cash)
        replay_book = (
            ReplayBook.load(session, request.model.name) if request.mode == "replay" else None
        )

    context = SessionContext.create(
        run_id=request.run_id,
        model=request.model.name,
        portfolio=request.portfolio,
        day=request.day,
        universe=request.universe,
        prices=prices,
        book=book,
        is_session_day=is_session_day,
        benchmark=request.benchmark,
        news=news,
    )
    recorder = RecordingChatModel(
        model_name=request.model.name,
        inner=None if request.mode == "replay" else (chat_model or build_chat_model(request.model)),
        mode=request.mode,
        replay_book=replay_book,
        price=request.model.price,
        budget=budget,
    )
    transcript: list[BaseMessage] = []
    latencies: dict[str, float] = {}
    try:
        async with asyncio.timeout(request.agent.day_timeout_s):
            finished = await _converse(context, request, recorder, transcript, latencies)
    except Exception as exc:
        return _persist_failure(
            engine, request, model_day.id, exc, transcript, latencies, recorder.records
        )
    return _persist_success(
        engine,
        request,
        model_day.id,
        context,
        prices,
        transcript,
        latencies,
        recorder.records,
        finished,
    )


async def _converse(
    context: SessionContext,
    request: ModelDayRequest,
    model: RecordingChatModel,
    transcript: list[BaseMessage],
    latencies: dict[str, float],
) -> bool:
    """Let the model work until it says it is done or runs out of steps; True if it finished."""

    async def time_tool(call: Any, handler: Any) -> Any:
        started = time.perf_counter()
        try:
            return await handler(call)
        finally:
            tool_call_id = getattr(call.runtime, "tool_call_id", None)
            if tool_call_id:
                latencies[tool_call_id] = (time.perf_counter() - started) * 1000

    server = build_server(context, tuple(request.agent.tool_groups))
    async with Client(server) as client:
        tools = await load_mcp_tools(client.session, tool_interceptors=[time_tool])
        agent = create_agent(model, tools, system_prompt=system_prompt(context))
        transcript.append(HumanMessage(first_message(context)))
        while len(model.records) < request.agent.max_steps:
            steps_left = request.agent.max_steps - len(model.records)
            try:
                async for state in agent.astream(
                    {"messages": list(transcript)},
                    {"recursion_limit": 2 * steps_left + 1},
                    stream_mode="values",
                ):
                    transcript[:] = state["messages"]
            except GraphRecursionError:
                return False  # out of steps: the trades made so far stand
            last = transcript[-1]
            if isinstance(last, AIMessage) and last.invalid_tool_calls:
                transcript.extend(_malformed_call_answers(last))
                continue
            if FINISH_SIGNAL in _text(last):
                return True
            transcript.append(HumanMessage(CONTINUE_PROMPT))
    return False


def _malformed_call_answers(message: AIMessage) -> list[ToolMessage]:
    """Tell the model which of its tool calls could not be parsed, so it can send them again."""
    return [
        ToolMessage(
            content=(
                f"error: the arguments of your {call.get('name') or 'tool'} call are not valid "
                f"JSON ({call.get('error') or 'unparseable'}); send the call again"
            ),
            tool_call_id=call.get("id") or f"invalid-{index}",
            status="error",
        )
        for index, call in enumerate(message.invalid_tool_calls)
    ]


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)


def _store_transcript(
    session: Session,
    model_day: ModelDay,
    system: str | None,
    transcript: list[BaseMessage],
    latencies: dict[str, float],
    records: list[LLMCallRecord],
) -> None:
    for row in message_rows(model_day.id, system, transcript):
        session.add(row)
    for row in tool_call_rows(model_day.id, transcript, latencies):
        session.add(row)
    live = [r for r in records if not r.replayed]
    for record in live:
        session.add(
            LLMCall(
                model_day_id=model_day.id,
                **record.model_dump(exclude={"replayed"}),
            )
        )
    model_day.tokens_in = sum(r.tokens_in for r in live)
    model_day.tokens_out = sum(r.tokens_out for r in live)
    model_day.cost_usd = sum(r.cost_usd or 0.0 for r in live)
    model_day.cached = bool(records) and not live


def _own(session: Session, request: ModelDayRequest, model_day_id: int) -> ModelDay:
    """The model-day row, provided this request still holds its claim."""
    model_day = session.get(ModelDay, model_day_id, with_for_update=True)
    if model_day is None or model_day.claimed_by != request.claimant:
        raise PortfolioDayTaken(
            f"{request.portfolio} on {request.day}: the claim lapsed and another simulator took "
            "the day over; this attempt's results are dropped"
        )
    model_day.lease_until = None
    return model_day


def _persist_success(
    engine: Engine,
    request: ModelDayRequest,
    model_day_id: int,
    context: SessionContext,
    prices: PriceBook,
    transcript: list[BaseMessage],
    latencies: dict[str, float],
    records: list[LLMCallRecord],
    finished: bool,
) -> ModelDayResult:
    with Session(engine, expire_on_commit=False) as session:
        model_day = _own(session, request, model_day_id)
        _store_transcript(
            session, model_day, system_prompt(context), transcript, latencies, records
        )
        if not finished:
            model_day.error = "stopped after max_steps without the finish signal"
        fills = context.trading.fills
        record_completed_day(session, model_day, fills, context.trading.portfolio, prices)
        session.commit()
        return _result(model_day, trades=len(fills), records=records, finished=finished)


def _persist_failure(
    engine: Engine,
    request: ModelDayRequest,
    model_day_id: int,
    error: Exception,
    transcript: list[BaseMessage],
    latencies: dict[str, float],
    records: list[LLMCallRecord],
) -> ModelDayResult:
    message = " ".join(f"{type(error).__name__}: {error}".split())[:2000]
    with Session(engine, expire_on_commit=False) as session:
        model_day = _own(session, request, model_day_id)
        _store_transcript(session, model_day, None, transcript, latencies, records)
        if isinstance(error, BudgetExhausted):
            model_day.status = ModelDayStatus.SKIPPED
            model_day.skip_reason = "budget"
        else:
            model_day.status = ModelDayStatus.FAILED
        model_day.error = message
        model_day.finished_at = utcnow()
        if model_day.started_at is not None:
            model_day.duration_s = (model_day.finished_at - model_day.started_at).total_seconds()
        session.add(model_day)
        session.commit()
        result = _result(model_day, records=records)
    result.transient = isinstance(error, TRANSIENT_ERRORS) or isinstance(
        error.__cause__, TRANSIENT_ERRORS
    )
    return result


def skip_model_day(
    engine: Engine, request: ModelDayRequest, reason: str, message: str
) -> ModelDayResult | None:
    """Record that a model-day was not simulated, and why (None if another simulator holds it)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            model_day = claim_model_day(session, request)
        except PortfolioDayTaken:
            return None
        if model_day.status == ModelDayStatus.COMPLETED:
            return _result(model_day, already_done=True)
        return _skip(session, model_day, reason, message)


def _skip(session: Session, model_day: ModelDay, reason: str, message: str) -> ModelDayResult:
    model_day.status = ModelDayStatus.SKIPPED
    model_day.skip_reason = reason
    model_day.error = message
    model_day.lease_until = None
    model_day.finished_at = utcnow()
    session.add(model_day)
    session.commit()
    return _result(model_day)


def _result(
    model_day: ModelDay,
    *,
    trades: int = 0,
    records: list[LLMCallRecord] | None = None,
    finished: bool = False,
    already_done: bool = False,
) -> ModelDayResult:
    records = records or []
    return ModelDayResult(
        model_day_id=model_day.id,
        model=model_day.model,
        day=model_day.day,
        status=model_day.status,
        trades=trades,
        cash_end=model_day.cash_end,
        value_end=model_day.value_end,
        tokens_in=model_day.tokens_in,
        tokens_out=model_day.tokens_out,
        cost_usd=model_day.cost_usd,
        llm_calls=sum(not r.replayed for r in records),
        replayed_calls=sum(r.replayed for r in records),
        finished=finished,
        already_done=already_done,
        error=model_day.error,
    )


def run_model_day_sync(*args: Any, **kwargs: Any) -> ModelDayResult:
    """`run_model_day` for callers without an event loop (scripts, notebooks, tests)."""
    return asyncio.run(run_model_day(*args, **kwargs))
