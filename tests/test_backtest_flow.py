"""The backtest flow under a Prefect test server: order, outcomes, caching, catch-up, errors."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import date
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from sqlmodel import Session, select

from flows.backtest import backtest
from models.seals import chain_heads
from models.tables import ModelDay, Run
from tests.openai_stub import OpenAIStub, Reply

KEY = "sk-flow-test-5d1e"
pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AITRADER_TEST_KEY", KEY)
    with OpenAIStub() as server:
        yield server


@pytest.fixture
def store(flow_store):
    return flow_store


def write_config(path: Path, stub: OpenAIStub, **llm_overrides) -> str:
    config = {
        "name": "flowtest",
        "universe": "megacaps",
        "start_date": "2025-01-02",
        "end_date": "2025-01-10",
        "market": {"source": "synthetic", "seed": 3, "start": "2024-11-01", "end": "2025-01-31"},
        "agent": {
            "max_steps": 6,
            "retries": 2,
            "retry_delay_s": 0.1,
            "day_timeout_s": 30,
            "lease_seconds": 60,
            "outage_window_s": 0,  # the task's retries are under test, not the session's
        },
        "models": [
            {"name": "equal-weight", "strategy": "equal-weight"},
            {
                "name": "llm",
                "basemodel": "stub-model",
                "base_url": stub.base_url,
                "api_key_env": "AITRADER_TEST_KEY",
                "max_retries": 0,
                "timeout_s": 5,
                **llm_overrides,
            },
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run(**parameters):
    return asyncio.run(backtest(**parameters, return_state=True))


async def subflow_names(parent_id) -> list[str]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            ),
            sort="START_TIME_ASC",
        )
    return [r.name for r in runs]


async def artifacts_of(flow_run_id) -> dict:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key or a.type: a for a in found}


def test_days_run_in_order_and_everything_is_recorded(store, stub, tmp_path) -> None:
    config = write_config(tmp_path / "c.yaml", stub)
    state = run(start=date(2025, 1, 2), end=date(2025, 1, 10), config=config)
    assert state.is_completed() and state.name == "Completed", state.message
    days = ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08", "2025-01-10"]
    assert asyncio.run(subflow_names(state.state_details.flow_run_id)) == [f"day-{d}" for d in days]
    assert stub.calls == len(days)  # one LLM call per model-day of the stub model
    with Session(store) as session:
        (run_row,) = session.exec(select(Run)).all()
        assert run_row.status == "completed" and run_row.flow_run_id
        model_days = session.exec(select(ModelDay)).all()
        assert len(model_days) == 12 and {d.status for d in model_days} == {"completed"}
    artifacts = asyncio.run(artifacts_of(state.state_details.flow_run_id))
    board = json.loads(artifacts["leaderboard"].data)
    assert [row["model"] for row in board][-1] == "QQQ" and len(board) == 3
    assert artifacts["progress"].data == 100.0
    assert len(json.loads(artifacts["daily-values"].data)) == 12
    assert {row["model"]: row["chain_head"] for row in board}["equal-weight"] is not None
    heads = {row["model"]: row for row in json.loads(artifacts["chain-heads"].data)}
    with Session(store) as session:
        sealed = chain_heads(session)
    assert len(heads) == 2 and all(
        sealed[row["portfolio"]] == (6, row["head"]) and row["days"] == 6 for row in heads.values()
    )
    report = artifacts["backtest-report"].data
    assert "| rank | model |" in report
    png = base64.b64decode(report.split("data:image/png;base64,")[1].rstrip(")\n"))
    assert png.startswith(b"\x89PNG")


async def flow_run_states(flow_run_id) -> tuple[int, list[tuple[str, str | None]]]:
    """The run's count of attempts and its states in order, as (type, message)."""
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        states = await client.read_flow_run_states(flow_run_id)
    return flow_run.run_count, [(s.type.value, s.message) for s in states]


