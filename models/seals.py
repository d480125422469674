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

An hourly day traded live is sealed before it is over: each group of sessions traded by one run
is an entry of its own (`SessionSeal`, with `through`: how many of the day's fills, messages and
tool calls it covers), and the day's entry, once its last session is traded, follows them.
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

from models.tables import (
    Holding,
    Message,
    ModelDay,
    ModelDayStatus,
    SessionSeal,
    ToolCall,
    Trade,
    count_day_rows,
)

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


def entry_of(
    session: Session, model_day: ModelDay, through: dict[str, int] | None = None
) -> dict[str, Any]:
    """A model-day's chain entry, from what the store holds (numbers as floats, so a value
    written as 1 and read back as 1.0 hashes the same); with `through`, of its first fills,
    messages and tool calls only (a session group's entry)."""
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
    if through is not None:
        trades = trades[: through["fills"]]
        messages = messages[: through["messages"]]
        calls = calls[: through["tool_calls"]]
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


def _chain_end(session: Session, portfolio: str) -> tuple[int, str]:
    """The next entry's place in a portfolio's chain and its `prev`: after the last sealed day
    or session group, whichever came last."""
    ends = [
        session.exec(
            select(seq, seal).where(owner == portfolio, seal.is_not(None)).order_by(seq.desc())
        ).first()
        for seq, seal, owner in (
            (ModelDay.seal_seq, ModelDay.seal, ModelDay.portfolio),
            (SessionSeal.seq, SessionSeal.seal, SessionSeal.portfolio),
        )
    ]
    last = max((end for end in ends if end is not None), default=None)
    return (last[0] + 1, last[1]) if last else (1, GENESIS)


def seal_day(session: Session, model_day: ModelDay) -> str:
    """Append a completed model-day to its portfolio's chain; the caller commits. Its seal."""
    model_day.seal_seq, model_day.seal_prev = _chain_end(session, model_day.portfolio)
    session.flush()  # the day's trades, holdings and messages, so the entry reads them
    model_day.seal = digest(entry_of(session, model_day))
    session.add(model_day)
    session.flush()
    return model_day.seal


def seal_sessions(session: Session, model_day: ModelDay) -> str:
    """Append the sessions of a day in progress traded so far (the day's rows as they stand,
    its book after them) to its portfolio's chain; the caller commits. Its seal."""
    seq, prev = _chain_end(session, model_day.portfolio)
    session.flush()
    through = {
        "fills": count_day_rows(session, Trade, model_day.id),
        "messages": count_day_rows(session, Message, model_day.id),
        "tool_calls": count_day_rows(session, ToolCall, model_day.id),
    }
    entry = entry_of(session, model_day) | {"seq": seq, "prev": prev, "through": through}
    row = SessionSeal(
        model_day_id=model_day.id,
        portfolio=model_day.portfolio,
        seq=seq,
        entry=entry,
        seal=digest(entry),
    )
    session.add(row)
    session.flush()
    return row.seal


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


def session_seals(session: Session, portfolio: str | None = None) -> list[SessionSeal]:
    """Every session group's entry (of one portfolio), by portfolio and place in its chain."""
    query = select(SessionSeal)
    if portfolio is not None:
        query = query.where(SessionSeal.portfolio == portfolio)
    return list(session.exec(query.order_by(SessionSeal.portfolio, SessionSeal.seq)).all())


@dataclass(frozen=True)
class _Link:
    """One entry of a chain as the links between entries see it: a day's or a session group's."""

    seq: int
    prev: str
    seal: str
    day: date
    label: str  # how a problem names it: the day, or the day and the sessions it seals
    whole_day: bool


def _links(session: Session, portfolio: str | None) -> dict[str, list[tuple[_Link, Any]]]:
    """Each portfolio's entries in chain order, with the row each comes from."""
    chains: dict[str, list[tuple[_Link, Any]]] = {}
    for model_day in sealed_days(session, portfolio):
        link = _Link(
            model_day.seal_seq or 0,
            model_day.seal_prev or "",
            model_day.seal or "",
            model_day.day,
            str(model_day.day),
            whole_day=True,
        )
        chains.setdefault(model_day.portfolio, []).append((link, model_day))
    for row in session_seals(session, portfolio):
        day = date.fromisoformat(row.entry["day"])
        label = f"{day} sessions {row.entry['session']}"
        link = _Link(row.seq, row.entry["prev"], row.seal, day, label, whole_day=False)
        chains.setdefault(row.portfolio, []).append((link, row))
    return {name: sorted(links, key=lambda pair: pair[0].seq) for name, links in chains.items()}


