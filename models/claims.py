"""Model-day claims: one simulator at a time holds a portfolio's day, under a short lease.

A day is never simulated twice: a run claims it and renews the claim on a heartbeat while it works
(`keep_claim`); another run waits while the holder lives, takes the day over as soon as the
holder's lease lapses or the holder is known dead, and a holder that lost its claim meanwhile
drops its results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import false, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar

from models.errors import PortfolioDayTaken
from models.liveness import DEFAULT_LEASE_S, keep_alive, lease_end, process_gone
from models.tables import ModelDay, ModelDayStatus, utcnow

CLAIM_POLL_S = 0.25  # how often a day held by another simulator is looked at again
CLAIM_ATTEMPTS = 3  # a concurrent insert of the same day is re-read, then claimed or refused
# A day in one of these states belongs to nobody and may be claimed outright.
CLAIMABLE_STATUSES = (
    ModelDayStatus.PENDING,
    ModelDayStatus.FAILED,
    ModelDayStatus.SKIPPED,
    ModelDayStatus.PARTIAL,
)


# Asked about a holder that still renews its claim: has it stopped anyway (a crashed flow run)?
HolderCheck = Callable[[str], Awaitable[bool]]


class Claim(BaseModel):
    """Who claims which portfolio's day, for which run, and how long the claim holds."""

    run_id: int
    model: str
    portfolio: str
    day: date
    claimant: str
    trial: int = Field(default=1, ge=1)
    lease_seconds: float = Field(default=DEFAULT_LEASE_S, gt=0)


def claim_model_day(session: Session, claim: Claim, dead_holder: str | None = None) -> ModelDay:
    """The portfolio's model-day for the claim's day, claimed for `claim.claimant`; commits.

    A completed day comes back as it is. A new, failed or skipped day, one whose earlier claim
    has lapsed, one held by `dead_holder` (known dead), or one this claimant already holds, is
    claimed atomically. A day another simulator holds a live claim on raises `PortfolioDayTaken`.
    """
    now = utcnow()
    for _ in range(CLAIM_ATTEMPTS):
        model_day = _find(session, claim)
        if model_day is not None and model_day.status == ModelDayStatus.COMPLETED:
            return model_day
        if model_day is None:
            if not _insert_claimed(session, claim, now):
                continue  # another simulator inserted the day first: look at its row
        else:
            _take_over(session, claim, model_day, now, dead_holder)
        session.expire_all()  # the row was written by a bulk update: read it afresh
        return session.exec(_day_of(claim)).one()
    raise PortfolioDayTaken(f"{claim.portfolio} on {claim.day} could not be claimed")


def _day_of(claim: Claim) -> SelectOfScalar[ModelDay]:
    return select(ModelDay).where(ModelDay.portfolio == claim.portfolio, ModelDay.day == claim.day)


def _find(session: Session, claim: Claim) -> ModelDay | None:
    return session.exec(_day_of(claim)).first()


def _claimed_values(claim: Claim, now: datetime) -> dict[str, Any]:
    """The columns a fresh claim sets, whether the row is new or taken over."""
    return {
        "run_id": claim.run_id,
        "status": ModelDayStatus.RUNNING,
        "claimed_by": claim.claimant,
        "lease_until": lease_end(now, claim.lease_seconds),
        "started_at": now,
        "error": None,
        "skip_reason": None,
    }


def _insert_claimed(session: Session, claim: Claim, now: datetime) -> bool:
    """Insert the day already claimed; False if a concurrent simulator inserted it first."""
    session.add(
        ModelDay(
            model=claim.model,
            trial=claim.trial,
            portfolio=claim.portfolio,
            day=claim.day,
            attempts=1,
            **_claimed_values(claim, now),
        )
    )
    try:
        session.commit()
    except IntegrityError:  # the (portfolio, day) unique constraint: someone else won the race
        session.rollback()
        return False
    return True


def _take_over(
    session: Session, claim: Claim, model_day: ModelDay, now: datetime, dead_holder: str | None
) -> None:
    """Claim an existing day in one conditional update, or raise if a live claim holds it.

    The condition is checked by the database, not on the row read earlier, so two simulators
    racing for the same lapsed day cannot both win it.
    """
    claimable = or_(
        ModelDay.status.in_(CLAIMABLE_STATUSES),
        ModelDay.lease_until < now,
        ModelDay.claimed_by == claim.claimant,
        ModelDay.claimed_by == dead_holder if dead_holder else false(),
    )
    updated = session.execute(
        update(ModelDay)
        .where(ModelDay.id == model_day.id, claimable)
        .values(attempts=ModelDay.attempts + 1, **_claimed_values(claim, now))
    )
    session.commit()
    if updated.rowcount != 1:
        raise PortfolioDayTaken(
            f"{claim.portfolio} on {claim.day} is being simulated by "
            f"{model_day.claimed_by} (claim until {model_day.lease_until}); "
            "a day is never simulated twice"
        )


