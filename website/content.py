"""What the site shows, read from the store: a run's leaderboard, curves, models, days and pairs.

Every figure comes from the same functions the CLI uses (`analysis.leaderboard.rank_curves`,
`analysis.curves.run_curves`, `analysis.leaderboard.leaderboard_rows`), so a number on a page is the
number `aitrader results --format json` prints. A run's rows are read in a few queries (model-days,
trades, holdings, messages, tool calls, LLM calls), never one query per page.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, select

from analysis.colours import model_colours
from analysis.curves import RunCurves, run_curves
from analysis.leaderboard import Ranking, leaderboard_rows, rank_curves
from analysis.statistics import MIN_TEST_SESSIONS
from configs.markets import run_interval
from models.errors import ResultsError
from models.results import run_scope
from models.tables import (
    Holding,
    LLMCall,
    Message,
    ModelDay,
    ModelDayStatus,
    PriceBar,
    Run,
    ToolCall,
    Trade,
)

# An allocation chart shows this many holdings by name; the rest are summed as "other".
NAMED_HOLDINGS = 8


def slug(name: str) -> str:
    """A model name as a file name: letters, digits, `.`, `_` and `-` kept, the rest `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


@dataclass
class TradeLine:
    """A fill, where it happened, and the model's own words just before it placed the order."""

    id: int
    model: str
    trial: int
    day: date
    session_at: datetime | None
    side: str
    symbol: str
    shares: float
    price: float
    cost: float
    reason: str


@dataclass
class ModelDayView:
    """One model-day as its pages show it: its outcome, conversation, tool calls and costs."""

    record: ModelDay
    trades: list[TradeLine] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    llm_calls: int = 0
    llm_latency_ms: float = 0.0

    @property
    def tool_errors(self) -> int:
        return sum(1 for call in self.tool_calls if call.is_error)

    @property
    def retries(self) -> int:
        return max(self.record.attempts - 1, 0)


@dataclass
class RunContent:
    """Everything the pages of one run show."""

    run: Run
    days: list[ModelDayView]
    ranking: Ranking | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # `results --format json`'s rows
    curves: RunCurves | None = None
    holdings: dict[int, list[Holding]] = field(default_factory=dict)  # by model-day id
    colours: dict[str, str] = field(default_factory=dict)  # the store's, by model
    prices: dict[date, list[PriceBar]] = field(default_factory=dict)  # traded symbols, by day

    @property
    def models(self) -> list[str]:
        """The run's models, leaderboard order first (then any without a completed day)."""
        ranked = [row["model"] for row in self.rows if row["rank"] is not None]
        return ranked + sorted({d.record.model for d in self.days} - set(ranked))

    @property
    def dates(self) -> list[date]:
        return sorted({d.record.day for d in self.days})

    def of_model(self, model: str) -> list[ModelDayView]:
        return [d for d in self.days if d.record.model == model]

    def of_day(self, day: date) -> list[ModelDayView]:
        order = {name: k for k, name in enumerate(self.models)}
        found = [d for d in self.days if d.record.day == day]
        return sorted(found, key=lambda d: (order.get(d.record.model, 0), d.record.trial))

    @staticmethod
    def too_few_sessions(row: dict[str, Any]) -> bool:
        """Whether a model has too few sessions to be told apart from any other."""
        return row["sessions"] < MIN_TEST_SESSIONS

    def allocation(self, model: str) -> pd.DataFrame:
        """Trial 1's end-of-day value per holding (the largest by name, the rest as `other`)
        and its cash, one row per completed day."""
        lines: dict[date, dict[str, float]] = {}
        for view in self.of_model(model):
            record = view.record
            if record.trial != 1 or record.status != ModelDayStatus.COMPLETED:
                continue
            values = {h.symbol: h.value for h in self.holdings.get(record.id or 0, [])}
            lines[record.day] = {**values, "cash": record.cash_end or 0.0}
        frame = pd.DataFrame.from_dict(lines, orient="index").fillna(0.0).sort_index()
        if frame.empty:
            return frame
        symbols = [c for c in frame.columns if c != "cash"]
        largest = frame[symbols].max().sort_values(ascending=False).index[:NAMED_HOLDINGS]
        rest = [s for s in symbols if s not in largest]
        named = frame[list(largest)]
        if rest:
            named = named.assign(other=frame[rest].sum(axis=1))
        return named.assign(cash=frame["cash"])


def run_content(session: Session, run: Run, details: bool = True) -> RunContent:
    """A run's pages' content: ranked when any model-day completed, its records either way.

    Without `details`, only what a leaderboard shows: no trades, conversations, tool calls,
    holdings or prices (a served index ranks every run, and reads nothing else of them).
    """
    days = _model_days(session, run, details)
    content = RunContent(run=run, days=days, colours=model_colours(session))
    try:
        content.curves = run_curves(session, run.id)
        content.ranking = rank_curves(content.curves)
    except ResultsError:
        return content  # nothing completed yet: the pages say so
    content.rows = leaderboard_rows(content.ranking.rows)
    done = ModelDayStatus.COMPLETED
    completed = [d.record for d in days if d.record.status == done and d.record.trial == 1]
    for row in content.rows:  # the sessions trial 1 traded; the benchmark's: every one
        model = None if row["rank"] is None else row["model"]
        row["sessions"] = len({r.day for r in completed if model in (None, r.model)})
    if not details:
        return content
    ids = [d.record.id for d in days]
    for holding in session.exec(select(Holding).where(Holding.model_day_id.in_(ids))):
        content.holdings.setdefault(holding.model_day_id, []).append(holding)
    content.prices = _prices_seen(session, run, days)
    return content


def _model_days(session: Session, run: Run, details: bool) -> list[ModelDayView]:
    """Every model-day of the run, with (`details`) its trades, messages, tool calls and LLM
    call figures."""
    records = session.exec(
        select(ModelDay).where(*run_scope(session, run.id)).order_by(ModelDay.day, ModelDay.id)
    ).all()
    views = {r.id: ModelDayView(record=r) for r in records}
    if not details:
        return list(views.values())
    ids = list(views)
    for message in session.exec(
        select(Message).where(Message.model_day_id.in_(ids)).order_by(Message.seq)
    ):
        views[message.model_day_id].messages.append(message)
    for call in session.exec(
        select(ToolCall).where(ToolCall.model_day_id.in_(ids)).order_by(ToolCall.seq)
    ):
        views[call.model_day_id].tool_calls.append(call)
    llm = select(LLMCall.model_day_id, func.count(), func.sum(LLMCall.latency_ms))
    for day_id, count, latency in session.exec(
        llm.where(LLMCall.model_day_id.in_(ids)).group_by(LLMCall.model_day_id)
    ):
        views[day_id].llm_calls, views[day_id].llm_latency_ms = count, latency or 0.0
    trades = session.exec(
        select(Trade).where(Trade.model_day_id.in_(ids)).order_by(Trade.model_day_id, Trade.seq)
    )
    for trade in trades:
        view = views[trade.model_day_id]
        view.trades.append(
            TradeLine(
                id=trade.id or 0,
                model=view.record.model,
                trial=view.record.trial,
                day=view.record.day,
                session_at=trade.session_at,
                side=trade.side,
                symbol=trade.symbol,
                shares=trade.shares,
                price=trade.price,
                cost=trade.cost,
                reason="",
            )
        )
    for view in views.values():
        _attach_reasons(view)
    return list(views.values())


def _attach_reasons(view: ModelDayView) -> None:
    """Give each trade the text of the model's last message before the tool answer that
    reported its fill (an imported run, with no conversation, has none)."""
    reason = ""
    waiting = list(view.trades)
    for message in view.messages:
        if message.role == "assistant" and message.content.strip():
            reason = message.content.strip()
        elif message.role == "tool" and '"filled"' in message.content:
            filled = _filled(message.content)
            for trade in waiting:
                if filled == (trade.side, trade.symbol, trade.shares):
                    trade.reason = reason
                    waiting.remove(trade)
                    break


def _filled(content: str) -> tuple[str, str, float] | None:
    try:
        fill = json.loads(content)["filled"]
        return fill["side"], fill["symbol"], float(fill["shares"])
    except (ValueError, KeyError, TypeError):
        return None


def market_of(run: Run) -> str:
    """The market a run traded (`configs/markets.yaml`'s name; an import's: its interval)."""
    try:
        return str(run.config["market"]["name"])
    except (KeyError, TypeError):
        return f"imported {run.config.get('interval', '1d')}"


def bar_interval(run: Run) -> str:
    """The bars a run traded on: `1d`, or `60min` for an hourly market."""
    return run_interval(run.config)


@dataclass
class RunProgress:
    """A run's model-days by status, and the ones that failed or were skipped."""

    run: Run
    counts: dict[str, int]
    failures: list[ModelDay]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def run_progress(session: Session, run: Run) -> RunProgress:
    """How far a run got, without ranking it."""
    records = session.exec(
        select(ModelDay).where(*run_scope(session, run.id)).order_by(ModelDay.day)
    ).all()
    counts = dict.fromkeys(("completed", "failed", "skipped"), 0)
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    failures = [r for r in records if r.status in ("failed", "skipped")]
    return RunProgress(run=run, counts=counts, failures=failures)


def _prices_seen(session: Session, run: Run, days: list[ModelDayView]) -> dict[date, list]:
    """For each day, the bars of the symbols any model traded that day (their opens were the
    fill prices) and of the benchmark."""
    traded: dict[date, set[str]] = defaultdict(set)
    for view in days:
        traded[view.record.day] |= {t.symbol for t in view.trades}
    symbols = set().union(*traded.values()) | {run.benchmark} if traded else {run.benchmark}
    bars = session.exec(
        select(PriceBar)
        .where(PriceBar.market == run.market)
        .where(PriceBar.interval == bar_interval(run))
        .where(PriceBar.symbol.in_(sorted(symbols)))
        .where(PriceBar.day.in_(sorted(traded)))
        .order_by(PriceBar.day, PriceBar.symbol, PriceBar.ts)
    )
    seen: dict[date, list[PriceBar]] = defaultdict(list)
    for bar in bars:
        if bar.symbol in traded[bar.day] or bar.symbol == run.benchmark:
            seen[bar.day].append(bar)
    return seen