def test_progress_is_the_running_state_message_and_counts_no_new_run(
    store, stub, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("flows.backtest.PROGRESS_INTERVAL_S", 0.0)  # report after every day
    monkeypatch.setattr("flows.backtest.STATE_PROGRESS_INTERVAL_S", 0.0)
    config = write_config(tmp_path / "c.yaml", stub)
    state = run(start=date(2025, 1, 2), end=date(2025, 1, 7), config=config)
    assert state.is_completed(), state.message
    run_count, states = asyncio.run(flow_run_states(state.state_details.flow_run_id))
    assert run_count == 1  # several Running states, one attempt: retries and the UI stay right
    shown = [message for kind, message in states if kind == "RUNNING" and message]
    every_day = [
        "1/4 days, through 2025-01-02: 2 simulated, 0 already done",
        "2/4 days, through 2025-01-03: 4 simulated, 0 already done",
        "3/4 days, through 2025-01-06: 6 simulated, 0 already done",
        "4/4 days, through 2025-01-07: 8 simulated, 0 already done",
    ]
    # Sent in the background: one overtaken while another was on its way is skipped, but they
    # come in order and the last day's always arrives before the final state.
    assert len(shown) >= 2  # so run_count 1 above covers several Running transitions
    assert shown == [m for m in every_day if m in shown] and shown[-1] == every_day[-1]
    assert states[-1] == ("COMPLETED", "4 day(s), 8 model-day(s): 8 simulated, 0 already done")


def test_a_rerun_of_a_finished_range_counts_every_model_day_as_already_done(
    store, stub, tmp_path
) -> None:
    config = write_config(tmp_path / "c.yaml", stub)
    first = run(start=date(2025, 1, 2), end=date(2025, 1, 3), config=config)
    assert first.message == "2 day(s), 4 model-day(s): 4 simulated, 0 already done"
    calls = stub.calls
    again = run(start=date(2025, 1, 2), end=date(2025, 1, 3), config=config)
    assert again.message == "2 day(s), 4 model-day(s): 0 simulated, 4 already done"
    assert stub.calls == calls  # nothing ran: Prefect's cache and the store answered
    counts = asyncio.run(again.aresult()).counts
    assert (counts.simulated, counts.already_done, counts.failed, counts.skipped) == (0, 4, 0, 0)
    with Session(store) as session:
        assert session.exec(select(Run).order_by(Run.id.desc())).first().message == again.message


def test_state_progress_never_holds_up_the_flow_and_keeps_the_latest(monkeypatch) -> None:
    from flows import flow_run_state

    sent: list[str] = []

    async def slow_api(message: str) -> None:
        await asyncio.sleep(0.2 if message != "stuck" else 60)
        sent.append(message)

    monkeypatch.setattr(flow_run_state, "show_progress", slow_api)

    async def scenario() -> float:
        progress = flow_run_state.StateProgress(interval_s=60)
        progress.show("day 1")
        await asyncio.sleep(0.05)  # on its way
        started = asyncio.get_running_loop().time()
        progress.show("day 2")  # overtaken by day 3 before day 1 has arrived
        progress.show("day 3")
        queued_s = asyncio.get_running_loop().time() - started
        await progress.close()  # day 3 is sent now, not after the interval
        stuck = flow_run_state.StateProgress(interval_s=60)
        stuck.show("stuck")
        await stuck.close(timeout_s=0.1)  # an API that never answers is given up on
        return queued_s

    started = time.monotonic()
    assert asyncio.run(scenario()) < 0.05
    assert sent == ["day 1", "day 3"] and time.monotonic() - started < 5


def test_progress_never_revives_a_cancelled_run(monkeypatch) -> None:
    from prefect import flow
    from prefect.states import Cancelling, Running

    from flows.flow_run_state import show_progress

    @flow
    def placeholder() -> None: ...

    async def scenario():
        async with get_client() as client:
            created = await client.create_flow_run(placeholder, state=Running())
            await client.set_flow_run_state(created.id, Cancelling(), force=True)
        monkeypatch.setenv("PREFECT__FLOW_RUN_ID", str(created.id))
        await show_progress("1/4 days")
        return await flow_run_states(created.id)

    run_count, states = asyncio.run(scenario())
    assert states[-1][0] == "CANCELLING" and all(m != "1/4 days" for _, m in states)
    assert run_count == 1


def test_a_finished_range_is_answered_without_llm_calls(store, stub, tmp_path) -> None:
    config = write_config(tmp_path / "c.yaml", stub)
    first = run(start=date(2025, 1, 2), end=date(2025, 1, 7), config=config)
    calls = stub.calls
    assert first.is_completed() and calls == 4
    again = run(start=date(2025, 1, 2), end=date(2025, 1, 7), config=config)
    assert again.is_completed() and stub.calls == calls  # zero LLM calls the second time
    # A change to the model's configuration is a new portfolio: it is simulated afresh.
    changed = write_config(tmp_path / "c2.yaml", stub, temperature=0.5)
    third = run(start=date(2025, 1, 2), end=date(2025, 1, 7), config=changed)
    assert third.is_completed() and stub.calls == calls + 4
    with Session(store) as session:
        portfolios = {d.portfolio for d in session.exec(select(ModelDay))}
        assert len(portfolios) == 3  # equal-weight's, and two of the llm's


def test_catch_up_then_up_to_date(store, stub, tmp_path) -> None:
    config = write_config(tmp_path / "c.yaml", stub)
    first = run(config=config)
    assert first.is_completed() and first.name == "Completed"
    assert stub.calls == 6  # 2025-01-02 to the config's end date, 2025-01-10
    again = run(config=config)
    assert again.name == "UpToDate" and again.is_completed()
    assert "2025-01-10" in again.message and stub.calls == 6


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"start": date(2025, 1, 10), "end": date(2025, 1, 2)}, "end 2025-01-02 is before start"),
        ({"models": ["nope"]}, "unknown model 'nope'"),
        ({"start": date(2031, 1, 2), "end": date(2031, 1, 9)}, "no price data between"),
    ],
)
def test_invalid_parameters_fail_the_run_at_once(store, stub, tmp_path, parameters, message):
    config = write_config(tmp_path / "c.yaml", stub)
    state = run(config=config, **parameters)
    assert state.is_failed()
    assert message in state.message
    with Session(store) as session:
        assert session.exec(select(Run)).all() == []


