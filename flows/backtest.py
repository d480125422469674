"""The backtest flow: trading days in order, each a subflow fanning out one task per model (per
model and trial, when a backtest repeats each model in several independent trials).

No `from __future__ import annotations` here: Prefect validates flow parameters from the
annotations, and a served flow is rebuilt in another process.
"""

import asyncio
import contextlib
import time
import uuid
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed, Failed
from prefect.tasks import exponential_backoff
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent_tools.news import NewsArchive
from agents.budget import RunBudget
from agents.types import ModelDayResult
from analysis.report import Report, leaderboard_artifact, render_report, report_title
from configs.loader import AppConfig, BudgetConfig
from flows.flow_run_state import StateProgress, mark_flow_run_crashed
from flows.parameters import BacktestParameters
from flows.plan import BacktestPlan, plan_backtest
from flows.preflight import ResolvedTrigger, cutoff_warnings, resolve_config
from market_data.provision import ensure_market
from models.claims import skip_model_day
from models.engine import get_engine
from models.errors import AITraderError
from models.liveness import holder_name
from models.prices import PriceBook
from models.results import model_days_frame
from models.runs import (
    finish_run,
    keep_run_alive,
    mark_crashed_runs,
    report_progress,
    start_run,
)
from models.seals import chain_heads
from models.tables import Run, RunStatus
from tasks.holders import FlowRunWatch
from tasks.model_day import model_day_key, simulate_model_day
from tasks.refresh import refresh_prices
from tasks.runtime import RunResources

PROGRESS_INTERVAL_S = 1.0
STATE_PROGRESS_INTERVAL_S = 5.0  # three API calls each: see flows/flow_run_state.py


class Counts(BaseModel):
    """Model-days by what happened to them: each is counted in exactly one of these."""

    simulated: int = 0  # run to completion now
    already_done: int = 0  # completed earlier (a cached task, or found completed in the store)
    failed: int = 0
    skipped: int = 0  # not run: the budget was spent, or its model had failed
    partial: int = 0  # an hourly day in progress: the sessions begun so far traded

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(**{k: getattr(self, k) + getattr(other, k) for k in Counts.model_fields})

    @property
    def total(self) -> int:
        return self.simulated + self.already_done + self.failed + self.skipped + self.partial

    def describe(self) -> str:
        """`58 simulated, 2 already done` (`, 1 failed, 3 skipped, 2 partial` when any)."""
        text = f"{self.simulated} simulated, {self.already_done} already done"
        for name in ("failed", "skipped", "partial"):
            if getattr(self, name):
                text += f", {getattr(self, name)} {name}"
        return text


class DayOutcome(BaseModel):
    """What one trading day ended as, per model (`failed` by label: `name`, or `name#t<trial>`)."""

    day: date
    results: list[ModelDayResult]
    failed: dict[str, str]
    sat_out: list[str] = []  # labels of models that had failed earlier: skipped today

    @property
    def counts(self) -> Counts:
        """Today's model-days, each counted once (a task that did not finish counts as failed)."""
        statuses = [r.status for r in self.results if not r.already_done]
        return Counts(
            simulated=statuses.count("completed"),
            already_done=sum(r.already_done for r in self.results),
            failed=len(self.failed),
            skipped=statuses.count("skipped") + len(self.sat_out),
            partial=statuses.count("partial"),
        )


class BacktestSummary(BaseModel):
    """What the backtest flow returns."""

    run_id: int | None
    status: str
    days: int
    model_days: int
    counts: Counts
    failed: dict[str, str]
    message: str


@flow(name="trading-day", flow_run_name="day-{day}", log_prints=False)
async def trading_day(day: date, models: list[str], resources: RunResources) -> DayOutcome:
    """One trading day: every model's day concurrently, each from its last completed book.

    `models` are the labels of the model trials active today (`ModelPlan.label`: the model's name,
    `name#t<trial>` after trial 1); one task each, at most `max_concurrent_models` at once. A model
    that fails comes back in the outcome's `failed`.
    """
    plan = resources.plan
    limit = asyncio.Semaphore(plan.config.agent.max_concurrent_models)
    agent = plan.config.agent
    task = simulate_model_day.with_options(
        retries=agent.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=agent.retry_delay_s)(agent.retries),
        timeout_seconds=agent.day_timeout_s + 60,  # a backstop: the session times itself out
    )

    async def one(label: str):
        request = resources.request(label, day)
        key = model_day_key(resources.engine, request.portfolio, day, request.initial_cash)
        async with limit:
            return await task(label, *key.task_inputs(), resources, return_state=True)

    states = await asyncio.gather(*(one(label) for label in models))
    results, failed = [], {}
    for label, state in zip(models, states, strict=True):
        if state.is_completed():
            result: ModelDayResult = await state.aresult()
            if state.name == "Cached":  # Prefect answered from its cache: nothing ran today
                result = result.model_copy(update={"already_done": True})
            results.append(result)
            if result.status == "failed":  # a budget skip is not the model's failure
                failed[label] = result.error or result.status
        else:
            failed[label] = state.message or state.name
    outcome = DayOutcome(day=day, results=results, failed=failed)
    if failed and results:
        return Completed(name="Partial", message=f"{len(failed)} model(s) failed", data=outcome)
    if failed:
        return Failed(message=f"every model failed on {day}", data=outcome)
    return outcome


