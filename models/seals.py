"""Sealed decisions: every completed model-day hashed into its portfolio's chain.

When a model-day is recorded, its entry (the portfolio, its place in the chain, the day and its
sessions, when the decision was made and its track, the orders asked for, the fills, the end-of-day
book (cash and shares: its value is the market's to compute), a hash of the conversation and tool
calls, and the previous entry's hash) is hashed:

    seal = sha256(canonical JSON of the entry)        canonical: sorted keys, no spaces, UTF-8

    entry 1 (prev = 64 zeros) ─► entry 2 (prev = seal 1) ─► entry 3 (prev = seal 2) ─► head

Editing any stored trade, holding, message or tool call of a day changes its entry, so its seal no
longer matches; deleting a day breaks the next entry's `prev`; moving a day breaks both. A chain's
head, once published, pins everything before it: `export_chain` writes the entries as JSON lines
that a short script checks with nothing of ours (docs/sealed-decisions.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from models.tables import Holding, Message, ModelDay, ModelDayStatus, ToolCall, Trade

GENESIS = "0" * 64  # the `prev` of a chain's first entry
ORDER_TOOLS = ("buy", "sell")


def canonical(payload: dict[str, Any]) -> bytes:
    """The bytes an entry is hashed as: JSON with sorted keys and no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(payload)).hexdigest()


def _utc_text(moment: datetime | None) -> str | None:
    """A stored time as UTC ISO text, however the database returned it (aware or naive UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat()


def _columns(session: Session, model_day_id: int, *columns: Any) -> list[tuple]:
    """Some columns of a model-day's rows of one table, in their order (plain tuples: a seal
    is computed for every model-day written, and ORM objects cost several times as much)."""
    table = columns[0].class_
    query = select(*columns).where(table.model_day_id == model_day_id)
    return list(session.exec(query.order_by(table.seq if table is not Holding else table.symbol)))


def entry_of(session: Session, model_day: ModelDay) -> dict[str, Any]:
    """A model-day's chain entry, from what the store holds (numbers as floats, so a value
    written as 1 and read back as 1.0 hashes the same)."""
    assert model_day.id is not None
    day_id = model_day.id
    trades = _columns(
        session, day_id, Trade.seq, Trade.side, Trade.symbol, Trade.shares, Trade.price, Trade.cost
    )
    holdings = _columns(session, day_id, Holding.symbol, Holding.shares)
    messages = _columns(
        session, day_id, Message.seq, Message.role, Message.content, Message.reasoning
    )
    calls = _columns(
        session,
        day_id,
        ToolCall.seq,
        ToolCall.tool,
        ToolCall.arguments,
        ToolCall.result,
        ToolCall.is_error,
    )
    conversation = {
        "messages": [list(m) for m in messages],
        "tool_calls": [list(c) for c in calls],
    }
    return {
        "portfolio": model_day.portfolio,
        "seq": model_day.seal_seq,
        "day": model_day.day.isoformat(),
        "session": model_day.session,
        "decided_at": _utc_text(model_day.decided_at),
        "track": model_day.track,
        "orders": [
            [tool, arguments, error]
            for _, tool, arguments, _, error in calls
            if tool in ORDER_TOOLS
        ],
        "fills": [
            [seq, side, symbol, float(shares), float(price), float(cost)]
            for seq, side, symbol, shares, price, cost in trades
        ],
        # The book as decided; its value is the market's to compute (and a live day's is
        # computed again once its close is known), so it is not sealed.
        "book": {
            "cash": _number(model_day.cash_end),
            "holdings": [[symbol, float(shares)] for symbol, shares in holdings],
        },
        # A hash of the day's messages and tool calls, as stored.
        "conversation": digest(conversation),
        "prev": model_day.seal_prev,
    }


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def seal_day(session: Session, model_day: ModelDay) -> str:
    """Append a completed model-day to its portfolio's chain; the caller commits. Its seal."""
    last = session.exec(
        select(ModelDay.seal_seq, ModelDay.seal)
        .where(ModelDay.portfolio == model_day.portfolio, ModelDay.seal.is_not(None))
        .order_by(ModelDay.seal_seq.desc())
        .limit(1)
    ).first()
    model_day.seal_seq = (last[0] + 1) if last else 1
    model_day.seal_prev = last[1] if last else GENESIS
    session.flush()  # the day's trades, holdings and messages, so the entry reads them
    model_day.seal = digest(entry_of(session, model_day))
    session.add(model_day)
    session.flush()
    return model_day.seal


@dataclass(frozen=True)
class ChainProblem:
    """Something `verify_chains` found: which portfolio, which day, and what is wrong."""

    portfolio: str
    day: str
    problem: str

    def __str__(self) -> str:
        return f"{self.portfolio} {self.day}: {self.problem}"