def test_a_failed_model_sits_out_the_rest_and_the_run_is_partial(store, stub, tmp_path) -> None:
    config = write_config(tmp_path / "c.yaml", stub)
    stub.queue(Reply(text="<FINISH_SIGNAL>"), Reply(status=400))  # day 2: a permanent error
    state = run(start=date(2025, 1, 2), end=date(2025, 1, 8), config=config)
    assert state.is_completed() and state.name == "Partial"
    assert "llm (on 2025-01-03)" in state.message
    _, states = asyncio.run(flow_run_states(state.state_details.flow_run_id))
    last_progress = [m for kind, m in states if kind == "RUNNING" and m][-1]
    assert last_progress == (
        "5/5 days, through 2025-01-08: 6 simulated, 0 already done, 1 failed, 3 skipped; "
        "failed: llm"
    )
    assert stub.calls == 2  # not retried (400 is not transient), not called on later days
    with Session(store) as session:
        rows = {(d.model, str(d.day)): d for d in session.exec(select(ModelDay))}
        assert rows[("llm", "2025-01-03")].status == "failed"
        later = rows[("llm", "2025-01-06")]
        assert later.status == "skipped" and later.skip_reason == "model-failed"
        days = ("2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08")
        assert all(rows[("equal-weight", d)].status == "completed" for d in days)
        assert session.exec(select(Run)).one().status == "partial"


def test_transient_failures_are_retried_by_the_task(store, stub, tmp_path) -> None:
    config = write_config(tmp_path / "c.yaml", stub)
    stub.queue(Reply(status=503), Reply(status=429), Reply(text="<FINISH_SIGNAL>"))
    state = run(start=date(2025, 1, 2), end=date(2025, 1, 2), config=config)
    assert state.is_completed() and state.name == "Completed", state.message
    assert stub.calls == 3
    with Session(store) as session:
        llm_day = session.exec(select(ModelDay).where(ModelDay.model == "llm")).one()
        assert llm_day.status == "completed" and llm_day.attempts == 3


