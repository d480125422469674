"""What a running backtest hands its day subflows and model-day tasks: one object, passed in.

The engine, the loaded prices and the budget cannot travel through the Prefect API, yet a task
parameter never does (task runs record only references to upstream results) and a subflow's
parameters are stored only as far as they can be encoded. So the flow passes `RunResources` as an
ordinary parameter, made so that Prefect neither walks into it nor stores it (see the class).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine

from agent_tools.news import NewsArchive
from agents.budget import RunBudget
from agents.types import ModelDayRequest
from flows.plan import BacktestPlan
from models.claims import HolderCheck
from models.liveness import DEFAULT_LEASE_S
from models.prices import PriceBook


class RunResources:
    """One backtest run's shared, in-process resources, owned by its flow run.

    Neither a dataclass nor a pydantic model on purpose: Prefect walks those field by field on
    every task and subflow call (looking for futures), and a subflow's parameters are JSON-encoded
    for the API; an object with `__slots__` is passed as is and recorded as `<RunResources>`.
    """

    __slots__ = (
        "budget",
        "claimant",
        "engine",
        "holder_stopped",
        "lease_seconds",
        "mode",
        "news",
        "plan",
        "prices",
        "run_id",
    )

    def __init__(
        self,
        *,
        run_id: int,
        engine: Engine,
        prices: PriceBook,
        plan: BacktestPlan,
        mode: str = "live",
        budget: RunBudget | None = None,
        news: NewsArchive | None = None,
        claimant: str = "",
        lease_seconds: float = DEFAULT_LEASE_S,
        holder_stopped: HolderCheck | None = None,  # asks Prefect whether another holder stopped
    ) -> None:
        self.run_id = run_id
        self.engine = engine
        self.prices = prices
        self.plan = plan
        self.mode = mode
        self.budget = budget
        self.news = news
        self.claimant = claimant
        self.lease_seconds = lease_seconds
        self.holder_stopped = holder_stopped

    def __repr__(self) -> str:
        return f"RunResources(run_id={self.run_id})"

    def request(self, label: str, day: date) -> ModelDayRequest:
        """The request for one model's day in this run; `label` names the model and its trial
        (`ModelPlan.label`: the model's name, or `name#t<trial>` after trial 1)."""
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
