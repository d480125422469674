"""One model-day end to end: claim the day, start from the last completed book, converse, persist.

An hourly day whose close is still ahead (a live run) trades the sessions that have begun and
stays `partial`; the next run resumes it after them, from the book they left.
Everything the session did is persisted. Its trades and end-of-day book are written in one
transaction when the day completes; a day that fails leaves no trades behind, keeps its messages,
tool calls and LLM calls for diagnosis, and the next day starts from the last completed book.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from langchain_core.language_models import BaseChatModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent_tools.context import SessionContext
from agent_tools.news import NewsArchive
from agents.budget import RunBudget
from agents.chat_models import build_chat_model
from agents.conversation import converse
from agents.persistence import model_day_result, persist_conversation
from agents.recording import RecordingChatModel, ReplayBook, transient_errors
from agents.types import Conversation, ModelDayRequest, ModelDayResult
from configs.loader import ModelConfig
from configs.markets import Market
from market_data.calendar import calendar
from models import clock
from models.book import Portfolio
from models.claims import HolderCheck, claim_when_free, hand_back_partial, keep_claim, mark_skipped
from models.ledger import day_start, session_label
from models.prices import PriceBook
from models.tables import ModelDayStatus


async def run_model_day(
    engine: Engine,
    request: ModelDayRequest,
    prices: PriceBook,
    *,
    budget: RunBudget | None = None,
    chat_model: BaseChatModel | None = None,
    news: NewsArchive | None = None,
    is_session_day: Callable[[date], bool] | None = None,
    holder_stopped: HolderCheck | None = None,
) -> ModelDayResult:
    """Run one model-day end to end and persist it; a completed day is returned as it is."""
    if request.model.kind == "strategy":
        budget = None  # built-in strategies spend nothing
    is_session_day = is_session_day or calendar(request.market.calendar).is_trading_day
    with Session(engine, expire_on_commit=False) as session:
        model_day = await claim_when_free(
            session, request.claim, request.agent.day_timeout_s, holder_stopped
        )
        if model_day.status == ModelDayStatus.COMPLETED:
            return model_day_result(model_day, already_done=True)
        if budget is not None and budget.exhausted:
            mark_skipped(session, model_day, "budget", "run budget spent before this day")
            return model_day_result(model_day)
        start = day_start(session, request.portfolio, request.day, request.initial_cash)
        book, traded = start.book, start.traded
        todo = sessions_to_trade(request, prices, traded)
        if not todo:  # a day in progress, and no session has begun since the last run
            return model_day_result(hand_back_partial(session, model_day))
        replay_book = (
            ReplayBook.load(session, request.recorded_model) if request.mode == "replay" else None
        )

    # The claim is renewed while the model works, so a dead simulator's day is freed in a minute.
    heartbeat = asyncio.create_task(keep_claim(engine, request.claim, model_day.id))
    try:
        context, conversation = await _trade_sessions(
            request, prices, book, todo, news, is_session_day, budget, replay_book, chat_model
        )
    finally:
        heartbeat.cancel()
    day_over = is_day_over(request.market, request.day, traded + [session_label(at) for at in todo])
    result = persist_conversation(
        engine, request, model_day.id, context, prices, conversation, day_over
    )
    result.transient = is_transient(conversation.error)
    return result


async def _trade_sessions(
    request: ModelDayRequest,
    prices: PriceBook,
    book: Portfolio,
    sessions: list[datetime],
    news: NewsArchive | None,
    is_session_day: Callable[[date], bool],
    budget: RunBudget | None,
    replay_book: ReplayBook | None,
    chat_model: BaseChatModel | None,
) -> tuple[SessionContext, Conversation]:
    """`sessions` in order (the day, or hourly bars), the book carried from each to the next;
    the day stops at the first session that fails. Returns the last session's context (its
    trading holds the fills of them all) and their conversation."""
    market = request.market
    day_conversation: Conversation | None = None
    context: SessionContext | None = None
    live_model = _live_model(request, chat_model)
    for at in sessions:
        context = SessionContext.create(
            run_id=request.run_id,
            model=request.model.name,
            portfolio=request.portfolio,
            day=at,
            universe=request.universe,
            prices=prices,
            book=book,
            is_session_day=is_session_day,
            benchmark=request.benchmark,
            news=news,
            rules=market.rules,
            trading=context.trading if context else None,
            fill_time=market.fill_time(at),
            title=market.title,
        )
        recorder = RecordingChatModel(
            model_name=request.recorded_model,  # each trial is recorded and replayed on its own
            inner=live_model,
            mode=request.mode,
            replay_book=replay_book,
            price=request.model.price,
            budget=budget,
            keep_requests=keeps_requests(request.model),
            outage_window_s=request.agent.outage_window_s,
            first_backoff_s=request.agent.retry_delay_s,
        )
        conversation = await converse(context, request.agent, recorder)
        if day_conversation is None:
            day_conversation = conversation
        else:
            day_conversation.extend(conversation)
        if conversation.error is not None:
            break
    assert context is not None and day_conversation is not None  # a day has a session
    return context, day_conversation


def keeps_requests(model: ModelConfig) -> bool:
    """Whether the model's LLM calls keep their whole requests: an LLM's do; a built-in
    strategy's are its transcript, replayable from the strategy (agents/recording.py)."""
    return model.kind != "strategy"


def sessions_to_trade(
    request: ModelDayRequest, prices: PriceBook, traded: list[str]
) -> list[datetime]:
    """The sessions of the request's day not yet traded (`traded`: labels of a day in progress)."""
    times = session_times(request.market, prices, request.day, request.universe)
    return [at for at in times if session_label(at) not in traded]


def is_day_over(market: Market, day: date, traded: list[str]) -> bool:
    """Whether a day is over once `traded` (session labels) are: its close has passed, or the
    market has no later session that day. Only an hourly day can be traded in parts."""
    close = calendar(market.calendar).session_close(day)
    if not market.hourly or clock.now() >= close:
        return True
    ahead = [at for at in market.session_times(day) if market.fill_time(at) < close]
    return all(session_label(at) in traded for at in ahead)


def session_times(
    market: Market, prices: PriceBook, day: date, universe: list[str]
) -> list[datetime]:
    """The sessions of `day`: the day itself, or the hourly bars any symbol of `universe` has
    (a half day has fewer)."""
    times = market.session_times(day)
    if not market.hourly:
        return times
    priced = [at for at in times if any(prices.bar_at(s, at) for s in universe)]
    return priced or times[:1]  # no bar at all: one session whose orders are refused


def _live_model(request: ModelDayRequest, chat_model: BaseChatModel | None) -> BaseChatModel | None:
    """What a live session talks to: `chat_model`, or the config's model for the request's trial;
    None when replaying."""
    if request.mode == "replay":
        return None
    return chat_model or build_chat_model(request.model, trial=request.trial)


def is_transient(error: BaseException | None) -> bool:
    """Whether another attempt may succeed: the error, or what caused it, is a transient one."""
    if error is None:
        return False
    transient = transient_errors()
    return isinstance(error, transient) or isinstance(error.__cause__, transient)


def run_model_day_sync(*args: Any, **kwargs: Any) -> ModelDayResult:
    """`run_model_day` for callers without an event loop (scripts, notebooks, tests)."""
    return asyncio.run(run_model_day(*args, **kwargs))