async def _mark_flow_run_crashed(engine: Engine, run_id: int) -> None:
    """Tell Prefect too, so its UI does not show the dead run as running forever."""
    with Session(engine) as session:
        flow_run_id = session.exec(select(Run.flow_run_id).where(Run.id == run_id)).first()
    if flow_run_id is not None:
        await mark_flow_run_crashed(flow_run_id, f"run {run_id}: its process died")


def run_status(failed_models: dict[str, str], models: list[str]) -> RunStatus:
    """Completed when no model failed, Failed when every model did, Partial in between; each
    trial of a model counts as a model (`models` and `failed_models` hold labels)."""
    if not failed_models:
        return RunStatus.COMPLETED
    if set(models) <= set(failed_models):
        return RunStatus.FAILED
    return RunStatus.PARTIAL


def _flow_run_id() -> str | None:
    return str(flow_run.id) if flow_run.id else None


def _run_name() -> str:
    """`<config>: <first>-to-<last>`, or `<config>: catch-up`, for the Prefect UI's run list."""
    parameters = flow_run.parameters
    config = Path(parameters["config"]).stem if parameters.get("config") else "default"
    if parameters.get("start") or parameters.get("end"):
        span = f"{parameters.get('start') or 'first'}-to-{parameters.get('end') or 'last'}"
        return f"{config}: backtest-{span}"
    return f"{config}: catch-up"


# A trigger the CLI or the Python API resolved in this process (`run_resolved`), for the flow
# run it starts. The flow's signature is its REST parameter schema, so it cannot take one as a
# parameter; the variable is set only while that one call is awaited.
_HANDED: ContextVar[ResolvedTrigger | None] = ContextVar("handed_trigger", default=None)
# Where that call wants the report the flow renders for its artifacts, by run id: the CLI then
# writes the same files without ranking and drawing the run a second time.
_RENDERED: ContextVar[dict[int, Report] | None] = ContextVar("rendered_reports", default=None)


async def run_resolved(
    trigger: ResolvedTrigger, rendered: dict[int, Report] | None = None
) -> State:
    """The backtest flow's final state, run on a trigger the preflight resolved (not again);
    `rendered` receives the run's report as the flow renders it."""
    tokens = _HANDED.set(trigger), _RENDERED.set(rendered)
    try:
        return await backtest(**trigger.params.model_dump(), return_state=True)
    finally:
        _HANDED.reset(tokens[0])
        _RENDERED.reset(tokens[1])


def _handed_over(arguments: dict[str, Any]) -> ResolvedTrigger | None:
    """The resolved trigger handed to this flow call with exactly these arguments, if any."""
    handed = _HANDED.get()
    if handed is None:
        return None
    given = {name: arguments[name] for name in BacktestParameters.model_fields}
    return handed if handed.params.model_dump() == given else None


