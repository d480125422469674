"""What a running backtest shares with its tasks without passing it through Prefect.

Flow and subflow parameters are sent to the Prefect API, so the engine, the loaded prices and the
budget cannot travel as parameters. The parent flow registers them under its run key, the tasks
of that run look them up, and the parent removes them when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.engine import Engine

from agent_tools.news import NewsArchive
from agents.budget import RunBudget
from agents.types import ModelDayRequest
from flows.plan import BacktestPlan
from models.claims import HolderCheck
from models.liveness import DEFAULT_LEASE_S
from models.prices import PriceBook


@dataclass
class RunResources:
    """One backtest run's shared, in-process resources."""

    run_id: int
    key: str  # what its tasks look these resources up by
    engine: Engine
    prices: PriceBook
    plan: BacktestPlan
    mode: str = "live"
    budget: RunBudget | None = None
    news: NewsArchive | None = None
    claimant: str = ""
    lease_seconds: float = DEFAULT_LEASE_S
    holder_stopped: HolderCheck | None = None  # asks Prefect whether another holder stopped
    failed_models: dict[str, str] = field(default_factory=dict)  # label -> the day it failed

    def request(self, label: str, day: date) -> ModelDayRequest:
        """The request for one model's day in this run; `label` names the model and its trial
        (`ModelPlan.label`: the model's name, or `name#trial` after trial 1)."""
        plan = self.plan
        model_plan = next(p for p in plan.models if p.label == label)
        return ModelDayRequest(
            run_id=self.run_id,
            model=model_plan.model,
            day=day,
            portfolio=model_plan.portfolio,
            universe=plan.universe.symbols,
            benchmark=plan.universe.benchmark,
            initial_cash=plan.config.initial_cash,
            agent=plan.config.agent,
            mode=self.mode,
            claimant=self.claimant,
            lease_seconds=self.lease_seconds,
            trial=model_plan.trial,
            market=plan.config.trading_market,
        )


_RESOURCES: dict[str, RunResources] = {}


def register(key: str, resources: RunResources) -> None:
    _RESOURCES[key] = resources


def lookup(key: str) -> RunResources:
    try:
        return _RESOURCES[key]
    except KeyError:
        raise RuntimeError(f"no backtest resources under {key!r} in this process") from None


def release(key: str) -> None:
    _RESOURCES.pop(key, None)
