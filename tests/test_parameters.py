"""BacktestParameters is the one definition the flow, the notebook API and the CLI agree with."""

from __future__ import annotations

import inspect
import types
import typing
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer

from deployments.api import run_backtest
from deployments.cli import app
from flows.backtest import backtest
from flows.parameters import BacktestParameters
from models.errors import PlanError

FIELDS = BacktestParameters.model_fields
# Where `aitrader backtest` writes its report files, and how much it logs: not the flow's.
CLI_ONLY = {"reports", "verbose"}


def _members(annotation: Any) -> set[Any]:
    """The types a (possibly union) annotation admits."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation))
    return {annotation}


def test_the_flow_signature_is_exactly_the_parameters() -> None:
    # Prefect derives the deployments' REST parameter schema from this signature.
    signature = inspect.signature(backtest.fn)
    assert list(signature.parameters) == list(FIELDS)
    for name, parameter in signature.parameters.items():
        field = FIELDS[name]
        assert parameter.default == field.default, name
        assert _members(parameter.annotation) == _members(field.annotation), name
    assert set(backtest.parameters.properties) == set(FIELDS)


def test_run_backtest_takes_exactly_the_parameters() -> None:
    signature = inspect.signature(run_backtest)
    hints = typing.get_type_hints(run_backtest)
    assert list(signature.parameters) == list(FIELDS)
    for name, parameter in signature.parameters.items():
        field = FIELDS[name]
        assert parameter.default == field.default, name
        # The notebook API may accept more (ISO strings for days), never less.
        assert _members(field.annotation) <= _members(hints[name]), name


def test_the_backtest_command_has_an_option_per_parameter() -> None:
    command = typer.main.get_command(app).commands["backtest"]
    options = {p.name: p for p in command.params}
    assert set(options) - CLI_ONLY == set(FIELDS)
    for name, field in FIELDS.items():
        assert options[name].default == field.default, name
        assert f"--{name.replace('_', '-')}" in options[name].opts, name
    assert {"--model", "-m", "--models"} <= set(options["models"].opts)
    assert options["models"].multiple


def test_valid_parameters_are_normalized() -> None:
    params = BacktestParameters.checked(
        {"start": "2025-01-02", "end": date(2025, 1, 31), "models": [" a ", "", "b"]}
    )
    assert params.model_dump() == {
        "start": date(2025, 1, 2),
        "end": date(2025, 1, 31),
        "models": ["a", "b"],
        "config": None,
        "replay": False,
        "budget_usd": None,
        "budget_tokens": None,
        "trials": None,
        "refresh": False,
    }
    assert BacktestParameters().models is None  # not given: every enabled model


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"start": "2025-02-01", "end": "2025-01-01"}, "end 2025-01-01 is before start 2025-02-01"),
        ({"models": []}, "models: names no model"),
        ({"models": ["", " "]}, "models: names no model"),
        ({"budget_usd": -1}, "budget_usd: Input should be greater than or equal to 0"),
        ({"budget_tokens": -1}, "budget_tokens: Input should be greater than or equal to 0"),
        ({"trials": 0}, "trials: Input should be greater than or equal to 1"),
        ({"trials": 101}, "trials: Input should be less than or equal to 100"),
        ({"start": "2025-02-30"}, "start: Input should be a valid date"),
        ({"universe": "dow30"}, "universe: Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_are_one_plan_error(values: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        BacktestParameters.checked(values)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_run_backtest_refuses_bad_arguments_before_any_flow_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = []
    monkeypatch.setattr("flows.backtest.backtest", lambda **kwargs: started.append(kwargs))
    with pytest.raises(PlanError, match="models: names no model"):
        run_backtest(models=[" "])
    with pytest.raises(PlanError, match="end 2025-01-01 is before start 2025-01-31"):
        run_backtest(start="2025-01-31", end="2025-01-01")
    assert started == []


ROOT = Path(__file__).resolve().parents[1]
CODE = [
    path
    for folder in ("agents", "agent_tools", "configs", "deployments", "flows", "models", "tasks")
    for path in (ROOT / folder).rglob("*.py")
]


@pytest.mark.parametrize(
    "rule",
    [
        "is before start {",  # end before start
        "names no model",  # an empty model list
        "MAX_TRIALS",  # the trials range (the config's own `trials` is held to it in the loader)
    ],
)
def test_each_rule_of_a_trigger_has_one_home(rule: str) -> None:
    # Every trigger (CLI, notebook, REST) passes BacktestParameters first: no second copy.
    homes = {str(path.relative_to(ROOT)) for path in CODE if rule in path.read_text()}
    assert homes - {"configs/loader.py"} == {"flows/parameters.py"}, homes
