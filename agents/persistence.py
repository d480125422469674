"""Writing a model-day's conversation to the store: the completed day and its trades, or why not.

Either way the messages, tool calls and LLM calls are kept; a failed day writes no trades, so the
next day starts from the last completed book. An hourly day traded live is written session group
by session group: each group's trades and book land (and are sealed) as it is traded, the day
stays `partial`, and the next run resumes it after them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent_tools.context import SessionContext
from agents.recording import LLMCallRecord
from agents.transcript import message_rows, tool_call_rows
from agents.types import Conversation, ModelDayRequest, ModelDayResult
from configs.markets import BAR_LENGTH
from market_data.calendar import calendar
from models import clock
from models.claims import owned_model_day
from models.errors import BudgetExhausted
from models.ledger import (
    record_completed_day,
    record_sessions,
    session_label,
    sessions_traded,
)
from models.prices import PriceBook
from models.tables import (
    LLMCall,
    Message,
    ModelDay,
    ModelDayStatus,
    ToolCall,
    Track,
    count_day_rows,
    utcnow,
)

ERROR_CHARS = 2000  # a stored error is one line, short enough for a table cell


def persist_conversation(
    engine: Engine,
    request: ModelDayRequest,
    model_day_id: int,
    context: SessionContext,
    prices: PriceBook,
    conversation: Conversation,
    day_over: bool = True,
) -> ModelDayResult:
    """Store the model-day's conversation and its outcome, provided the request still holds it;
    unless `day_over`, the day's sessions so far (the rest are traded by a later run).

    Raises `PortfolioDayTaken` (and stores nothing) if another simulator took the day over.
    """
    with Session(engine, expire_on_commit=False) as session:
        model_day = owned_model_day(session, request.claim, model_day_id)
        if conversation.error is None:
            decided = _decision_time(request, conversation)
            result = _record_traded(
                session, model_day, context, prices, conversation, decided, day_over
            )
        else:
            result = _record_failed(session, model_day, conversation, conversation.error)
        session.commit()
        return result


def _record_traded(
    session: Session,
    model_day: ModelDay,
    context: SessionContext,
    prices: PriceBook,
    conversation: Conversation,
    decided: tuple[datetime, Track],
    day_over: bool,
) -> ModelDayResult:
    """The sessions traded: the day completed, or (not `day_over`) the day so far."""
    _store_transcript(session, model_day, conversation.system, conversation)
    if not conversation.finished:
        model_day.error = "stopped after max_steps without the finish signal"
    if conversation.sessions:
        labels = sessions_traded(model_day) + [session_label(at) for at in conversation.sessions]
        model_day.session = ", ".join(labels)
    fills = context.trading.fills
    record = record_completed_day if day_over else record_sessions
    record(session, model_day, fills, context.trading.portfolio, prices, *decided)
    return model_day_result(
        model_day, trades=len(fills), records=conversation.records, finished=conversation.finished
    )


def _decision_time(request: ModelDayRequest, conversation: Conversation) -> tuple[datetime, Track]:
    """When the decision was made (now, as it is written), and its track: `live` when that is
    before the first session it traded ended (the day's close; an hourly session's bar's end),
    so its outcome was unknown to anyone."""
    now = clock.now()
    market = request.market
    if market.hourly and conversation.sessions:
        end = market.fill_time(conversation.sessions[0]) + BAR_LENGTH
    else:
        end = calendar(market.calendar).session_close(request.day)
    return now, Track.LIVE if now < end else Track.BACKTEST


def _record_failed(
    session: Session, model_day: ModelDay, conversation: Conversation, error: Exception
) -> ModelDayResult:
    _store_transcript(session, model_day, None, conversation)
    if isinstance(error, BudgetExhausted):
        model_day.status = ModelDayStatus.SKIPPED
        model_day.skip_reason = "budget"
    else:
        model_day.status = ModelDayStatus.FAILED
    model_day.error = " ".join(f"{type(error).__name__}: {error}".split())[:ERROR_CHARS]
    model_day.finished_at = utcnow()
    if model_day.started_at is not None:
        model_day.duration_s = (model_day.finished_at - model_day.started_at).total_seconds()
    session.add(model_day)
    return model_day_result(model_day, records=conversation.records)


def _store_transcript(
    session: Session, model_day: ModelDay, system: str | None, conversation: Conversation
) -> None:
    """Messages, tool calls and live LLM calls, and the day's tokens and cost from them (after
    those of the sessions a day in progress traded before, when it resumes)."""
    messages = count_day_rows(session, Message, model_day.id)
    calls = count_day_rows(session, ToolCall, model_day.id)
    for message in message_rows(model_day.id, system, conversation.transcript):
        message.seq += messages
        session.add(message)
    for call in tool_call_rows(model_day.id, conversation.transcript, conversation.latencies):
        call.seq += calls
        session.add(call)
    records = conversation.records
    # Replayed calls answer from LLM calls already in the store: only live ones are new.
    live = [r for r in records if not r.replayed]
    for record in live:
        session.add(LLMCall(model_day_id=model_day.id, **record.model_dump(exclude={"replayed"})))
    resumed = bool(sessions_traded(model_day))  # a day in progress: its earlier sessions' too
    model_day.tokens_in = sum(r.tokens_in for r in live) + (model_day.tokens_in if resumed else 0)
    model_day.tokens_out = sum(r.tokens_out for r in live) + (
        model_day.tokens_out if resumed else 0
    )
    model_day.cost_usd = sum(r.cost_usd or 0.0 for r in live) + (
        model_day.cost_usd if resumed else 0.0
    )
    model_day.cached = bool(records) and not live


def model_day_result(
    model_day: ModelDay,
    *,
    trades: int = 0,
    records: list[LLMCallRecord] | None = None,
    finished: bool = False,
    already_done: bool = False,
) -> ModelDayResult:
    """The result of a model-day as stored, with this attempt's trades and LLM calls."""
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
