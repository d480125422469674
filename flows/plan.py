"""Which model-days a backtest must simulate: explicit dates, or catch-up from each model's book.

Plain Python over the store, so the flow, the CLI and tests share one resolution of a trigger.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from agents.prompt import SYSTEM_PROMPT
from configs.loader import AppConfig, ModelConfig, Universe
from market_data.calendar import next_trading_day, trading_days
from models.errors import ConfigError, PlanError
from models.prices import DAILY, bar_days
from models.tables import ModelDay, ModelDayStatus, RunCreate

# Bump when a change to the session loop or the strategies changes what a model-day does, so
# cached and stored days of the old code are not taken for the new code's.
AGENT_CODE_VERSION = "1"
# How a model-day is scheduled and guarded, not what the model does in it.
OPERATIONAL_AGENT_SETTINGS = {"max_concurrent_models", "lease_seconds"}


class ModelPlan(BaseModel):
    """One model's part of a backtest."""

    model: ModelConfig
    portfolio: str
    days: list[date]
    last_completed: date | None


class BacktestPlan(BaseModel):
    """A resolved trigger: the models, their portfolios and the trading days to simulate."""

    config: AppConfig
    config_hash: str
    market: str
    universe: Universe
    catch_up: bool
    start: date | None
    end: date | None
    models: list[ModelPlan]

    @property
    def days(self) -> list[date]:
        """Every day at least one model simulates, in order."""
        return sorted({day for plan in self.models for day in plan.days})

    def run_record(self, replay: bool, flow_run_id: str | None) -> RunCreate:
        """The store's record of a run simulating this plan."""
        return RunCreate(
            name=self.config.name,
            kind="backtest-replay" if replay else "backtest",
            config=self.config.model_dump(mode="json"),
            config_hash=self.config_hash,
            models=[p.model.name for p in self.models],
            portfolios={p.model.name: p.portfolio for p in self.models},
            start_date=min(self.days),
            end_date=max(self.days),
            market=self.market,
            initial_cash=self.config.initial_cash,
            benchmark=self.universe.benchmark,
            flow_run_id=flow_run_id,
        )

    @property
    def up_to_date(self) -> str:
        """What a catch-up with nothing to do says."""
        return f"up to date: every model has simulated through {self.last_simulated}"

    @property
    def last_simulated(self) -> date | None:
        """The last day every model of the plan has completed."""
        completed = [plan.last_completed for plan in self.models]
        return None if None in completed else min(completed)  # type: ignore[type-var]


def model_fingerprint(config: AppConfig, model: ModelConfig) -> str:
    """A hash of everything that decides what a model does on a day: its settings, the prompt,
    the agent code version, the universe, the money and the tools."""
    behaviour = model.model_dump(
        mode="json", exclude={"enabled", "timeout_s", "max_retries", "headers", "price"}
    )
    payload = {
        "model": behaviour,
        "prompt": hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest(),
        "code": AGENT_CODE_VERSION,
        "universe": config.resolve_universe().symbols,
        "initial_cash": config.initial_cash,
        "agent": config.agent.model_dump(mode="json", exclude=OPERATIONAL_AGENT_SETTINGS),
        "market": config.market.name,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def portfolio_key(config: AppConfig, model: ModelConfig) -> str:
    """The portfolio a model's days chain in: a new one whenever its behaviour changes."""
    return f"{config.name}/{model.name}@{model_fingerprint(config, model)[:10]}"


def config_hash(config: AppConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def select_models(config: AppConfig, names: list[str] | None) -> list[ModelConfig]:
    """The named models, or every enabled one; unknown names are a clear error."""
    if names is not None and not [name for name in names if name.strip()]:
        # An empty list (a REST trigger's `"models": []`) must not silently mean every model.
        raise PlanError("models names no model; give at least one, or leave it out for every model")
    if names:
        try:
            return [config.model(name) for name in dict.fromkeys(names)]
        except ConfigError as exc:
            raise PlanError(str(exc)) from None
    models = config.enabled_models()
    if not models:
        raise PlanError(f"config {config.name!r} enables no model")
    return models


def last_completed_day(session: Session, portfolio: str) -> date | None:
    query = select(func.max(ModelDay.day)).where(
        ModelDay.portfolio == portfolio, ModelDay.status == ModelDayStatus.COMPLETED
    )
    return session.exec(query).one()


def plan_backtest(
    session: Session,
    config: AppConfig,
    start: date | None = None,
    end: date | None = None,
    models: list[str] | None = None,
) -> BacktestPlan:
    """Resolve a trigger. With no dates, each model catches up from its last completed day."""
    if start and end and end < start:
        raise PlanError(f"end {end} is before start {start}")
    chosen = select_models(config, models)
    market = config.market.name
    available = bar_days(session, DAILY, market)
    if not available:
        raise PlanError(f"the store holds no daily prices of market {market!r}")
    catch_up = start is None and end is None
    first_day = start or config.start_date or available[0]
    last_day = min(end or config.end_date or available[-1], available[-1])
    if not catch_up and (first_day > available[-1] or last_day < available[0]):
        raise PlanError(
            f"no price data between {first_day} and {end or last_day} in market {market!r}; "
            f"it covers {available[0]} to {available[-1]}"
        )
    priced = set(available)
    plans = []
    for model in chosen:
        portfolio = portfolio_key(config, model)
        last = last_completed_day(session, portfolio)
        begin = first_day
        if catch_up and last is not None:
            begin = max(first_day, next_trading_day(last))
        days = (
            [d for d in trading_days(begin, last_day) if d in priced] if begin <= last_day else []
        )
        plans.append(ModelPlan(model=model, portfolio=portfolio, days=days, last_completed=last))
    if not catch_up and not any(plan.days for plan in plans):
        raise PlanError(
            f"no trading day with prices between {first_day} and {last_day} in market {market!r}"
        )
    return BacktestPlan(
        config=config,
        config_hash=config_hash(config),
        market=market,
        universe=config.resolve_universe(),
        catch_up=catch_up,
        start=first_day,
        end=last_day,
        models=plans,
    )