async def claim_when_free(
    session: Session,
    claim: Claim,
    timeout_s: float,
    holder_stopped: HolderCheck | None = None,
) -> ModelDay:
    """Claim the model-day, waiting while another live simulator holds it.

    Overlapping runs meet here: the later one waits until the day completes (and takes it as
    done), or takes it over once the holder's lease lapses or the holder is known dead: its
    process is gone from this host, or `holder_stopped` says so (a crashed Prefect flow run).
    It waits at most `timeout_s` plus one lease: as long as a live holder may take.
    """
    deadline = time.monotonic() + timeout_s + claim.lease_seconds
    dead_holder = None
    while True:
        try:
            return claim_model_day(session, claim, dead_holder)
        except PortfolioDayTaken:
            if time.monotonic() >= deadline:
                raise
        session.expire_all()  # re-read the row the other simulator is writing
        holder = session.exec(_day_of(claim)).one().claimed_by
        if await _is_dead(holder, holder_stopped):
            dead_holder = holder
            continue
        await asyncio.sleep(CLAIM_POLL_S)


async def _is_dead(holder: str | None, holder_stopped: HolderCheck | None) -> bool:
    if process_gone(holder):
        return True
    return bool(holder and holder_stopped is not None and await holder_stopped(holder))


def renew_claim(engine: Engine, claim: Claim, model_day_id: int) -> bool:
    """Extend a running claim's lease by one lease from now; False if the claim was lost."""
    with Session(engine) as session:
        renewed = session.execute(
            update(ModelDay)
            .where(ModelDay.id == model_day_id, ModelDay.claimed_by == claim.claimant)
            .where(ModelDay.status == ModelDayStatus.RUNNING)
            .values(lease_until=lease_end(utcnow(), claim.lease_seconds))
        )
        session.commit()
    return renewed.rowcount == 1


async def keep_claim(engine: Engine, claim: Claim, model_day_id: int) -> None:
    """Renew the claim on a heartbeat until cancelled (or until it is lost)."""
    await keep_alive(lambda: renew_claim(engine, claim, model_day_id), claim.lease_seconds)


def owned_model_day(session: Session, claim: Claim, model_day_id: int) -> ModelDay:
    """The model-day row, locked and with its lease released, provided the claim still holds it.

    A simulator whose lease lapsed may have been overtaken: its results must then be dropped
    rather than written over the new owner's.
    """
    model_day = session.get(ModelDay, model_day_id, with_for_update=True)
    if model_day is None or model_day.claimed_by != claim.claimant:
        raise PortfolioDayTaken(
            f"{claim.portfolio} on {claim.day}: the claim lapsed and another simulator took "
            "the day over; this attempt's results are dropped"
        )
    model_day.lease_until = None
    return model_day


def mark_skipped(session: Session, model_day: ModelDay, reason: str, message: str) -> ModelDay:
    """Mark a claimed model-day skipped, and why; releases the claim and commits."""
    model_day.status = ModelDayStatus.SKIPPED
    model_day.skip_reason = reason
    model_day.error = message
    model_day.lease_until = None
    model_day.finished_at = utcnow()
    session.add(model_day)
    session.commit()
    return model_day


def hand_back_partial(session: Session, model_day: ModelDay) -> ModelDay:
    """Release a claimed day in progress that had no new session to trade; commits."""
    model_day.status = ModelDayStatus.PARTIAL
    model_day.lease_until = None
    session.add(model_day)
    session.commit()
    return model_day


def skip_model_day(engine: Engine, claim: Claim, reason: str, message: str) -> ModelDay | None:
    """Record that a model-day was not simulated, and why.

    A completed day comes back untouched; None if another simulator holds the day.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            model_day = claim_model_day(session, claim)
        except PortfolioDayTaken:
            return None
        if model_day.status == ModelDayStatus.COMPLETED:
            return model_day
        return mark_skipped(session, model_day, reason, message)
