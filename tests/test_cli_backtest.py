"""`aitrader backtest` and `aitrader health` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, free_port
from tests.openai_stub import OpenAIStub


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
    return subprocess.run(
        [sys.executable, "-m", "deployments", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


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
    assert "Backtest run 1: cli, 2025-01-02 to 2025-01-31" in done.stdout
    assert "QQQ" in done.stdout and "equal-weight" in done.stdout
    folder = reports / "run-1"
    assert (folder / "equity.png").read_bytes().startswith(b"\x89PNG")
    assert "plotly" in (folder / "equity.html").read_text()
    assert "| rank | model |" in (folder / "report.md").read_text()

    bad = aitrader(
        "backtest", "--config", str(config), "--start", "2025-02-01", "--end", "2025-01-01", env=env
    )
    assert bad.returncode == 1 and "end 2025-01-01 is before start 2025-02-01" in bad.stderr
    assert "Traceback" not in bad.stderr


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
