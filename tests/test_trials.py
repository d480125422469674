"""Repeated trials: a portfolio per model and trial, seeds per trial, the flow's fan-out of model x
trial tasks, and resume per trial. Trial 1 is exactly a backtest without trials."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from alembic import command
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner

from agents.chat_models import build_chat_model
from agents.strategies import build_strategy, stable_seed
from agents.types import ModelDayRequest
from configs.loader import AppConfig
from flows.parameters import BacktestParameters
from flows.plan import plan_backtest, portfolio_key
from market_data.synthetic import synthesize_into
from models.engine import alembic_config, create_store_engine, upgrade
from models.errors import PlanError
from models.tables import LLMCall, ModelDay, ModelDayStatus, Run, utcnow
from tests.conftest import ROOT, run_command, wait_for

SYMBOLS = ["AAA", "BBB", "CCC"]
DAYS = [date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8)]


def _config(**changes) -> AppConfig:
    settings = {
        "name": "trials",
        "universe": SYMBOLS,
        "market": {"source": "synthetic", "seed": 3},
        "models": [
            {"name": "hold", "strategy": "equal-weight"},
            {"name": "dice", "strategy": "random", "params": {"seed": 1}},
        ],
    }
    return AppConfig.model_validate({**settings, **changes})


@pytest.fixture
def priced(sqlite_url: str) -> Session:
    engine = create_store_engine(sqlite_url)
    with Session(engine, expire_on_commit=False) as session:
        synthesize_into(session, SYMBOLS, date(2025, 1, 2), date(2025, 1, 31), seed=3)
        session.commit()
        yield session
    engine.dispose()


# --- portfolios, plans and the run record ------------------------------------------------------


def test_trial_one_is_todays_portfolio_and_later_trials_have_their_own() -> None:
    config = _config()
    model = config.model("dice")
    keys = [portfolio_key(config, model, trial) for trial in range(1, 6)]
    assert keys[0] == portfolio_key(config, model)  # a backtest without trials: unchanged
    assert len(set(keys)) == 5
    assert keys[1] == f"{keys[0]}#t2" and keys[4] == f"{keys[0]}#t5"


def test_the_trial_count_is_a_run_setting_not_part_of_a_portfolio() -> None:
    before, after = _config(), _config(trials=7)
    for name in ("hold", "dice"):
        assert portfolio_key(after, after.model(name)) == portfolio_key(before, before.model(name))


@pytest.mark.parametrize("trials", [0, 101])
def test_a_trial_count_out_of_range_is_refused(trials: int) -> None:
    # BacktestParameters is the one home of the range: every trigger passes through it.
    with pytest.raises(PlanError, match=r"trials: Input should be (greater|less) than or equal"):
        BacktestParameters.checked({"trials": trials})
    with pytest.raises(ValueError, match="trials"):
        _config(trials=trials)


def test_a_plan_has_one_part_per_model_and_trial(priced: Session) -> None:
    plan = plan_backtest(priced, _config(), DAYS[0], DAYS[-1], trials=3)
    labels = [p.label for p in plan.models]
    assert labels == ["hold", "hold#t2", "hold#t3", "dice", "dice#t2", "dice#t3"]
    assert all(p.days == DAYS for p in plan.models)
    record = plan.run_record(replay=False, flow_run_id=None)
    assert record.trials == 3 and record.models == ["hold", "dice"]
    assert record.portfolios == {p.label: p.portfolio for p in plan.models}
    assert len(set(record.portfolios.values())) == 6
    # The config's trial count is the default; a trigger's count overrides it.
    assert plan_backtest(priced, _config(trials=2), DAYS[0], DAYS[-1]).trials == 2
    assert plan_backtest(priced, _config(trials=2), DAYS[0], DAYS[-1], trials=1).trials == 1


def test_catch_up_is_per_trial(priced: Session) -> None:
    config = _config(start_date="2025-01-02", end_date="2025-01-08")
    run = Run(name="earlier")
    priced.add(run)
    priced.commit()
    # Trial 1 of hold has done three days already; every other trial has done nothing.
    for day in DAYS[:3]:
        priced.add(
            ModelDay(
                run_id=run.id,
                model="hold",
                portfolio=portfolio_key(config, config.model("hold")),
                day=day,
                status=ModelDayStatus.COMPLETED,
                value_end=10_000.0,
            )
        )
    priced.commit()
    plan = plan_backtest(priced, config, trials=2)
    by_label = {p.label: p for p in plan.models}
    assert by_label["hold"].days == DAYS[3:] and by_label["hold"].last_completed == DAYS[2]
    assert by_label["hold#t2"].days == DAYS and by_label["hold#t2"].last_completed is None
    assert plan.last_simulated is None  # not every trial has simulated anything yet


# --- seeds and records per trial ----------------------------------------------------------------


def test_random_draws_its_seed_from_the_trial_and_trial_one_is_todays() -> None:
    day = "2025-01-02"
    seeds = [
        build_strategy("random", "dice", {"seed": 1}, trial=trial).day_seed(day)
        for trial in (1, 2, 3)
    ]
    assert seeds[0] == stable_seed(1, day, "dice")  # exactly the seed without trials
    assert seeds[1] == stable_seed(1, "trial-2", day, "dice")
    assert len(set(seeds)) == 3
    built = build_chat_model(_config().model("dice"), trial=2)
    assert built.trial == 2 and built.day_seed(day) == seeds[1]


def test_an_llm_gets_a_trial_seed_from_trial_two_on() -> None:
    config = AppConfig.model_validate(
        {"models": [{"name": "gpt", "basemodel": "gpt-x", "api_key_env": "K"}]}
    ).model("gpt")
    environ = {"K": "sk-test"}
    first = build_chat_model(config, environ)
    assert first.seed is None and "seed" not in first._default_params  # requests as today
    assert build_chat_model(config, environ, trial=1).seed is None
    seeds = [build_chat_model(config, environ, trial=t).seed for t in (2, 3)]
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds) and seeds[0] != seeds[1]
    assert build_chat_model(config, environ, trial=2).seed == seeds[0]  # stable


def test_each_trial_is_recorded_and_claimed_on_its_own() -> None:
    config = _config()
    request = ModelDayRequest(
        run_id=1, model=config.model("dice"), day=DAYS[0], portfolio="p", universe=SYMBOLS
    )
    assert request.trial == 1 and request.recorded_model == "dice"
    assert request.claim.trial == 1
    second = request.model_copy(update={"trial": 2, "portfolio": "p#t2"})
    assert second.recorded_model == "dice#t2"
    assert second.claim.trial == 2 and second.claim.model == "dice"


def test_the_migration_makes_existing_rows_trial_one(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO run (id, name, kind, config, config_hash, models, portfolios, market,"
                " initial_cash, benchmark, status, created_at) VALUES (1, 'old', 'backtest', '{}',"
                " '', '[]', '{}', 'real', 10000, 'QQQ', 'completed', '2025-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO modelday (run_id, model, portfolio, day, status, attempts, tokens_in,"
                " tokens_out, cost_usd, cached) VALUES (1, 'm', 'p', '2025-01-02', 'completed',"
                " 1, 0, 0, 0, 0)"
            )
        )
    upgrade(engine)
    with Session(engine) as session:
        assert session.exec(select(ModelDay.trial)).all() == [1]
        assert session.exec(select(Run.trials)).all() == [1]
    engine.dispose()


# --- through the flow -----------------------------------------------------------------------------


@pytest.fixture
def store(flow_store):
    return flow_store


def flow_config(path: Path, **extra) -> str:
    config = {
        "name": "trialflow",
        "universe": "megacaps",
        "start_date": "2025-01-02",
        "end_date": "2025-01-08",
        "market": {"source": "synthetic", "seed": 3, "start": "2024-11-01", "end": "2025-01-31"},
        "agent": {"max_steps": 6, "day_timeout_s": 30, "max_concurrent_models": 4},
        "models": [
            {"name": "equal-weight", "strategy": "equal-weight"},
            {"name": "momentum", "strategy": "momentum", "params": {"top_k": 2, "lookback": 5}},
            {"name": "random", "strategy": "random", "params": {"seed": 1}},
        ],
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run_flow(**parameters):
    from flows.backtest import backtest

    return asyncio.run(backtest(**parameters, return_state=True))


def model_days(engine) -> list[ModelDay]:
    with Session(engine) as session:
        return list(session.exec(select(ModelDay).order_by(ModelDay.id)))


def days_json() -> list[dict]:
    from deployments.cli import app

    result = CliRunner().invoke(app, ["results", "days", "--format", "json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


async def task_run_names(flow_run_id) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    async with get_client() as client:
        days = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[d.id for d in days]))
        )
    return {t.name for t in tasks if "@" in t.name}


def _values(rows: list[ModelDay], model: str, trial: int) -> list[tuple]:
    return [
        (r.day, r.cash_end, r.value_end)
        for r in sorted(rows, key=lambda r: r.day)
        if r.model == model and r.trial == trial
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_a_backtest_without_trials_is_trial_one_everywhere(store, tmp_path) -> None:
    config = flow_config(tmp_path / "c.yaml")
    state = run_flow(start=DAYS[0], end=DAYS[2], config=config)
    assert state.name == "Completed", state.message
    rows = model_days(store)
    assert len(rows) == 9 and {r.trial for r in rows} == {1}
    assert not any("#t" in r.portfolio for r in rows)
    with Session(store) as session:
        run = session.exec(select(Run)).one()
    assert run.trials == 1 and set(run.portfolios) == {"equal-weight", "momentum", "random"}
    listed = days_json()
    assert len(listed) == 9 and {row["trial"] for row in listed} == {1}


@pytest.mark.usefixtures("prefect_harness")
def test_three_trials_differ_only_where_the_model_is_random(store, tmp_path) -> None:
    config = flow_config(tmp_path / "c.yaml")
    state = run_flow(start=DAYS[0], end=DAYS[-1], config=config, trials=3)
    assert state.name == "Completed", state.message
    assert "5 day(s), 45 model-day(s)" in state.message

    rows = model_days(store)
    assert {r.status for r in rows} == {"completed"}
    once = Counter((r.model, r.trial, r.day) for r in rows)
    assert len(once) == 3 * 3 * 5 and set(once.values()) == {1}  # every model-day once per trial
    assert len({(r.model, r.trial): r.portfolio for r in rows}) == len({r.portfolio for r in rows})
    for model in ("equal-weight", "momentum"):  # deterministic: identical trials
        assert _values(rows, model, 1) == _values(rows, model, 2) == _values(rows, model, 3)
    random_trials = [_values(rows, "random", trial) for trial in (1, 2, 3)]
    assert len({tuple(v) for v in random_trials}) == 3  # each trial drew its own orders

    with Session(store) as session:
        run = session.exec(select(Run)).one()
        recorded = set(session.exec(select(LLMCall.model)))
    assert run.trials == 3 and len(run.portfolios) == 9 and "random#t3" in run.portfolios
    assert {"random", "random#t2", "random#t3", "equal-weight#t2"} <= recorded  # one record each
    assert run.models == ["equal-weight", "momentum", "random"]
    listed = days_json()
    assert Counter(row["trial"] for row in listed) == {1: 15, 2: 15, 3: 15}
    # Task runs reach the Prefect API as events, shortly after they ran.
    wanted = {"random@2025-01-02", "random#t2@2025-01-02", "momentum#t3@2025-01-03"}
    wait_for(
        lambda: wanted <= asyncio.run(task_run_names(state.state_details.flow_run_id)),
        30,
        "task runs named by model trial",
    )

    # Trial 1 is the backtest without trials: a run without them finds every day done.
    again = run_flow(start=DAYS[0], end=DAYS[-1], config=config)
    assert again.name == "Completed", again.message
    assert len(model_days(store)) == 45


@pytest.mark.usefixtures("prefect_harness")
def test_a_killed_trial_resumes_alone_and_only_missing_days_run(store, tmp_path) -> None:
    config = flow_config(tmp_path / "c.yaml", trials=2)  # the config's count this time
    first = run_flow(start=DAYS[0], end=DAYS[1], config=config)
    assert first.name == "Completed", first.message
    assert len(model_days(store)) == 3 * 2 * 2
    # A simulator killed on the third day had claimed trial 2 of random, nothing persisted yet.
    portfolio = next(r.portfolio for r in model_days(store) if (r.model, r.trial) == ("random", 2))
    with Session(store) as session:
        session.add(
            ModelDay(
                run_id=1,
                model="random",
                trial=2,
                portfolio=portfolio,
                day=DAYS[2],
                status=ModelDayStatus.RUNNING,
                attempts=1,
                claimed_by="elsewhere:1/run-gone",
                lease_until=utcnow() - timedelta(seconds=5),
            )
        )
        session.commit()

    second = run_flow(start=DAYS[0], end=DAYS[-1], config=config)
    assert second.name == "Completed", second.message
    assert "5 day(s), 30 model-day(s)" in second.message
    rows = model_days(store)
    after = {(r.model, r.trial, r.day): r for r in rows}
    assert len(rows) == len(after) == 3 * 2 * 5  # every model-day once per trial
    assert {r.status for r in rows} == {"completed"}
    for (_, _, day), row in after.items():  # days done before are not simulated again
        assert row.run_id == (1 if day < DAYS[2] else 2), (row.model, row.trial, day)
    taken_over = after[("random", 2, DAYS[2])]
    assert taken_over.attempts == 2 and after[("random", 1, DAYS[2])].attempts == 1
    with Session(store) as session:
        assert session.get(Run, 2).trials == 2


# --- `aitrader backtest --trials` killed and re-run, as a user runs it ---------------------------


def _completed(engine) -> int:
    try:
        with Session(engine) as session:
            query = select(ModelDay).where(ModelDay.status == ModelDayStatus.COMPLETED)
            return len(session.exec(query).all())
    except Exception:  # not created or migrated yet
        return 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_trials_command_killed_and_re_run_resumes_every_trial(tmp_path: Path) -> None:
    import time

    config = tmp_path / "c.yaml"
    # 6 days x 3 models x 3 trials: killed after 24 of the 54 model-days, well into the run.
    flow_config(config, start_date="2025-01-02", end_date="2025-01-10")
    (tmp_path / "prefect").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "COLUMNS": "200",
    }
    env.pop("PREFECT_API_URL", None)  # the command starts its own temporary server
    argv = [sys.executable, "-m", "deployments", "backtest", "--config", str(config)]
    argv += ["--trials", "3", "--reports", str(tmp_path / "reports")]
    engine = create_store_engine(env["DATABASE_URL"])
    killed = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while _completed(engine) < 24:
            assert killed.poll() is None, "the backtest ended before it was killed"
            assert time.monotonic() < deadline, "no progress to kill"
            time.sleep(0.1)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
    with Session(engine) as session:
        done = {
            (d.model, d.trial, d.day): d.run_id
            for d in session.exec(select(ModelDay).where(ModelDay.status == "completed"))
        }
    assert 24 <= len(done) < 54

    rerun = run_command(argv, env, timeout=400)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Completed:" in rerun.stdout, rerun.stdout
    rows = model_days(engine)
    keys = Counter((r.model, r.trial, r.day) for r in rows)
    assert len(keys) == 54 and set(keys.values()) == {1}
    assert {r.status for r in rows} == {"completed"}
    for row in rows:  # what the killed run completed was not simulated again
        key = (row.model, row.trial, row.day)
        if key in done:
            assert row.run_id == done[key], key
    by_trial = {t: _values(rows, "equal-weight", t) for t in (1, 2, 3)}
    assert by_trial[1] == by_trial[2] == by_trial[3]
    assert len({tuple(_values(rows, "random", t)) for t in (1, 2, 3)}) == 3
    engine.dispose()
