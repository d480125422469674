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
from market_data.calendar import calendar
from models.errors import ConfigError, PlanError
from models.prices import bar_days, last_bar_days
from models.tables import ModelDay, ModelDayStatus, RunCreate
from models.trials import TrialRef

# Bump when a change to the session loop or the strategies changes what a model-day does, so
# cached and stored days of the old code are not taken for the new code's.
AGENT_CODE_VERSION = "1"
# How a model-day is scheduled and guarded, not what the model does in it.
OPERATIONAL_AGENT_SETTINGS = {"max_concurrent_models", "lease_seconds", "outage_window_s"}
# A model's settings that change how it is called or reported, not what it decides.
MODEL_REPORTING_SETTINGS = {
    "enabled",
    "timeout_s",
    "max_retries",
    "headers",
    "price",
    "knowledge_cutoff",
}


class ModelPlan(BaseModel):
    """One model's part of a backtest: one trial of it, in its own portfolio."""

    model: ModelConfig
    portfolio: str
    days: list[date]
    last_completed: date | None
    trial: int = 1

    @property
    def label(self) -> str:
        """What the run calls this trial of the model (`TrialRef.label`)."""
        return TrialRef(model=self.model.name, trial=self.trial).label


class BacktestPlan(BaseModel):
    """A resolved trigger: the models, their portfolios and the trading days to simulate."""

    config: AppConfig
    config_hash: str
    market: str
    universe: Universe
    catch_up: bool
    start: date | None
    end: date | None
    models: list[ModelPlan]  # one per model and trial, trials of a model together
    trials: int = 1
    # A refreshed catch-up stops before a day whose universe is not yet priced (a refresh cut
    # short): which symbols it waits for, for the run's message.
    waiting: str = ""
    note: str = ""  # what the run's final message adds: the refresh, what days wait for

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
            models=list(dict.fromkeys(p.model.name for p in self.models)),
            portfolios={p.label: p.portfolio for p in self.models},
            start_date=min(self.days),
            end_date=max(self.days),
            market=self.market,
            initial_cash=self.config.initial_cash,
            currency=self.config.market.definition.currency,
            benchmark=self.universe.benchmark,
            flow_run_id=flow_run_id,
            trials=self.trials,
        )

    @property
    def up_to_date(self) -> str:
        """What a catch-up with nothing to do says."""
        return f"up to date: every model has simulated through {self.last_simulated}" + (
            f"; {self.waiting}" if self.waiting else ""
        )

    @property
    def last_simulated(self) -> date | None:
        """The last day every model of the plan has completed."""
        completed = [plan.last_completed for plan in self.models]
        return None if None in completed else min(completed)  # type: ignore[type-var]


def model_fingerprint(config: AppConfig, model: ModelConfig) -> str:
    """A hash of everything that decides what a model does on a day: its settings, the prompt,
    the agent code version, the universe, the money and the tools."""
    behaviour = model.model_dump(mode="json", exclude=MODEL_REPORTING_SETTINGS)
    payload = {
        "model": behaviour,
        "prompt": hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest(),
        "code": AGENT_CODE_VERSION,
        "universe": config.resolve_universe().symbols,
        "initial_cash": config.initial_cash,
        "agent": config.agent.model_dump(mode="json", exclude=OPERATIONAL_AGENT_SETTINGS),
        "market": config.market.store_market,
    }
    if not config.market.definition.original:  # the original's portfolios keep their keys
        payload["rules"] = config.market.definition.model_dump(
            mode="json", exclude={"costs": True, "rules": {"costs"}, "schedule": True}
        )
    if config.trading_costs is not None:  # free fills keep the keys they had before costs
        payload["costs"] = config.trading_costs.model_dump(mode="json")
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def portfolio_key(config: AppConfig, model: ModelConfig, trial: int = 1) -> str:
    """The portfolio a model's days chain in: a new one whenever its behaviour changes, and one
    per trial of a repeated backtest (trial 1's is the portfolio of a backtest without trials)."""
    key = f"{config.name}/{model.name}@{model_fingerprint(config, model)[:10]}"
    return key + TrialRef(model=model.name, trial=trial).suffix


