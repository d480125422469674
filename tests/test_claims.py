"""Model-day claims: a day held by another live simulator is waited for, never run twice."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from datetime import date

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agents.types import ModelDayRequest
from configs.loader import AgentConfig, ModelConfig
from models.claims import (
    Claim,
    claim_model_day,
    claim_when_free,
    keep_claim,
    owned_model_day,
    renew_claim,
    skip_model_day,
)
from models.errors import PortfolioDayTaken
from models.tables import ModelDay, Run

DAY = date(2025, 1, 6)


def request(engine: Engine, claimant: str, **kw) -> ModelDayRequest:
    with Session(engine) as session:
        run = Run(name=claimant, models=["momentum"])
        session.add(run)
        session.commit()
        run_id = run.id
    return ModelDayRequest(
        run_id=run_id,
        model=ModelConfig(name="momentum", strategy="momentum"),
        day=DAY,
        portfolio="t/momentum",
        universe=["AAPL"],
        claimant=claimant,
        **kw,
    )


async def wait_and_claim(session: Session, request: ModelDayRequest) -> ModelDay:
    """Claim the request's day as a model-day session does: waiting at most the day's time limit."""
    return await claim_when_free(session, request.claim, request.agent.day_timeout_s)


def complete_later(engine: Engine, delay: float) -> threading.Thread:
    """The first simulator finishing its day `delay` seconds from now."""

    def finish() -> None:
        time.sleep(delay)
        with Session(engine) as session:
            session.execute(
                update(ModelDay).values(status="completed", lease_until=None, value_end=10_050.0)
            )
            session.commit()

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_a_held_day_is_waited_for_then_taken_as_done(engine: Engine) -> None:
    first, second = request(engine, "run-a"), request(engine, "run-b")
    with Session(engine) as session:
        claim_model_day(session, first.claim)
    finisher = complete_later(engine, 0.6)
    started = time.monotonic()
    with Session(engine, expire_on_commit=False) as session:
        model_day = asyncio.run(wait_and_claim(session, second))
    finisher.join()
    assert time.monotonic() - started >= 0.5
    assert model_day.status == "completed" and model_day.value_end == 10_050.0
    assert model_day.claimed_by == "run-a" and model_day.attempts == 1  # never claimed again


def test_a_lapsed_claim_is_taken_over(engine: Engine) -> None:
    crashed = request(engine, "run-a", lease_seconds=0.3)
    with Session(engine) as session:
        claim_model_day(session, crashed.claim)
    with Session(engine, expire_on_commit=False) as session:
        model_day = asyncio.run(wait_and_claim(session, request(engine, "run-b")))
    assert model_day.status == "running" and model_day.claimed_by == "run-b"
    assert model_day.attempts == 2


def test_waiting_ends_after_the_day_time_limit_and_one_lease(engine: Engine) -> None:
    # A live holder renews its claim: the waiter gives up once the holder had its whole day and
    # one more lease to lapse, and the day is not run twice.
    with Session(engine) as session:
        claim_model_day(session, request(engine, "run-a").claim)
    patient = request(engine, "run-b", agent=AgentConfig(day_timeout_s=0.5), lease_seconds=1)
    started = time.monotonic()
    with Session(engine) as session, pytest.raises(PortfolioDayTaken, match="run-a"):
        asyncio.run(wait_and_claim(session, patient))
    assert 1.5 <= time.monotonic() - started < 5


def test_a_day_held_by_a_dead_process_is_taken_over_at_once(engine: Engine) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    holder = f"{socket.gethostname()}:{int(dead.stdout)}/run-killed"  # that pid has exited
    with Session(engine) as session:
        claim_model_day(session, request(engine, holder).claim)  # a 60 s lease, never renewed
    started = time.monotonic()
    with Session(engine, expire_on_commit=False) as session:
        model_day = asyncio.run(wait_and_claim(session, request(engine, "run-b")))
    assert time.monotonic() - started < 2
    assert model_day.claimed_by == "run-b" and model_day.attempts == 2


def test_a_holder_known_stopped_is_taken_over_at_once(engine: Engine) -> None:
    with Session(engine) as session:
        claim_model_day(session, request(engine, "other-host:1/run-a").claim)
    asked = []

    async def stopped(holder: str) -> bool:  # as a crashed Prefect flow run reports it
        asked.append(holder)
        return True

    waiter = request(engine, "run-b")
    with Session(engine, expire_on_commit=False) as session:
        model_day = asyncio.run(claim_when_free(session, waiter.claim, 30, stopped))
    assert asked == ["other-host:1/run-a"] and model_day.claimed_by == "run-b"


def test_a_renewed_claim_outlives_its_lease_and_a_lost_one_stops_renewing(engine: Engine) -> None:
    holder = request(engine, "run-a", lease_seconds=0.4)
    with Session(engine) as session:
        day_id = claim_model_day(session, holder.claim).id

    async def hold_then_wait() -> ModelDay:
        heartbeat = asyncio.create_task(keep_claim(engine, holder.claim, day_id))
        try:
            waiter = request(engine, "run-b", lease_seconds=0.5).claim
            # 1 s of waiting: the holder's 0.4 s lease would have lapsed without the heartbeat.
            with Session(engine) as session, pytest.raises(PortfolioDayTaken):
                await claim_when_free(session, waiter, 0.5)
        finally:
            heartbeat.cancel()
        await asyncio.sleep(0.6)  # no more heartbeats: the lease lapses
        with Session(engine, expire_on_commit=False) as session:
            return await claim_when_free(session, request(engine, "run-c").claim, 1)

    taken = asyncio.run(hold_then_wait())
    assert taken.claimed_by == "run-c"
    assert not renew_claim(engine, holder.claim, day_id)  # the old holder lost it


@pytest.fixture
def run_id(engine: Engine) -> int:
    with Session(engine) as session:
        run = Run(name="claims", models=["momentum"])
        session.add(run)
        session.commit()
        return run.id


def claim_of(run_id: int, claimant: str, lease_seconds: float = 60.0) -> Claim:
    """A claim on the test day straight from the store's API, with no agent in sight."""
    return Claim(
        run_id=run_id,
        model="momentum",
        portfolio="t/momentum",
        day=DAY,
        claimant=claimant,
        lease_seconds=lease_seconds,
    )