def test_the_api_key_reaches_no_store_log_or_artifact(store, stub, tmp_path) -> None:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from sqlalchemy import text

    from models.tables import SQLModel

    config = write_config(tmp_path / "c.yaml", stub)
    stub.queue(Reply(status=401))  # an authentication error message, too, must not echo the key
    state = run(start=date(2025, 1, 2), end=date(2025, 1, 3), config=config)
    assert state.name == "Partial" and stub.headers[0]["authorization"] == f"Bearer {KEY}"
    flow_run_id = state.state_details.flow_run_id
    texts = [json.dumps(a.data) for a in asyncio.run(artifacts_of(flow_run_id)).values()]

    async def logs() -> list[str]:
        async with get_client() as client:
            found = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
        return [entry.message for entry in found]

    texts += asyncio.run(logs())
    with store.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            texts += [str(row) for row in connection.execute(text(f'SELECT * FROM "{table.name}"'))]
    assert len(texts) > 20
    assert not [t for t in texts if KEY in t]


def test_a_spent_budget_skips_the_remaining_llm_days(store, stub, tmp_path) -> None:
    config = write_config(tmp_path / "c.yaml", stub)
    state = run(start=date(2025, 1, 2), end=date(2025, 1, 7), config=config, budget_tokens=100)
    assert state.is_completed() and state.name == "Completed", state.message
    assert stub.calls == 1  # 120 tokens on the first day spend the budget of 100
    with Session(store) as session:
        llm = {str(d.day): d for d in session.exec(select(ModelDay).where(ModelDay.model == "llm"))}
        assert llm["2025-01-02"].status == "completed"
        assert {(d.status, d.skip_reason) for day, d in llm.items() if day > "2025-01-02"} == {
            ("skipped", "budget")
        }
        others = session.exec(select(ModelDay).where(ModelDay.model == "equal-weight")).all()
        assert len(others) == 4 and {d.status for d in others} == {"completed"}


async def subflow_parameters(parent_id) -> list[dict]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            )
        )
    return [r.parameters for r in runs]


def test_a_resolved_trigger_reaches_the_flow_without_being_resolved_again(
    store, stub, tmp_path, monkeypatch
) -> None:
    from flows.backtest import run_resolved
    from flows.parameters import BacktestParameters
    from flows.preflight import preflight

    config = write_config(tmp_path / "c.yaml", stub)
    asked = BacktestParameters(start=date(2025, 1, 2), end=date(2025, 1, 3), config=config)
    trigger = preflight(asked)

    def resolved_again(params: BacktestParameters) -> None:
        raise AssertionError(f"resolved twice: {params}")

    monkeypatch.setattr("flows.backtest.resolve_config", resolved_again)
    rendered: dict = {}
    state = asyncio.run(run_resolved(trigger, rendered))
    assert state.is_completed() and state.name == "Completed", state.message
    # The run's resources travel to each day as a parameter Prefect neither walks nor stores.
    days = asyncio.run(subflow_parameters(state.state_details.flow_run_id))
    assert len(days) == 2 and all(day["resources"] == "<RunResources>" for day in days)
    # The report the flow rendered for its artifacts comes back for the CLI to write, as the
    # store would render it now.
    from analysis.report import render_report
    from models.engine import get_engine

    (run_id, report) = rendered.popitem()
    with Session(get_engine()) as session:
        again = render_report(session, run_id)
    assert report.markdown == again.markdown, "markdown"
    assert report.equity_png == again.equity_png, "png"


def test_a_model_day_task_runs_with_its_resources_outside_any_flow(store, stub, tmp_path) -> None:
    # No process-wide registry: whoever holds the run's resources can run one of its days.
    from agents.budget import RunBudget
    from configs.loader import load_config
    from flows.backtest import _start
    from flows.plan import plan_backtest
    from market_data.provision import ensure_market
    from models.engine import get_engine
    from tasks.model_day import model_day_key, simulate_model_day

    engine, day = get_engine(), date(2025, 1, 2)
    config = load_config(write_config(tmp_path / "c.yaml", stub))
    with Session(engine, expire_on_commit=False) as session:
        ensure_market(session, config)
        plan = plan_backtest(session, config, day, day, ["equal-weight"])
    resources = _start(engine, plan, replay=False, budget=RunBudget())
    key = model_day_key(engine, plan.models[0].portfolio, day, config.initial_cash)
    result = asyncio.run(simulate_model_day.fn("equal-weight", *key.task_inputs(), resources))
    assert result.status == "completed" and result.model == "equal-weight"
