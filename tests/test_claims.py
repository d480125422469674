"""Model-day claims: a day held by another live simulator is waited for, never run twice."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import date

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agents.session import ModelDayRequest, claim_model_day, claim_when_free
from configs.loader import AgentConfig, ModelConfig
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
        claim_model_day(session, first)
    finisher = complete_later(engine, 0.6)
    started = time.monotonic()
    with Session(engine, expire_on_commit=False) as session:
        model_day = asyncio.run(claim_when_free(session, second))
    finisher.join()
    assert time.monotonic() - started >= 0.5
    assert model_day.status == "completed" and model_day.value_end == 10_050.0
    assert model_day.claimed_by == "run-a" and model_day.attempts == 1  # never claimed again


def test_a_lapsed_claim_is_taken_over(engine: Engine) -> None:
    crashed = request(engine, "run-a", lease_seconds=0.3)
    with Session(engine) as session:
        claim_model_day(session, crashed)
    with Session(engine, expire_on_commit=False) as session:
        model_day = asyncio.run(claim_when_free(session, request(engine, "run-b")))
    assert model_day.status == "running" and model_day.claimed_by == "run-b"
    assert model_day.attempts == 2


def test_waiting_ends_after_the_day_time_limit(engine: Engine) -> None:
    with Session(engine) as session:
        claim_model_day(session, request(engine, "run-a"))
    patient = request(engine, "run-b", agent=AgentConfig(day_timeout_s=0.5, lease_seconds=1))
    started = time.monotonic()
    with Session(engine) as session, pytest.raises(PortfolioDayTaken, match="run-a"):
        asyncio.run(claim_when_free(session, patient))
    assert 0.5 <= time.monotonic() - started < 5