def sealed_days(session: Session, portfolio: str | None = None) -> list[ModelDay]:
    """Every sealed model-day (of one portfolio), by portfolio and place in its chain."""
    query = select(ModelDay).where(ModelDay.seal.is_not(None))
    if portfolio is not None:
        query = query.where(ModelDay.portfolio == portfolio)
    return list(session.exec(query.order_by(ModelDay.portfolio, ModelDay.seal_seq)).all())


def verify_chains(session: Session, portfolio: str | None = None) -> list[ChainProblem]:
    """Recompute every chain from the stored rows: each edited, missing or reordered day, and
    each completed day left unsealed (empty when every chain holds)."""
    problems: list[ChainProblem] = []
    chains: dict[str, list[ModelDay]] = {}
    for model_day in sealed_days(session, portfolio):
        chains.setdefault(model_day.portfolio, []).append(model_day)
    for name, days in chains.items():
        problems += _chain_problems(session, name, days)
    unsealed = select(ModelDay).where(
        ModelDay.status == ModelDayStatus.COMPLETED, ModelDay.seal.is_(None)
    )
    if portfolio is not None:
        unsealed = unsealed.where(ModelDay.portfolio == portfolio)
    for model_day in session.exec(unsealed.order_by(ModelDay.portfolio, ModelDay.day)):
        problems.append(ChainProblem(model_day.portfolio, str(model_day.day), "not sealed"))
    return problems


def _chain_problems(session: Session, portfolio: str, days: list[ModelDay]) -> list[ChainProblem]:
    """What is wrong along one portfolio's chain, day by day."""
    problems = []
    previous: ModelDay | None = None
    for model_day in days:
        found = [
            *_link_problems(model_day, previous),
            *(
                []
                if model_day.status == ModelDayStatus.COMPLETED
                else [f"sealed as completed, now {model_day.status}"]
            ),
        ]
        if digest(entry_of(session, model_day)) != model_day.seal:
            found.append("edited: its trades, book, conversation or dates differ from the seal")
        problems += [ChainProblem(portfolio, str(model_day.day), text) for text in found]
        previous = model_day
    return problems


def _link_problems(model_day: ModelDay, previous: ModelDay | None) -> list[str]:
    """How a day fails to follow the entry before it: a gap, a broken link, a day out of order."""
    expected = previous.seal_seq + 1 if previous and previous.seal_seq else 1
    if model_day.seal_seq != expected:
        last = (model_day.seal_seq or expected) - 1
        missing = f"entry {expected}" if last == expected else f"entries {expected}-{last}"
        after = f" after {previous.day}" if previous else ""
        return [f"missing: {missing} of the chain (sealed{after}, before this day)"]
    problems = []
    if model_day.seal_prev != (previous.seal if previous else GENESIS):
        problems.append("does not follow the entry before it: a day was replaced")
    if previous is not None and model_day.day <= previous.day:
        problems.append(f"out of order: sealed after {previous.day}")
    return problems


def export_chain(session: Session, portfolio: str | None = None) -> Iterator[dict[str, Any]]:
    """Each sealed day's entry with its seal (`hash`), chain by chain, in order."""
    for model_day in sealed_days(session, portfolio):
        yield {**entry_of(session, model_day), "hash": model_day.seal}


def compare_with_export(session: Session, entries: list[dict[str, Any]]) -> list[ChainProblem]:
    """Every entry of an earlier export (`export_chain`) that the store no longer holds as it
    was: a day removed from a chain's end, or any day changed since it was published."""
    stored = {(d.portfolio, d.seal_seq): d for d in sealed_days(session)}
    problems = []
    for entry in entries:
        model_day = stored.get((entry["portfolio"], entry["seq"]))
        if model_day is None:
            problem = f"missing: entry {entry['seq']} of the published chain"
        elif model_day.seal != entry["hash"]:
            problem = f"changed since it was published (entry {entry['seq']})"
        else:
            continue
        problems.append(ChainProblem(entry["portfolio"], entry["day"], problem))
    return problems


def chain_heads(
    session: Session, portfolios: list[str] | None = None, through: date | None = None
) -> dict[str, tuple[int, str]]:
    """Each portfolio's chain length and latest seal (of `portfolios`, or every one; as of the
    entry of day `through`, so a run's heads read the same after later runs extend them)."""
    latest = select(ModelDay.portfolio, func.max(ModelDay.seal_seq).label("seq")).where(
        ModelDay.seal.is_not(None)
    )
    if through is not None:
        latest = latest.where(ModelDay.day <= through)
    latest = latest.group_by(ModelDay.portfolio).subquery()
    query = select(ModelDay.portfolio, ModelDay.seal_seq, ModelDay.seal).join(
        latest,
        (latest.c.portfolio == ModelDay.portfolio) & (latest.c.seq == ModelDay.seal_seq),
    )
    if portfolios is not None:
        query = query.where(ModelDay.portfolio.in_(portfolios))
    return {portfolio: (seq, seal) for portfolio, seq, seal in session.exec(query).all()}