def test_the_claimant_reclaims_its_own_live_day(session: Session, run_id: int) -> None:
    first = claim_model_day(session, claim_of(run_id, "run-a"))
    again = claim_model_day(session, claim_of(run_id, "run-a"))  # a retry of the same simulator
    assert again.id == first.id and again.claimed_by == "run-a"
    assert again.status == "running" and again.attempts == 2


def test_a_live_claim_is_refused_at_once(session: Session, run_id: int) -> None:
    claim_model_day(session, claim_of(run_id, "run-a"))
    with pytest.raises(PortfolioDayTaken, match="run-a"):
        claim_model_day(session, claim_of(run_id, "run-b"))


def test_a_failed_day_is_claimed_again(session: Session, run_id: int) -> None:
    model_day = claim_model_day(session, claim_of(run_id, "run-a"))
    model_day.status, model_day.error = "failed", "APITimeoutError: slow"
    session.add(model_day)
    session.commit()
    retried = claim_model_day(session, claim_of(run_id, "run-b"))
    assert retried.status == "running" and retried.claimed_by == "run-b"
    assert retried.error is None and retried.attempts == 2


def test_the_overtaken_simulator_no_longer_owns_the_day(session: Session, run_id: int) -> None:
    model_day = claim_model_day(session, claim_of(run_id, "run-a", lease_seconds=0.01))
    time.sleep(0.05)  # run-a's lease lapses
    claim_model_day(session, claim_of(run_id, "run-b"))
    with pytest.raises(PortfolioDayTaken, match="results are dropped"):
        owned_model_day(session, claim_of(run_id, "run-a"), model_day.id)
    owned = owned_model_day(session, claim_of(run_id, "run-b"), model_day.id)
    assert owned.claimed_by == "run-b" and owned.lease_until is None


def test_skipping_records_why_and_leaves_completed_or_held_days(
    engine: Engine, run_id: int
) -> None:
    skipped = skip_model_day(
        engine, claim_of(run_id, "run-a"), "model-failed", "model failed on 2025-01-03"
    )
    assert skipped is not None and skipped.status == "skipped"
    assert skipped.skip_reason == "model-failed" and skipped.lease_until is None
    with Session(engine) as session:
        claim_model_day(session, claim_of(run_id, "run-b"))  # a live simulator now holds the day
    assert skip_model_day(engine, claim_of(run_id, "run-c"), "model-failed", "x") is None
    with Session(engine) as session:
        session.execute(update(ModelDay).values(status="completed", lease_until=None))
        session.commit()
    done = skip_model_day(engine, claim_of(run_id, "run-c"), "model-failed", "x")
    assert done is not None and done.status == "completed" and done.claimed_by == "run-b"
