"""Refuse a bad backtest before Prefect starts or the store is written; resolve a good one once.

Checked in order, each error naming the file and field: the config (every selected model's
strategy and parameters, API keys present in the environment, the universe, a files market's
path), the dates, then the data the
store already holds (universe symbols with prices, a range with trading days). A refused trigger
costs a fraction of a second and leaves the store as it was. A range on or before a model's
knowledge cutoff is not refused: the flow warns of it when it starts (`cutoff_warnings`).

The CLI and the Python API hand the `ResolvedTrigger` to the flow (`flows.backtest.run_resolved`);
a trigger that reaches the flow through Prefect's API is resolved there by `resolve_config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from pydantic import ValidationError
from sqlmodel import Session, select

from agents.chat_models import api_key_for
from agents.strategies import strategy_params
from analysis.contamination import model_cutoff
from configs.loader import DEFAULT_CONFIG, AppConfig, ModelConfig, load_config
from flows.parameters import BacktestParameters
from flows.plan import BacktestPlan, ModelPlan, plan_backtest, select_models
from market_data.alphavantage import AlphaVantageClient
from market_data.calendar import calendar
from market_data.provision import synthetic_bars_held
from models.engine import existing_store
from models.errors import AlphaVantageError, ConfigError, ModelSetupError, PlanError, one_line
from models.tables import PriceBar


@dataclass(frozen=True)
class ResolvedTrigger:
    """A trigger that passed the checks: its parameters, its config (loaded, its models checked),
    and its plan when the store can tell already (its market is stored in full), so an up-to-date
    catch-up needs no Prefect at all."""

    params: BacktestParameters
    config: AppConfig
    plan: BacktestPlan | None = None

    @property
    def source(self) -> str:
        """The config file problems are named in."""
        return self.params.config or str(DEFAULT_CONFIG)


def preflight(params: BacktestParameters, store_url: str | None = None) -> ResolvedTrigger:
    """The resolved trigger; the first problem raised otherwise."""
    trigger = resolve_config(params)
    config, source = trigger.config, trigger.source
    check_market(config, source)
    check_dates(config, params)
    if params.refresh:
        check_refresh(config, source)
        return trigger  # the flow fetches first: the plan is made after
    engine = existing_store(store_url)
    if engine is None:
        check_market_provided(config, set())
        return trigger
    try:
        with Session(engine) as session:
            return replace(trigger, plan=check_data(session, config, params))
    finally:
        engine.dispose()


def resolve_config(params: BacktestParameters) -> ResolvedTrigger:
    """The trigger with its config loaded and every model it runs checked (all a flow run
    triggered through Prefect's API checks before it provides the market and plans)."""
    config = load_config(params.config)
    trigger = ResolvedTrigger(params, config)
    check_models(config, params.models, trigger.source)
    return trigger


def check_models(config: AppConfig, names: list[str] | None, source: str) -> None:
    """Every model the trigger runs can be built: a known strategy with valid parameters, or an
    endpoint whose API key is in the environment."""
    try:
        chosen = {model.name for model in select_models(config, names)}
    except PlanError as exc:
        raise PlanError(f"{source}: {exc}") from None
    for index, model in enumerate(config.models):
        if model.name in chosen:
            _check_model(model, f"{source}: models[{index}]")


def _check_model(model: ModelConfig, where: str) -> None:
    if model.kind == "openai":
        try:
            api_key_for(model)
        except ModelSetupError as exc:
            raise ConfigError(f"{where}.api_key_env: {exc}") from None
        return
    try:
        params_model = strategy_params(model.strategy or "")
    except ValueError as exc:
        raise ConfigError(f"{where}.strategy: {exc}") from None
    try:
        params_model.model_validate(model.params)
    except ValidationError as exc:
        raise ConfigError(one_line(exc, prefix=f"{where}.params.")) from None


def check_market(config: AppConfig, source: str) -> None:
    """The universe is a known one, and a files market's path exists, whatever the store holds."""
    try:
        config.resolve_universe()
    except ConfigError as exc:
        raise ConfigError(f"{source}: universe: {exc}") from None
    market = config.market
    if market.source == "files" and market.path and not Path(market.path).expanduser().exists():
        raise ConfigError(f"{source}: market.path {market.path} does not exist")


def check_dates(config: AppConfig, params: BacktestParameters) -> None:
    """The range lies in the exchange calendar, and inside a synthetic market's span."""
    first = params.start or config.start_date
    last = params.end or config.end_date
    sessions = calendar(config.market.definition.calendar)
    for day in (first, last):
        if day is not None:
            sessions.trading_days(day, day)  # CalendarError names the calendar's span
    market = config.market
    if market.source != "synthetic":
        return
    if (first and first > market.end) or (last and last < market.start):
        raise PlanError(
            f"{first or market.start} to {last or market.end} lies outside the synthetic "
            f"market's span {market.start} to {market.end} (market.start, market.end)"
        )


def check_refresh(config: AppConfig, source: str) -> None:
    """A refresh from Alpha Vantage needs its key in the environment."""
    if config.market.source != "alphavantage":
        return
    try:
        AlphaVantageClient.from_env().close()
    except AlphaVantageError as exc:
        raise ConfigError(f"{source}: market.source alphavantage: {exc}") from None


def check_market_provided(config: AppConfig, stored: set[str]) -> None:
    """A market the flow cannot provide itself (no synthetic seed, no files to import) must
    already be in the store."""
    market = config.market
    if stored or market.source == "synthetic" or (market.source == "files" and market.path):
        return
    raise PlanError(
        f"the store holds no {market.definition.interval} prices of {market.definition.title}; "
        "import or fetch them first "
        "(aitrader data import PATH, or aitrader data fetch)"
    )


def check_data(
    session: Session, config: AppConfig, params: BacktestParameters
) -> BacktestPlan | None:
    """With the market already in the store: its universe is priced and the range plannable."""
    market = config.market.store_market
    interval = config.market.definition.interval
    stored = set(
        session.exec(
            select(PriceBar.symbol)
            .where(PriceBar.market == market, PriceBar.interval == interval)
            .distinct()
        )
    )
    check_market_provided(config, stored)
    if not stored:
        return None  # the flow synthesizes or imports it first
    universe = config.resolve_universe()
    unknown = [s for s in universe.symbols if s not in stored]
    if unknown:
        shown = ", ".join(unknown[:10]) + (
            f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        )
        raise PlanError(
            f"universe {universe.name!r}: no prices in market {market!r} for {shown}; "
            "import or fetch them first (aitrader data import / data fetch)"
        )
    plan = plan_backtest(session, config, params.start, params.end, params.models, params.trials)
    if config.market.source == "synthetic" and synthetic_bars_held(session, config) is None:
        return None  # the flow adds the missing bars first: the plan may grow
    return plan


def cutoff_warnings(plans: Sequence[ModelPlan]) -> list[str]:
    """A line for each model that simulates days on or before its knowledge cutoff: it may
    remember how they ended (a warning, not a refusal: such a backtest measures memory)."""
    days: dict[str, set[date]] = {}
    models: dict[str, ModelConfig] = {}
    for plan in plans:
        days.setdefault(plan.model.name, set()).update(plan.days)
        models[plan.model.name] = plan.model
    lines = []
    for name, model in models.items():
        cutoff = _cutoff(model)
        remembered = sorted(d for d in days[name] if cutoff is not None and d <= cutoff)
        if not remembered:
            continue
        span = f"{remembered[0]} to {remembered[-1]}"
        if len(remembered) == len(days[name]):
            lines.append(
                f"{name}: every session ({span}) is on or before its knowledge cutoff {cutoff}: "
                "it may remember how they ended, and no clean session ranks it"
            )
        else:
            lines.append(
                f"{name}: {len(remembered)} of {len(days[name])} sessions ({span}) are on or "
                f"before its knowledge cutoff {cutoff}: it may remember how they ended "
                "(the leaderboard ranks clean sessions by default)"
            )
    return lines


def _cutoff(model: ModelConfig) -> date | None:
    """A model's knowledge cutoff as the leaderboard reads it (`model_cutoff`): its config's,
    else the shipped table's; None for a built-in strategy or an unknown one."""
    return model_cutoff(model.name, model.model_dump(mode="json")).knowledge_cutoff
