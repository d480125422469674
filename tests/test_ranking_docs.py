"""docs/ranking.md's worked example, run as written: the original's October run imported, every
model in tier 1, the figures the page (and README.md's excerpt of it) shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deployments.cli import app
from models.engine import dispose_engines
from tests.conftest import ROOT, SHARED_DATA

PAGE = ROOT / "docs" / "ranking.md"
README = ROOT / "README.md"


def aitrader(env: dict[str, str], *arguments: str) -> str:
    """`aitrader ARGUMENTS` in this process, on a terminal as wide as `env`'s COLUMNS."""
    try:
        done = CliRunner().invoke(app, list(arguments), env=env)
    finally:
        dispose_engines()
    assert done.exit_code == 0, done.output
    return done.stdout


def test_the_october_run_is_ranked_as_the_page_says(tmp_path: Path) -> None:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the worked example reads it")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "AITRADER_HOME": str(tmp_path),
        "COLUMNS": "100",
    }
    page = PAGE.read_text()
    assert "aitrader import-aitrader ../shared/data/legacy_aitrader_daily_run" in page
    aitrader(env, "data", "import", str(SHARED_DATA / "nasdaq100_daily"))
    aitrader(env, "import-aitrader", str(SHARED_DATA / "legacy_aitrader_daily_run"))

    table = aitrader(env, "results")
    shown = page.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    for line in shown:
        assert line in table, f"the page shows a row the command does not print:\n{line}"
    (excerpt,) = [b for b in README.read_text().split("```text\n")[1:] if "deepseek" in b]
    for line in excerpt.split("```", 1)[0].splitlines():
        assert line.strip() == "…" or line in table, f"README.md shows a row not printed:\n{line}"

    rows = json.loads(aitrader(env, "results", "--format", "json"))
    models = [r for r in rows if r["rank"] is not None]
    assert len(models) == 6 and {r["tier"] for r in models} == {1}
    pairs = json.loads(aitrader(env, "results", "pairs", "--format", "json"))
    assert len(pairs) == 15 and not any(p["significant"] for p in pairs)
    assert min(p["p_value"] for p in pairs) == pytest.approx(0.458, abs=0.0005)
    cutoffs = page.split("## Knowledge cutoffs", 1)[1].split("```text\n", 1)[1].split("```")[0]
    columns = "knowledge_cutoff,cutoff_source,clean_sessions,contaminated_sessions"
    assert f"aitrader results leaderboard --columns {columns}" in page
    table = aitrader(env, "results", "leaderboard", "--columns", columns)
    for line in cutoffs.splitlines():
        assert line in table, f"the page shows a cutoff row the command does not print:\n{line}"
    assert {(r["clean_sessions"], r["contaminated_sessions"]) for r in models} == {(21, 0)}
    deepseek = next(r for r in models if r["model"] == "deepseek-chat-v3.1")
    low, high = deepseek["excess_return_ci"]
    assert round(100 * low, 1) == -4.1 and round(100 * high, 1) == 24.8
    minimax = next(r for r in models if r["model"] == "MiniMax-M2")
    low, high = minimax["excess_return_ci"]
    assert round(100 * low, 1) == -0.8 and round(100 * high, 1) == 15.2
