"""Robust across windows (issue 20, part 3): rolling windows, first sessions, regimes, the
deflated Sharpe ratio, the minimum sessions, and `aitrader results robustness`."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from analysis.curves import ModelCurve, RunCurves
from analysis.robustness import (
    EULER_GAMMA,
    RobustnessOptions,
    deflated_sharpe,
    expected_max_sharpe,
    robustness,
    robustness_markdown,
    session_sharpe,
    window_robustness,
)
from deployments.cli import app
from models.engine import create_store_engine, dispose_engines
from models.prices import Bar, insert_bars
from models.tables import Run
from tests.conftest import ROOT, SHARED_DATA, completed_day, store_copy


def series(returns: np.ndarray, start: str = "2025-01-02") -> pd.Series:
    """Values from 10,000 growing by `returns`, one business day each (the start the day before)."""
    days = pd.bdate_range(start, periods=len(returns) + 1)
    return pd.Series(10_000 * np.cumprod(np.r_[1.0, 1.0 + returns]), index=days)


def test_a_model_first_in_only_one_window_of_many_is_reported_as_such() -> None:
    # `steady` gains 0.2 % a session; `lucky` nothing but +80 % on one session of window 4 of 10.
    # Over the whole run lucky is first (+80 % against +49 %), yet it ranks first in one window.
    rng = np.random.default_rng(3)
    steady = 0.002 + rng.normal(0, 0.0005, 200)
    lucky = rng.normal(0, 0.0005, 200)
    lucky[65] = 0.8
    weak = -0.001 + rng.normal(0, 0.0005, 200)
    values = {"steady": series(steady), "lucky": series(lucky), "weak": series(weak)}
    options = RobustnessOptions(window=20, step=20)
    result = window_robustness(values, None, options)
    rows = {row.model: row for row in result.rows}
    assert result.windows == 10
    assert rows["lucky"].rank == 1 and rows["steady"].rank == 2
    assert (rows["lucky"].first_in, rows["lucky"].windows) == (1, 10)
    assert rows["lucky"].share_first == pytest.approx(0.1)
    assert rows["steady"].share_first == pytest.approx(0.9)
    assert rows["weak"].share_first == 0.0
    # The same at every start date: lucky leads only the 20 windows holding its one session.
    rolling = {r.model: r for r in window_robustness(values, None, RobustnessOptions()).rows}
    assert (rolling["lucky"].first_in, rolling["lucky"].windows) == (20, 181)
    # Tiers: steady, first nearly everywhere, is in tier 1 of every non-overlapping window.
    assert rows["steady"].share_tier1 == 1.0 and rows["steady"].tier_windows == 10
    assert rows["weak"].share_tier1 < 1.0


def test_the_deflated_sharpe_is_the_papers_formula() -> None:
    # Bailey & López de Prado (2014), section 4's example: 100 trials whose annualised Sharpe
    # ratios vary by 1/2, 250 sessions a year: SR0 = 0.1132 a session; a strategy of annualised
    # Sharpe 2.5 over 1,250 sessions with skewness -3 and kurtosis 10 has DSR 0.9004.
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    sr = 2.5 / math.sqrt(250)
    z = (sr - sr0) * math.sqrt(1250 - 1) / math.sqrt(1 + 3 * sr + (10 - 1) / 4 * sr**2)
    assert NormalDist().cdf(z) == pytest.approx(0.9004, abs=5e-4)

    # On real returns, by hand from the formula: the sample's Sharpe, skewness and kurtosis.
    rng = np.random.default_rng(11)
    r = 0.001 + 0.01 * rng.standard_t(5, 300)
    trials = [0.05, -0.02, 0.11, None, 0.0, 0.07]  # one undefined (a model that never moved)
    n, v = len(trials), np.var([t for t in trials if t is not None], ddof=1)
    inv = NormalDist().inv_cdf
    expected = math.sqrt(v) * (
        (1 - EULER_GAMMA) * inv(1 - 1 / n) + EULER_GAMMA * inv(1 - 1 / (n * math.e))
    )
    c = r - r.mean()
    skew = np.mean(c**3) / np.mean(c**2) ** 1.5
    kurt = np.mean(c**4) / np.mean(c**2) ** 2
    s = r.mean() / r.std(ddof=1)
    by_hand = NormalDist().cdf(
        (s - expected) * math.sqrt(len(r) - 1) / math.sqrt(1 - skew * s + (kurt - 1) / 4 * s**2)
    )
    assert deflated_sharpe(r, trials) == pytest.approx(by_hand, abs=1e-12)
    assert session_sharpe(r) == pytest.approx(s)
    assert deflated_sharpe(r, [0.05]) == pytest.approx(
        NormalDist().cdf(
            s * math.sqrt(len(r) - 1) / math.sqrt(1 - skew * s + (kurt - 1) / 4 * s**2)
        )
    )  # one trial: nothing selected, the plain PSR


def test_regimes_split_the_windows_by_the_benchmark() -> None:
    # The benchmark rises for 100 sessions then falls for 100; `bull` leads while it rises,
    # `bear` while it falls.
    rng = np.random.default_rng(5)
    market = np.r_[np.full(100, 0.004), np.full(100, -0.004)] + rng.normal(0, 0.001, 200)
    bull = 1.5 * market + rng.normal(0, 0.001, 200)
    bear = -0.5 * market + rng.normal(0, 0.001, 200)
    values = {"bull": series(bull), "bear": series(bear)}
    result = window_robustness(values, series(market), RobustnessOptions(window=20, step=20))
    rows = {row.model: row for row in result.rows}
    assert (result.windows_up, result.windows_down) == (5, 5)
    assert rows["bull"].share_first_up == 1.0 and rows["bull"].share_first_down == 0.0
    assert rows["bear"].share_first_up == 0.0 and rows["bear"].share_first_down == 1.0
    assert rows["bull"].share_first == rows["bear"].share_first == 0.5


def curve(model: str, trial: int, values: pd.Series) -> ModelCurve:
    zero = pd.Series(0.0, index=values.index)
    return ModelCurve(model, trial, values, zero, zero, 0, len(values) - 1, 0, 0.0)


def test_a_short_model_is_listed_not_ranked_and_every_trial_counts() -> None:
    # Two models over 60 sessions, `a` in three trials, and `late` with only the last 10.
    rng = np.random.default_rng(9)
    run = Run(name="r", models=["a", "b", "late"], start_date=date(2025, 1, 2))
    curves = [curve("a", t, series(rng.normal(0.001, 0.01, 60))) for t in (1, 2, 3)]
    curves.append(curve("b", 1, series(rng.normal(0.0, 0.01, 60))))
    late = series(rng.normal(0.0, 0.01, 60))
    curves.append(curve("late", 1, late.iloc[-11:]))
    result = robustness(RunCurves(run=run, curves=curves), RobustnessOptions(window=10))
    rows = {row.model: row for row in result.rows}
    assert result.trials == 5  # every model-trial, the unranked model's included
    assert rows["a"].trials == 3 and rows["a"].ranked and rows["b"].ranked
    assert not rows["late"].ranked and rows["late"].session_count == 10
    assert rows["late"].rank is None and rows["late"].share_first is None
    assert rows["late"].deflated_sharpe is None and rows["late"].first_sessions == []
    assert result.rows[-1].model == "late"  # listed last
    assert rows["a"].share_first + rows["b"].share_first == pytest.approx(1.0)
    assert [f.sessions for f in rows["a"].first_sessions] == [10, 20, 40]
    assert result.expected_max_sharpe > 0 and rows["a"].deflated_sharpe is not None
    assert "## Robust across windows" in "\n".join(robustness_markdown(result))


def test_aitrader_results_robustness(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    days = [d.date() for d in pd.bdate_range("2025-01-02", periods=40)]
    engine = create_store_engine(sqlite_url)
    with Session(engine, expire_on_commit=False) as session:
        closes = 500 * np.cumprod(1 + rng.normal(0, 0.01, 41))
        bench_days = [date(2024, 12, 31), *days]
        bars = [
            Bar(symbol="QQQ", ts=datetime(d.year, d.month, d.day), open=c, close=c)
            for d, c in zip(bench_days, closes, strict=True)
        ]
        insert_bars(session, bars)
        run = Run(name="robust", models=["a", "b", "c"], start_date=days[0], end_date=days[-1])
        run.portfolios = {m: f"r/{m}@1" for m in run.models}
        session.add(run)
        session.flush()
        for model, edge, count in [("a", 0.002, 40), ("b", 0.0, 40), ("c", 0.0, 8)]:
            values = 10_000 * np.cumprod(1 + edge + rng.normal(0, 0.01, count))
            for day, value in zip(days[-count:], values, strict=True):
                session.add(completed_day(run, model, day, float(value)))
        session.commit()
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    try:
        arguments = ["results", "robustness", "--window", "10", "--min-sessions", "10"]
        done = CliRunner().invoke(app, [*arguments, "--format", "json"])
        table = CliRunner().invoke(app, arguments, env={"COLUMNS": "200"})
    finally:
        dispose_engines()
    assert done.exit_code == 0, done.output
    rows = {row["model"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {"a", "b", "c"}
    for row in rows.values():
        assert {"model", "share_first", "share_tier1", "deflated_sharpe", "ranked"} <= set(row)
    assert rows["a"]["ranked"] and not rows["c"]["ranked"] and rows["c"]["share_first"] is None
    assert rows["a"]["windows"] == 31 and rows["a"]["tier_windows"] == 4
    assert table.exit_code == 0, table.output
    assert "robustness of run" in table.stdout and "first_10" in table.stdout


def test_the_october_run_is_as_robust_as_the_page_says(
    nasdaq100_daily_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (ROOT / "docs" / "ranking.md").read_text()
    assert "aitrader results robustness --window 5" in page
    monkeypatch.setenv("DATABASE_URL", store_copy(nasdaq100_daily_sqlite, tmp_path / "s.db"))
    monkeypatch.setenv("AITRADER_HOME", str(tmp_path))
    runner = CliRunner()
    try:
        imported = runner.invoke(
            app, ["import-aitrader", str(SHARED_DATA / "legacy_aitrader_daily_run")]
        )
        assert imported.exit_code == 0, imported.output
        done = runner.invoke(app, ["results", "robustness", "--window", "5", "--format", "json"])
    finally:
        dispose_engines()
    assert done.exit_code == 0, done.output
    rows = {row["model"]: row for row in json.loads(done.stdout)}
    leads = {model: row["first_in"] for model, row in rows.items()}
    assert leads == {
        "deepseek-chat-v3.1": 7,
        "MiniMax-M2": 3,
        "qwen3-max": 3,
        "gpt-5": 2,
        "gemini-2.5-flash": 2,
        "claude-3.7-sonnet": 0,
    }
    deepseek = rows["deepseek-chat-v3.1"]
    assert deepseek["rank"] == 1 and deepseek["windows"] == 17 and deepseek["session_count"] == 21
    assert deepseek["share_first_down"] == 1.0 and deepseek["share_first_up"] == pytest.approx(
        2 / 12, abs=1e-6
    )
    assert round(deepseek["deflated_sharpe"], 2) == 0.81 and round(deepseek["sharpe"], 2) == 5.49
    assert all(row["share_tier1"] == 1.0 and row["tier_windows"] == 4 for row in rows.values())
    assert "0.81" in page and "7 of the 17 windows" in page and "the 2.58" in page


def test_a_run_shorter_than_a_window_lists_its_models_unranked() -> None:
    rng = np.random.default_rng(4)
    values = {"a": series(rng.normal(0, 0.01, 4)), "b": series(rng.normal(0, 0.01, 4))}
    result = window_robustness(values, series(rng.normal(0, 0.01, 4)))
    assert result.windows == 0 and [row.ranked for row in result.rows] == [False, False]
    assert robustness_markdown(result) == []


def test_robustness_ranks_the_leaderboards_sessions_by_knowledge_cutoff() -> None:
    # gpt-5's cutoff is 2024-09-30 (the shipped table): 10 of its sessions are before it, 30
    # after; `x` has no known cutoff. By default only clean sessions are ranked, as on the
    # leaderboard: gpt-5's 30, and x (never known clean) is left out, yet still counts in N.
    rng = np.random.default_rng(8)
    run = Run(name="r", models=["gpt-5", "x"], start_date=date(2024, 9, 16))
    days = pd.bdate_range("2024-09-16", periods=41)
    values = {
        m: pd.Series(10_000 * np.cumprod(np.r_[1.0, 1 + rng.normal(0, 0.01, 40)]), index=days)
        for m in run.models
    }
    frame = pd.DataFrame(
        [
            {"model": m, "trial": 1, "day": d, "trades": 0, "tokens_in": 0, "tokens_out": 0}
            | {"cost_usd": 0.0}
            for m in run.models
            for d in days[1:]
        ]
    )
    curves = RunCurves(run=run, curves=[curve(m, 1, v) for m, v in values.items()], days=frame)
    options = RobustnessOptions(window=10, min_sessions=10)
    clean = robustness(curves, options)
    assert clean.sessions == "clean" and clean.trials == 2
    assert [(row.model, row.session_count, row.sessions) for row in clean.rows] == [
        ("gpt-5", 30, "clean")
    ]
    every = robustness(curves, options.model_copy(update={"sessions": "all"}))
    assert every.sessions == "all" and {row.session_count for row in every.rows} == {40}
