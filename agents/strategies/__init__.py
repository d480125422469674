"""Built-in strategy models: offline LangChain chat models that trade through the real MCP tools.

`build_strategy` makes one from a config's `strategy` and `params`; `STRATEGIES` lists them:

* `equal-weight` (`EqualWeightBuyAndHold`): buys the tradable symbols in equal dollar weights
  once, then holds forever.
* `index-weight` (`IndexWeightBuyAndHold`): buys the benchmark's constituents by index weight
  once (the universe's published weights, or the config's), then holds forever.
* `momentum` (`Momentum`): holds the `top_k` names by trailing return, rebalanced on the first
  trading day of every block of `rebalance_every` weekdays (calendar days in a market trading
  every day; an hourly market rebalances in a day's first session only).
* `random` (`RandomTrader`): seeded, reproducible random orders; a baseline to beat. Each trial
  of a repeated backtest draws its own orders; the others trade the same in every trial.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError

from agents.strategies.builtin import (
    EqualWeightBuyAndHold,
    EqualWeightParams,
    IndexWeightBuyAndHold,
    IndexWeightParams,
    Momentum,
    MomentumParams,
    RandomParams,
    RandomTrader,
    is_rebalance_day,
    stable_seed,
    trailing_returns,
    weekday_ordinal,
)
from agents.strategies.chat_model import (
    FINISH_SIGNAL,
    Order,
    Plan,
    StrategyChatModel,
    StrategyParams,
)
from agents.strategies.observations import Book, DayView, OrderResult, tool_json
from models.errors import one_line

__all__ = [
    "FINISH_SIGNAL",
    "STRATEGIES",
    "Book",
    "DayView",
    "EqualWeightBuyAndHold",
    "EqualWeightParams",
    "IndexWeightBuyAndHold",
    "IndexWeightParams",
    "Momentum",
    "MomentumParams",
    "Order",
    "OrderResult",
    "Plan",
    "RandomParams",
    "RandomTrader",
    "StrategyChatModel",
    "StrategyParams",
    "build_strategy",
    "is_rebalance_day",
    "stable_seed",
    "tool_json",
    "trailing_returns",
    "weekday_ordinal",
]

STRATEGIES: dict[str, type[StrategyChatModel]] = {
    "equal-weight": EqualWeightBuyAndHold,
    IndexWeightBuyAndHold.strategy: IndexWeightBuyAndHold,
    "momentum": Momentum,
    "random": RandomTrader,
}


def _param_model(cls: type[StrategyChatModel]) -> type[StrategyParams]:
    return cls.model_fields["params"].annotation  # type: ignore[return-value]


def strategy_params(name: str) -> type[StrategyParams]:
    """The parameters model of strategy `name`; ValueError naming the known ones if unknown."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return _param_model(cls)


def build_strategy(
    name: str, model_name: str, params: dict[str, Any] | None = None, trial: int = 1
) -> BaseChatModel:
    """The strategy model `name` trading as `model_name` with `params` (validated), in trial
    `trial` of a repeated backtest (only the random strategy's orders depend on it)."""
    params_model = strategy_params(name)
    try:
        validated = params_model.model_validate(params or {})
    except ValidationError as exc:
        problems = one_line(exc, whole="params")
        raise ValueError(f"invalid params for strategy {name!r}: {problems}") from None
    return STRATEGIES[name](model_name=model_name, params=validated, trial=trial)
