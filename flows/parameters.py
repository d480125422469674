"""The backtest's parameters, defined once for the flow, the CLI and the notebook API.

The flow keeps an explicit signature (Prefect derives its REST parameter schema from it);
tests/test_parameters.py holds the flow, `run_backtest` and `aitrader backtest` to these fields.
"""

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from configs.loader import MAX_TRIALS
from models.errors import PlanError


class BacktestParameters(BaseModel):
    """What a backtest is asked to do; no dates means catch every model up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date | None = Field(None, description="First day (default: each model's catch-up).")
    end: date | None = Field(None, description="Last day (default: the latest prices).")
    models: list[str] | None = Field(
        None, description="Model names of the config (default: every enabled model)."
    )
    config: str | None = Field(None, description="Config file (default: the offline default).")
    replay: bool = Field(False, description="Answer LLM calls from the record only.")
    budget_usd: float | None = Field(
        None, ge=0, description="Stop LLM calls past this many US dollars (default: the config's)."
    )
    budget_tokens: int | None = Field(
        None, ge=0, description="Stop LLM calls past this many tokens (default: the config's)."
    )
    trials: int | None = Field(
        None,
        ge=1,
        le=MAX_TRIALS,
        description="Independent trials of every model, each its own portfolio "
        "(default: the config's, else 1).",
    )
    refresh: bool = Field(
        False,
        description="Fetch the market's newest prices and news first (of a session not yet "
        "ended, only its open); a catch-up then stops before a day not yet wholly priced.",
    )

    @field_validator("models")
    @classmethod
    def _named_models(cls, models: list[str] | None) -> list[str] | None:
        if models is None:
            return None
        names = [name.strip() for name in models if name.strip()]
        if not names:
            # An empty list must not silently mean "every model", as leaving it out does.
            raise ValueError("names no model; give at least one, or leave it out for every model")
        return names

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @classmethod
    def of_call(cls, arguments: Mapping[str, Any]) -> Self:
        """`checked` on the arguments of a call with these parameters (its `locals()`)."""
        return cls.checked({name: arguments[name] for name in cls.model_fields})

    @classmethod
    def checked(cls, values: Mapping[str, Any], label: Callable[[str], str] = str) -> Self:
        """Validate `values`; a one-line PlanError names each bad field as `label(field)`."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise PlanError(_problems(exc, label)) from None


def _problems(error: ValidationError, label: Callable[[str], str]) -> str:
    """Pydantic's errors as `field: what is wrong (got value)`, joined by semicolons."""
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        field = item["loc"][0] if item["loc"] else None
        if field is None:
            problems.append(message)  # a model validator's message names its fields itself
        else:
            problems.append(f"{label(str(field))}: {message} (got {item['input']!r})")
    return "; ".join(problems)
