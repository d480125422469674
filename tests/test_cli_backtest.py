"""`aitrader backtest` and `aitrader health` as a user runs them, and the backtest's options."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from configs.loader import AppConfig
from deployments.cli import app
from flows.parameters import BacktestParameters
from flows.preflight import ResolvedTrigger
from tests.conftest import free_port, run_command
from tests.openai_stub import OpenAIStub

runner = CliRunner()


def config_file(path: Path, models: list[dict]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "cli",
                "universe": "megacaps",
                "market": {
                    "source": "synthetic",
                    "seed": 4,
                    "start": "2024-12-02",
                    "end": "2025-02-28",
                },
                "models": models,
            }
        )
    )
    return path


def aitrader(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_command([sys.executable, "-m", "deployments", *args], env)


def test_backtest_prints_the_leaderboard_and_writes_the_report(prefect_server, tmp_path) -> None:
    config = config_file(
        tmp_path / "c.yaml",
        [
            {"name": "equal-weight", "strategy": "equal-weight"},
            {"name": "random", "strategy": "random"},
        ],
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "COLUMNS": "200",
        "PREFECT_LOGGING_LEVEL": "INFO",  # as a user sees it (the tests quiet Prefect otherwise)
    }
    reports = tmp_path / "reports"
    done = aitrader(
        "backtest",
        "--config",
        str(config),
        "--start",
        "2025-01-02",
        "--end",
        "2025-01-31",
        "--reports",
        str(reports),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "Completed: 20 day(s), 40 model-day(s)" in done.stdout
    # The log is one line per day (and the run's own), not one per task and subflow.
    assert "Task run" not in done.stderr and "Flow run 'day-" not in done.stderr
    day_lines = [line for line in done.stderr.splitlines() if ": 2 simulated, 0 already" in line]
    assert len(day_lines) == 20
    assert len(done.stderr.splitlines()) < 40
    assert "Backtest run 1: cli, 2025-01-02 to 2025-01-31" in done.stdout
    assert "QQQ" in done.stdout and "equal-weight" in done.stdout
    folder = reports / "run-1"
    assert (folder / "equity.png").read_bytes().startswith(b"\x89PNG")
    html = (folder / "equity.html").read_text()  # plotly.js once per store, not per report
    assert 'src="../plotly.min.js"' in html and len(html) < 500_000
    assert (reports / "plotly.min.js").stat().st_size > 1_000_000
    assert "| rank | model |" in (folder / "report.md").read_text()

    bad = aitrader(
        "backtest", "--config", str(config), "--start", "2025-02-01", "--end", "2025-01-01", env=env
    )
    assert bad.returncode == 1 and "end 2025-01-01 is before start 2025-02-01" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow  # `aitrader health` in its own process, as a container runs it
def test_health_reports_each_check_and_fails_with_reasons(tmp_path) -> None:
    with OpenAIStub() as stub:
        llm = {
            "name": "llm",
            "basemodel": "m",
            "base_url": stub.base_url,
            "api_key_env": "AITRADER_HEALTH_KEY",
        }
        config = config_file(tmp_path / "c.yaml", [llm, {"name": "ew", "strategy": "equal-weight"}])
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "AITRADER_HEALTH_KEY": "sk-health",
            "COLUMNS": "200",
        }
        env.pop("PREFECT_API_URL", None)
        healthy = aitrader("health", "--config", str(config), env=env)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "/models: HTTP 200" in healthy.stdout and "built-in strategy" in healthy.stdout
        assert stub.headers[-1]["authorization"] == "Bearer sk-health"

        broken = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
        broken.pop("AITRADER_HEALTH_KEY")
        sick = aitrader("health", "--config", str(config), env=broken)
        assert sick.returncode == 1
        assert "AITRADER_HEALTH_KEY, which is not set" in sick.stderr
        assert "prefect:" in sick.stderr and "ConnectError" in sick.stderr


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[BacktestParameters]:
    """The parameters each in-process `aitrader backtest` would run with (none is run).

    The config checks are left out: these tests are about the options, with made-up models.
    """
    seen: list[BacktestParameters] = []
    monkeypatch.delenv("AITRADER_DEBUG", raising=False)
    monkeypatch.setattr(
        "flows.preflight.preflight", lambda params: ResolvedTrigger(params, config=AppConfig())
    )

    def run_with_progress(trigger: ResolvedTrigger, reports: Path, verbose: bool) -> None:
        seen.append(trigger.params)

    monkeypatch.setattr("deployments.backtest_cli.run_with_progress", run_with_progress)
    return seen


def test_backtest_options_become_the_parameters(planned: list[BacktestParameters]) -> None:
    arguments = ["--start", "2025-01-02", "--end", "2025-01-31", "--replay"]
    result = runner.invoke(app, ["backtest", *arguments, "--model", "a", "-m", "b"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["backtest", "--models", "a,b", "--budget-usd", "2.5"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["backtest", "--budget-tokens", "5000"])
    assert result.exit_code == 0, result.stderr
    repeated, commas, tokens = planned
    assert repeated == BacktestParameters(
        start=date(2025, 1, 2), end=date(2025, 1, 31), models=["a", "b"], replay=True
    )
    assert commas == BacktestParameters(models=["a", "b"], budget_usd=2.5)
    assert tokens == BacktestParameters(budget_tokens=5000)  # no models given: every model


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--start", "2025-02-30"], "Invalid value for '--start': '2025-02-30'"),
        (["--end", "yesterday"], "Invalid value for '--end'"),
        (["--budget-tokens", "1.5"], "Invalid value for '--budget-tokens'"),
        (["--models", ","], "--models: names no model"),
        (["-m", " ", "--model", ""], "--models: names no model"),
        (["--budget-usd", "-1"], "--budget-usd: Input should be greater than or equal to 0"),
        (["--budget-tokens", "-1"], "--budget-tokens: Input should be greater than or equal"),
        (["--trials", "0"], "--trials: Input should be greater than or equal to 1"),
        (["--start", "2025-02-01", "--end", "2025-01-01"], "end 2025-01-01 is before start"),
    ],
)
def test_bad_backtest_options_are_refused_before_any_run(
    planned: list[BacktestParameters], arguments: list[str], message: str
) -> None:
    # Whether typer could not parse the option or BacktestParameters refused its value: one
    # `error:` line, exit 1, and no backtest planned.
    result = runner.invoke(app, ["backtest", *arguments])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert message in result.stderr and "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert planned == []


def test_budget_tokens_reaches_the_flow(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[dict[str, Any]] = []

    async def flow(**parameters: Any) -> SimpleNamespace:
        called.append(parameters)
        return SimpleNamespace(
            name="Completed",
            message="stub",
            is_failed=lambda: False,
            state_details=SimpleNamespace(flow_run_id=None),
        )

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setattr("flows.backtest.backtest", flow)
    arguments = ["-m", "equal-weight", "--budget-tokens", "5000", "--reports", tmp_path]
    result = runner.invoke(app, ["backtest", *map(str, arguments)])
    assert result.exit_code == 0, result.stderr
    assert "Completed: stub" in result.stdout
    assert called == [
        {
            "start": None,
            "end": None,
            "models": ["equal-weight"],
            "config": None,
            "replay": False,
            "budget_usd": None,
            "budget_tokens": 5000,
            "trials": None,
            "refresh": False,
            "return_state": True,
        }
    ]
