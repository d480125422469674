"""The backtest's progress bar counts the model-days the market's calendar plans, not 252 a year."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session

from deployments.backtest_cli import _progress, planned_model_days
from models.engine import create_store_engine
from models.tables import ModelDay, ModelDayStatus, Run

JANUARY = (date(2025, 1, 2), date(2025, 1, 31))


def run_on(market: str, models: int = 1, trials: int = 1) -> Run:
    """A run of `models` models and `trials` trials on `market` over January 2025."""
    return Run(
        name="progress",
        config={"market": {"name": market, "source": "files"}},
        models=[f"m{n}" for n in range(models)],
        portfolios={f"m{n}#t{t}": f"p{n}-{t}" for n in range(models) for t in (1, 2)},
        start_date=JANUARY[0],
        end_date=JANUARY[1],
        trials=trials,
    )


@pytest.mark.parametrize(
    ("market", "sessions"),
    [
        ("nasdaq100", 20),  # XNYS: New Year, the 9 January closure and MLK day are not sessions
        ("nasdaq100-hourly", 20),  # the same days; an hourly day is one model-day
        ("crypto", 30),  # every calendar day, where 252 a year would say 21
        ("sse50", 18),  # XSHG: the Spring Festival from 28 January
    ],
)
def test_planned_model_days_follow_the_markets_calendar(market: str, sessions: int) -> None:
    assert planned_model_days(run_on(market)) == sessions
    assert planned_model_days(run_on(market, models=3, trials=2)) == sessions * 3 * 2


def test_the_progress_counts_finished_days_against_the_planned_ones(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    try:
        with Session(engine) as session:
            run = run_on("crypto", models=2, trials=2)
            session.add(run)
            session.commit()
            statuses = [ModelDayStatus.COMPLETED, ModelDayStatus.SKIPPED, ModelDayStatus.RUNNING]
            for n, status in enumerate(statuses):
                for model, portfolio in (("m0", "p0-1"), ("m1", "p1-2")):
                    day = date(2025, 1, 2 + n)
                    session.add(
                        ModelDay(
                            run_id=run.id, model=model, portfolio=portfolio, day=day, status=status
                        )
                    )
            session.commit()
            run_id = run.id
        assert _progress(engine, newest_before=0) == (4, 30 * 2 * 2, f"run {run_id}: model-days")
        assert _progress(engine, newest_before=run_id) == (0, 0, "")
    finally:
        engine.dispose()