# The parameters are checked by BacktestParameters, not by Prefect, so a bad REST trigger fails
# with the same one-line reason as a bad CLI or notebook call.
@flow(name="backtest", flow_run_name=_run_name, log_prints=False, validate_parameters=False)
async def backtest(
    start: date | None = None,
    end: date | None = None,
    models: list[str] | None = None,
    config: str | None = None,
    replay: bool = False,
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    trials: int | None = None,
    refresh: bool = False,
):
    """Simulate `models` over trading days, in `trials` independent trials each (default: the
    config's); with no dates, catch every model's trials up to the last trading day with prices
    (with `refresh`, fetched first)."""
    logger = get_run_logger()
    engine = get_engine()
    for run_id in mark_crashed_runs(engine):
        logger.warning(f"run {run_id} had stopped without finishing: marked crashed")
        await _mark_flow_run_crashed(engine, run_id)
    try:
        handed = _handed_over(locals())
        asked = handed.params if handed else BacktestParameters.of_call(locals())
        budget_usd, budget_tokens, replay = asked.budget_usd, asked.budget_tokens, asked.replay
        fetched = await _refresh(asked.config) if asked.refresh else ""
        settings = (handed or resolve_config(asked)).config
        plan = _plan(engine, settings, asked, fetched)
    except AITraderError as exc:
        # A bad trigger: fail at once with the reason, no traceback to dig through.
        logger.error(str(exc))
        return Failed(message=str(exc))
    if not plan.days:
        message = "; ".join(filter(None, [plan.up_to_date, fetched]))
        logger.info(message)
        return Completed(name="UpToDate", message=message)
    limits = settings.budget or BudgetConfig()
    budget = RunBudget(
        limit_usd=budget_usd if budget_usd is not None else limits.usd,
        limit_tokens=budget_tokens if budget_tokens is not None else limits.tokens,
    )
    resources = _start(engine, plan, replay, budget)
    lease = settings.agent.lease_seconds
    heartbeat = asyncio.create_task(
        keep_run_alive(engine, resources.run_id, resources.claimant, lease)
    )
    in_state = StateProgress(STATE_PROGRESS_INTERVAL_S)
    try:
        outcomes, failed_models = await _simulate_days(plan, resources, in_state)
    finally:
        heartbeat.cancel()
        await in_state.close()
    return await _finish(engine, resources.run_id, plan, outcomes, failed_models)


async def _refresh(config: str | None) -> str:
    """Fetch the market's newest prices; what was fetched, or why not (the catch-up then goes
    on with what the store holds, and the next run fetches again)."""
    logger = get_run_logger()
    try:
        report = refresh_prices(config)  # a sync task: the flow waits for it, as it should
    except AITraderError as exc:
        message = f"refresh failed: {exc}"
        logger.warning(message)
        return message
    logger.info(report.message)
    return report.message


def _plan(
    engine: Engine, settings: AppConfig, asked: BacktestParameters, fetched: str
) -> BacktestPlan:
    """The config's market provided, the plan of model-days to simulate (after a refresh, only
    through days whose whole universe is priced). Made here even when the preflight planned: the
    store may have changed since (a files import, a synthetic top-up, another run's days)."""
    logger = get_run_logger()
    with Session(engine, expire_on_commit=False) as session:
        logger.info(ensure_market(session, settings))
        plan = plan_backtest(
            session,
            settings,
            asked.start,
            asked.end,
            asked.models,
            asked.trials,
            whole_days_only=asked.refresh,
        )
    plan.note = "; ".join(filter(None, [fetched, plan.waiting]))
    for line in cutoff_warnings(plan.models):
        logger.warning(line)
    return plan


def _start(engine: Engine, plan: BacktestPlan, replay: bool, budget: RunBudget) -> RunResources:
    """Store the run and gather what its tasks share: prices, budget, news, its holder name."""
    holder = holder_name(f"run-{uuid.uuid4().hex[:12]}")
    run = start_run(engine, plan.run_record(replay, _flow_run_id()), holder)
    with Session(engine) as session:
        interval = plan.config.market.definition.interval
        prices = PriceBook.load(session, interval, market=plan.market, until=plan.end)
    return RunResources(
        run_id=run.id,
        engine=engine,
        prices=prices,
        plan=plan,
        mode="replay" if replay else "live",
        budget=budget,
        news=NewsArchive(engine),
        claimant=holder,
        lease_seconds=plan.config.agent.lease_seconds,
        holder_stopped=FlowRunWatch(engine),
    )