def config_hash(config: AppConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def select_models(config: AppConfig, names: list[str] | None) -> list[ModelConfig]:
    """The named models (as BacktestParameters checked them: never an empty list), or every
    enabled one; unknown names are a clear error."""
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


def _trial_plan(
    session: Session,
    config: AppConfig,
    model: ModelConfig,
    trial: int,
    days: list[date],
    catch_up: bool,
) -> ModelPlan:
    """One trial of a model over `days`; a catch-up only past its portfolio's last completed day."""
    portfolio = portfolio_key(config, model, trial)
    last = last_completed_day(session, portfolio)
    if catch_up and last is not None:
        days = [day for day in days if day > last]
    return ModelPlan(model=model, trial=trial, portfolio=portfolio, days=days, last_completed=last)


def plan_backtest(
    session: Session,
    config: AppConfig,
    start: date | None = None,
    end: date | None = None,
    models: list[str] | None = None,
    trials: int | None = None,
    whole_days_only: bool = False,
) -> BacktestPlan:
    """Resolve a trigger whose values BacktestParameters checked: each of `trials` trials of each
    model (the config's `trials` when None). With no dates, each trial catches up from its own
    portfolio's last completed day (with `whole_days_only`, a refreshed run's, only through days
    its whole universe priced)."""
    trials = config.trials if trials is None else trials
    chosen = select_models(config, models)
    market = config.market.store_market
    definition = config.market.definition
    universe = config.resolve_universe()
    available = bar_days(session, definition.interval, market, universe.symbols)
    if not available:
        raise PlanError(
            f"the store holds no {definition.interval} prices of {definition.title} "
            f"({universe.name}) in market {market!r}; import or fetch them first"
        )
    catch_up = start is None and end is None
    first_day = start or config.start_date or available[0]
    last_day = min(end or config.end_date or available[-1], available[-1])
    if not catch_up and (first_day > available[-1] or last_day < available[0]):
        raise PlanError(
            f"no price data between {first_day} and {end or last_day} in market {market!r}; "
            f"it covers {available[0]} to {available[-1]}"
        )
    sessions = calendar(definition.calendar)
    in_range = sessions.trading_days(first_day, last_day) if first_day <= last_day else []
    days = [day for day in in_range if day in set(available)]
    days, waiting = (
        _whole_days(session, config, days) if catch_up and whole_days_only else (days, "")
    )
    plans = [
        _trial_plan(session, config, model, trial, days, catch_up)
        for model in chosen
        for trial in range(1, trials + 1)
    ]
    if not catch_up and not any(plan.days for plan in plans):
        raise PlanError(
            f"no trading day with prices between {first_day} and {last_day} in market {market!r}"
        )
    return BacktestPlan(
        config=config,
        config_hash=config_hash(config),
        market=market,
        universe=universe,
        catch_up=catch_up,
        start=first_day,
        end=last_day,
        models=plans,
        trials=trials,
        waiting=waiting,
    )


# A symbol whose bars stop within this many priced days of the newest is waited for (a refresh
# cut short); one that stopped earlier is taken as delisted or suspended.
WHOLE_DAY_LOOKBACK = 5


def _whole_days(session: Session, config: AppConfig, days: list[date]) -> tuple[list[date], str]:
    """`days` up to the last on which the whole universe is priced, and what the rest waits for
    (an hourly day in progress counts: its sessions begun so far are traded). Books chain, so a
    refreshed catch-up stops before the first day a recently priced symbol lacks, and the next
    run, once the refresh brings it, goes on from there."""
    definition, market = config.market.definition, config.market.store_market
    symbols = config.resolve_universe().symbols
    last_bars = last_bar_days(session, definition.interval, market, symbols)
    priced = bar_days(session, definition.interval, market, symbols)
    waiting = []
    recent = priced[-WHOLE_DAY_LOOKBACK:]
    stale = {s: d for s, d in last_bars.items() if recent and recent[0] <= d < priced[-1]}
    if stale:
        through = min(stale.values())
        days = [day for day in days if day <= through]
        names = ", ".join(sorted(stale)[:10]) + (" …" if len(stale) > 10 else "")
        waiting.append(f"days after {through} wait for prices of {len(stale)} symbol(s): {names}")
    return days, "; ".join(waiting)