def verify_chains(session: Session, portfolio: str | None = None) -> list[ChainProblem]:
    """Recompute every chain from the stored rows: each edited, missing or reordered day (or
    session group), and each completed day left unsealed (empty when every chain holds)."""
    problems: list[ChainProblem] = []
    for name, links in _links(session, portfolio).items():
        previous: _Link | None = None
        for link, row in links:
            found = [*_link_problems(link, previous), *_entry_problems(session, row)]
            problems += [ChainProblem(name, link.label, text) for text in found]
            previous = link
    unsealed = select(ModelDay).where(
        ModelDay.status == ModelDayStatus.COMPLETED, ModelDay.seal.is_(None)
    )
    if portfolio is not None:
        unsealed = unsealed.where(ModelDay.portfolio == portfolio)
    for model_day in session.exec(unsealed.order_by(ModelDay.portfolio, ModelDay.day)):
        problems.append(ChainProblem(model_day.portfolio, str(model_day.day), "not sealed"))
    return problems


# What a session group's entry shares with the day as the store holds it later: the book and
# the day's sessions move on as the day goes on, these never do.
PREFIX_FIELDS = ("portfolio", "day", "orders", "fills", "conversation")


def _entry_problems(session: Session, row: ModelDay | SessionSeal) -> list[str]:
    """How an entry's row differs from its seal."""
    edited = "edited: its trades, book, conversation or dates differ from the seal"
    if isinstance(row, ModelDay):
        found = []
        if row.status != ModelDayStatus.COMPLETED:
            found.append(f"sealed as completed, now {row.status}")
        if digest(entry_of(session, row)) != row.seal:
            found.append(edited)
        return found
    if digest(row.entry) != row.seal:
        return ["edited: its sealed entry was changed"]
    model_day = session.get(ModelDay, row.model_day_id)
    if model_day is None:
        return ["missing: its day was deleted"]
    now = entry_of(session, model_day, row.entry["through"])
    changed = [field for field in PREFIX_FIELDS if now[field] != row.entry[field]]
    return [f"edited: its {' and '.join(changed)} differ from the seal"] if changed else []


def _link_problems(link: _Link, previous: _Link | None) -> list[str]:
    """How an entry fails to follow the one before it: a gap, a broken link, out of order."""
    expected = previous.seq + 1 if previous else 1
    if link.seq != expected:
        last = (link.seq or expected) - 1
        missing = f"entry {expected}" if last == expected else f"entries {expected}-{last}"
        after = f" after {previous.day}" if previous else ""
        return [f"missing: {missing} of the chain (sealed{after}, before this day)"]
    problems = []
    if link.prev != (previous.seal if previous else GENESIS):
        problems.append("does not follow the entry before it: a day was replaced")
    # A day's session groups come before its own entry; nothing else shares a day.
    if previous is not None and (
        link.day < previous.day or (link.day == previous.day and previous.whole_day)
    ):
        problems.append(f"out of order: sealed after {previous.day}")
    return problems


def export_chain(session: Session, portfolio: str | None = None) -> Iterator[dict[str, Any]]:
    """Each entry with its seal (`hash`), chain by chain, in order."""
    for _, links in sorted(_links(session, portfolio).items()):
        for link, row in links:
            entry = entry_of(session, row) if isinstance(row, ModelDay) else row.entry
            yield {**entry, "hash": link.seal}


def compare_with_export(session: Session, entries: list[dict[str, Any]]) -> list[ChainProblem]:
    """Every entry of an earlier export (`export_chain`) that the store no longer holds as it
    was: a day removed from a chain's end, or any day changed since it was published."""
    stored = {
        (name, link.seq): link.seal
        for name, links in _links(session, None).items()
        for link, _ in links
    }
    problems = []
    for entry in entries:
        seal = stored.get((entry["portfolio"], entry["seq"]))
        if seal is None:
            problem = f"missing: entry {entry['seq']} of the published chain"
        elif seal != entry["hash"]:
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
    heads: dict[str, tuple[int, str]] = {}
    for seq, seal, owner, day in (
        (ModelDay.seal_seq, ModelDay.seal, ModelDay.portfolio, ModelDay.day),
        (SessionSeal.seq, SessionSeal.seal, SessionSeal.portfolio, ModelDay.day),
    ):
        latest = select(owner.label("portfolio"), func.max(seq).label("seq")).where(
            seal.is_not(None)
        )
        if owner is SessionSeal.portfolio:
            latest = latest.join(ModelDay, ModelDay.id == SessionSeal.model_day_id)
        if through is not None:
            latest = latest.where(day <= through)
        latest = latest.group_by(owner).subquery()
        query = select(owner, seq, seal).join(
            latest, (latest.c.portfolio == owner) & (latest.c.seq == seq)
        )
        if portfolios is not None:
            query = query.where(owner.in_(portfolios))
        for portfolio, number, hashed in session.exec(query).all():
            if number > heads.get(portfolio, (0, ""))[0]:
                heads[portfolio] = (number, hashed)
    return heads