async def _simulate_days(
    plan: BacktestPlan, resources: RunResources, in_state: StateProgress
) -> tuple[list[DayOutcome], dict[str, str]]:
    """The trading-day subflows, strictly in date order, and the models (trials of one, when
    repeated) that failed, each with its day: a failed model sits out the rest, alone. Progress
    goes to the store, the progress artifact and (`in_state`) the flow run's state message."""
    logger = get_run_logger()
    days = plan.days
    progress = await acreate_progress_artifact(progress=0.0, description="trading days simulated")
    outcomes: list[DayOutcome] = []
    failed_models: dict[str, str] = {}  # label -> the day it failed, from the days' outcomes
    reported = time.monotonic()
    for number, day in enumerate(days, start=1):
        active, sat_out = [], []
        for model_plan in plan.models:
            if day not in model_plan.days:
                continue
            label = model_plan.label
            if label in failed_models:
                reason = f"model failed on {failed_models[label]}"
                skip_model_day(
                    resources.engine, resources.request(label, day).claim, "model-failed", reason
                )
                sat_out.append(label)
            else:
                active.append(label)
        outcome = DayOutcome(day=day, results=[], failed={})
        if active:
            state = await trading_day(day, active, resources, return_state=True)
            outcome = await state.aresult(raise_on_failure=False)
            if isinstance(outcome, BaseException):  # the subflow itself crashed
                outcome = DayOutcome(
                    day=day, results=[], failed=dict.fromkeys(active, str(outcome))
                )
            for label in outcome.failed:
                failed_models.setdefault(label, str(day))
        if active or sat_out:
            outcome = outcome.model_copy(update={"sat_out": sat_out})
            outcomes.append(outcome)
            logger.info(f"{day}: {outcome.counts.describe()}")
        # Progress is reported at most once a second: each update is a round trip to the API.
        if time.monotonic() - reported >= PROGRESS_INTERVAL_S or number == len(days):
            message = _progress_message(number, days, outcomes, failed_models)
            await aupdate_progress_artifact(progress, 100.0 * number / len(days))
            report_progress(resources.engine, resources.run_id, message)
            in_state.show(message)
            reported = time.monotonic()
    return outcomes, failed_models


def _progress_message(
    number: int, days: list[date], outcomes: list[DayOutcome], failed_models: dict[str, str]
) -> str:
    """`12/60 days, through 2025-10-17: 30 simulated, 6 already done` (`; failed: gpt-5` if a
    model failed)."""
    counts = sum((outcome.counts for outcome in outcomes), Counts())
    failed = f"; failed: {', '.join(failed_models)}" if failed_models else ""
    return f"{number}/{len(days)} days, through {days[number - 1]}: {counts.describe()}{failed}"


async def _publish_artifacts(engine, run_id: int) -> None:
    """The run's leaderboard, report, chain heads and daily values, as Prefect artifacts."""
    with Session(engine) as session:
        report = None
        with contextlib.suppress(LookupError):  # nothing completed: no leaderboard to show
            report = render_report(session, run_id)
            if (rendered := _RENDERED.get()) is not None:
                rendered[run_id] = report
        frame = model_days_frame(session, run_id)
        run = session.get(Run, run_id)
        title = report_title(run)
        heads = chain_heads(session, list(run.portfolios.values()), through=run.end_date)
        board = leaderboard_artifact(session, run, report.ranking.rows) if report else []
    if report is not None:
        await acreate_table_artifact(
            key="leaderboard",
            table=board,
            description=f"{title}: every model with its 95% interval and tier",
        )
        await acreate_markdown_artifact(
            key="backtest-report",
            markdown=report.markdown,
            description=f"{title}: leaderboard, intervals and equity curves",
        )
    if heads:
        await acreate_table_artifact(
            key="chain-heads",
            table=[
                {"model": label, "portfolio": p, "days": heads[p][0], "head": heads[p][1]}
                for label, p in run.portfolios.items()
                if p in heads
            ],
            description=f"{title}: each portfolio's sealed chain (aitrader results verify)",
        )
    if not frame.empty:
        values = frame[["day", "model", "trial", "status", "cash", "value", "trades"]].copy()
        values["day"] = values["day"].astype(str)
        await acreate_table_artifact(
            key="daily-values", table=values.to_dict("records"), description=title
        )


async def _finish(
    engine: Engine,
    run_id: int,
    plan: BacktestPlan,
    outcomes: list[DayOutcome],
    failed_models: dict[str, str],
):
    """Leaderboard and report artifacts, the run's final status, and the flow's final state."""
    counts = sum((outcome.counts for outcome in outcomes), Counts())
    await _publish_artifacts(engine, run_id)
    status = run_status(failed_models, [p.label for p in plan.models])
    state = Failed if status == RunStatus.FAILED else Completed
    failed_text = ", ".join(f"{m} (on {d})" for m, d in failed_models.items())
    message = f"{len(plan.days)} day(s), {counts.total} model-day(s): {counts.describe()}" + (
        f"; failed: {failed_text}" if failed_models else ""
    )
    if plan.note:
        message += f"; {plan.note}"
    finish_run(engine, run_id, status, message)
    summary = BacktestSummary(
        run_id=run_id,
        status=status,
        days=len(plan.days),
        model_days=counts.total,
        counts=counts,
        failed=failed_models,
        message=message,
    )
    if status == RunStatus.PARTIAL:
        return Completed(name="Partial", message=message, data=summary)
    return state(message=message, data=summary)


__all__ = ["BacktestSummary", "Counts", "DayOutcome", "backtest", "trading_day"]
