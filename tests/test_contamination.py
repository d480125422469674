"""Knowledge cutoffs: the shipped table, a config's own cutoff, the leaderboard's clean and
contaminated sessions and the memory premium, on stores built directly (no Prefect)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

from analysis.contamination import model_cutoff
from analysis.leaderboard import RankingOptions, leaderboard_row, rank_run
from configs.cutoffs import cutoff_table, known_cutoff
from configs.loader import AppConfig, ModelConfig
from flows.plan import model_fingerprint
from models.errors import ConfigError, ResultsError
from models.prices import Bar, insert_bars
from models.tables import Run
from tests.conftest import ORIGINAL_SIX, completed_day

DAYS = list(pd.bdate_range("2025-01-02", periods=60).date)
CUTOFF = DAYS[29]  # the memorizer knows how the first 30 sessions ended


def test_the_table_knows_the_original_six_with_their_sources() -> None:
    for name in ORIGINAL_SIX:
        row = known_cutoff(name)
        assert row is not None and row.source, name
    # Every cutoff of the table precedes the original's October 2025 run.
    assert all(row.cutoff < date(2025, 10, 1) for row in cutoff_table().values())


@pytest.mark.parametrize(
    ("model_id", "cutoff"),
    [
        ("openai/gpt-5", date(2024, 9, 30)),
        ("GPT-5", date(2024, 9, 30)),
        ("gpt-5-2025-08-07", date(2024, 9, 30)),
        ("anthropic/claude-3.7-sonnet", date(2024, 11, 30)),
        ("claude-3-7-sonnet-20250219", date(2024, 11, 30)),
        ("deepseek/deepseek-chat-v3.1:free", date(2025, 7, 31)),
        ("minimax/minimax-m2", date(2025, 9, 30)),
        ("gpt-5-astock-hour", date(2024, 9, 30)),  # the original's hourly A-share signature
    ],
)
def test_the_table_reads_ids_as_configs_write_them(model_id: str, cutoff: date) -> None:
    row = known_cutoff(model_id)
    assert row is not None and row.cutoff == cutoff


def test_a_config_states_its_own_cutoff_or_the_table_gives_it() -> None:
    stated = {"name": "mine", "basemodel": "openai/gpt-5", "knowledge_cutoff": "2025-03"}
    assert model_cutoff("mine", stated).knowledge_cutoff == date(2025, 3, 31)
    assert model_cutoff("mine", stated).source == "config"
    by_basemodel = model_cutoff("trader-a", {"basemodel": "openai/gpt-5"})
    assert (by_basemodel.knowledge_cutoff, by_basemodel.source) == (date(2024, 9, 30), "table")
    assert model_cutoff("MiniMax-M2").source == "table, approximate"
    unknown = model_cutoff("my-llm", {"basemodel": "local/my-llm"})
    assert unknown.knowledge_cutoff is None and unknown.kind_of(date(2020, 1, 1)) == "unknown"
    strategy = model_cutoff("mom", {"kind": "strategy"})
    assert strategy.source == "n/a" and strategy.kind_of(date(2020, 1, 1)) == "clean"


@pytest.mark.parametrize("value", ["2024-13", "soon", "2024-02-30"])
def test_an_unparseable_cutoff_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(ValueError, match="knowledge_cutoff"):
        ModelConfig(name="m", basemodel="x", knowledge_cutoff=value)


def test_a_strategy_states_no_cutoff() -> None:
    with pytest.raises(ValueError, match="no knowledge cutoff"):
        ModelConfig(name="m", strategy="momentum", knowledge_cutoff="2024-01-01")


def test_the_cutoff_leaves_the_portfolio_fingerprint_as_it_was() -> None:
    def fingerprint(**extra: str) -> str:
        config = AppConfig(models=[{"name": "m", "basemodel": "openai/gpt-5", **extra}])
        return model_fingerprint(config, config.model("m"))

    assert fingerprint() == fingerprint(knowledge_cutoff="2025-01-31")


def _returns() -> dict[str, list[float]]:
    """Daily returns: the memorizer is right every contaminated day and random (mean 0) after;
    the steady strategy earns 0.3 % every day; my-llm (no known cutoff) 0.1 %."""
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 0.01, len(DAYS) - 30)
    noise -= noise.mean()
    return {
        "memorizer": [0.02] * 30 + list(noise),
        "steady": [0.003] * len(DAYS),
        "my-llm": [0.001] * len(DAYS),
    }


def _store_run(session: Session) -> Run:
    """A run of the three models over DAYS, QQQ flat at 500 with a small wiggle."""
    before = DAYS[0] - timedelta(days=1)
    closes = [500.0 * (1 + 0.001 * ((i % 3) - 1)) for i in range(len(DAYS) + 1)]
    insert_bars(
        session,
        [
            Bar(symbol="QQQ", ts=datetime(d.year, d.month, d.day), open=c, close=c)
            for d, c in zip([before, *DAYS], closes, strict=True)
        ],
    )
    models = [
        {
            "name": "memorizer",
            "kind": "openai",
            "basemodel": "x/mem",
            "knowledge_cutoff": str(CUTOFF),
        },
        {"name": "steady", "kind": "strategy", "strategy": "momentum"},
        {"name": "my-llm", "kind": "openai", "basemodel": "local/my-llm"},
    ]
    run = Run(
        name="cutoffs",
        models=[m["name"] for m in models],
        start_date=DAYS[0],
        end_date=DAYS[-1],
        config={"models": models},
    )
    run.portfolios = {m["name"]: f"cutoffs/{m['name']}@1" for m in models}
    session.add(run)
    session.flush()
    for model, returns in _returns().items():
        values = 10_000 * np.cumprod(1 + np.array(returns))
        for day, value in zip(DAYS, values, strict=True):
            session.add(completed_day(run, model, day, float(value)))
    session.commit()
    return run


def _rows(session: Session, run: Run, sessions: str = "auto") -> dict[str, dict]:
    options = RankingOptions(sessions=sessions, resamples=500)
    ranking = rank_run(session, run.id, options=options)
    return {row.model: leaderboard_row(row) for row in ranking.rows if not row.is_benchmark}


def test_a_memorizer_ranks_first_on_all_sessions_and_not_on_clean_ones(session: Session) -> None:
    run = _store_run(session)
    every = _rows(session, run, "all")
    assert every["memorizer"]["rank"] == 1 and every["memorizer"]["sessions"] == "all"
    assert set(every) == {"memorizer", "steady", "my-llm"}
    # By default the ranking counts clean sessions: the memorizer has both kinds.
    ranking = rank_run(session, run.id, options=RankingOptions(resamples=500))
    assert ranking.sessions == "clean"
    assert ranking.left_out == {
        "my-llm": "knowledge cutoff unknown: state knowledge_cutoff in its config"
    }
    clean = {row.model: leaderboard_row(row) for row in ranking.rows if not row.is_benchmark}
    assert clean["steady"]["rank"] == 1 and clean["memorizer"]["rank"] == 2
    memorizer = clean["memorizer"]
    assert memorizer["knowledge_cutoff"] == CUTOFF and memorizer["cutoff_source"] == "config"
    assert (memorizer["clean_sessions"], memorizer["contaminated_sessions"]) == (30, 30)
    low, high = memorizer["memory_premium_ci"]
    assert 0 < low < memorizer["memory_premium"] < high
    assert memorizer["memory_premium"] == pytest.approx(0.02, abs=0.002)
    # A built-in strategy learned nothing: every session clean, no premium.
    steady = clean["steady"]
    assert (steady["knowledge_cutoff"], steady["cutoff_source"]) == (None, "n/a")
    assert (steady["clean_sessions"], steady["contaminated_sessions"]) == (60, 0)
    assert steady["memory_premium_ci"] is None
    # Ranked on its clean sessions only, the memorizer's return is its random half's.
    assert clean["memorizer"]["return"] < 0.05 < every["memorizer"]["return"]


def test_an_unknown_cutoff_is_shown_unknown_never_clean(session: Session) -> None:
    run = _store_run(session)
    unknown = _rows(session, run, "all")["my-llm"]
    assert unknown["knowledge_cutoff"] is None and unknown["cutoff_source"] == "unknown"
    assert unknown["clean_sessions"] is None and unknown["contaminated_sessions"] is None
    assert unknown["memory_premium_ci"] is None


def test_the_contaminated_sessions_rank_only_models_that_have_them(session: Session) -> None:
    run = _store_run(session)
    rows = _rows(session, run, "contaminated")
    assert set(rows) == {"memorizer"} and rows["memorizer"]["sessions"] == "contaminated"


def test_a_run_with_no_session_of_a_kind_says_so(session: Session) -> None:
    run = _store_run(session)
    with pytest.raises(ResultsError, match="no contaminated sessions"):
        rank_run(session, run.id, model="steady", options=RankingOptions(sessions="contaminated"))


def test_a_config_with_a_bad_cutoff_names_the_field(tmp_path) -> None:
    from configs.loader import load_config

    path = tmp_path / "bad.yaml"
    path.write_text(
        "models:\n  - name: m\n    basemodel: openai/gpt-5\n    knowledge_cutoff: someday\n"
    )
    with pytest.raises(ConfigError, match=r"models\.0\.knowledge_cutoff"):
        load_config(path)


def test_a_backtest_before_a_cutoff_says_so_when_it_starts() -> None:
    from flows.plan import ModelPlan
    from flows.preflight import cutoff_warnings

    def plan(days: list[date], **model: str) -> ModelPlan:
        return ModelPlan(model=ModelConfig(**model), portfolio="p", days=days, last_completed=None)

    september = [date(2024, 9, 27), date(2024, 9, 30), date(2024, 10, 1)]
    lines = cutoff_warnings(
        [
            plan(september, name="gpt", basemodel="openai/gpt-5"),  # cutoff 2024-09-30
            plan(september[:2], name="old", basemodel="x", knowledge_cutoff="2025-01"),
            plan(september, name="mine", basemodel="local/unknown"),
            plan(september, name="mom", strategy="momentum"),
        ]
    )
    assert lines == [
        "gpt: 2 of 3 sessions (2024-09-27 to 2024-09-30) are on or before its knowledge cutoff "
        "2024-09-30: it may remember how they ended (the leaderboard ranks clean sessions by "
        "default)",
        "old: every session (2024-09-27 to 2024-09-30) is on or before its knowledge cutoff "
        "2025-01-31: it may remember how they ended, and no clean session ranks it",
    ]


def test_the_cli_ranks_clean_sessions_and_says_so_in_one_line(
    store_url: str, session: Session
) -> None:
    import json

    from typer.testing import CliRunner

    from deployments.cli import app
    from models.engine import dispose_engines

    _store_run(session)
    env = {"DATABASE_URL": store_url, "COLUMNS": "200"}

    def aitrader(*arguments: str):
        try:
            return CliRunner().invoke(app, ["results", *arguments], env=env)
        finally:
            dispose_engines()

    table = aitrader("--resamples", "200").stdout
    assert (
        "ranked on clean sessions only (after each model's knowledge cutoff; --sessions all "
        "counts every one); not ranked: my-llm (knowledge cutoff unknown" in table
    )
    assert "clean_sessions" in table
    rows = json.loads(aitrader("--sessions", "all", "--format", "json").stdout)
    assert [r["model"] for r in rows if r["rank"] == 1] == ["memorizer"]
    assert {r["sessions"] for r in rows} == {"all"}
    refused = aitrader("--sessions", "bogus")
    assert refused.exit_code != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "--sessions" in refused.stderr


def test_the_report_lists_each_models_cutoff_and_memory_premium(session: Session) -> None:
    from analysis.report import leaderboard_table, render_report

    run = _store_run(session)
    report = render_report(session, run.id)
    section = report.markdown.split("## Knowledge cutoffs", 1)[1].split("\n## ", 1)[0]
    assert "Ranked on clean sessions only" in section
    assert "| memorizer | 2025-02-12 | config | 30 | 30 | 2.00% (" in section
    assert "| steady | - | n/a | 60 | 0 | - |" in section
    assert "| my-llm | - | not ranked: knowledge cutoff unknown" in section
    (memorizer,) = [r for r in leaderboard_table(report.ranking.rows) if r["model"] == "memorizer"]
    assert memorizer["knowledge_cutoff"] == "2025-02-12" and memorizer["sessions"] == "clean"
    assert 0 < memorizer["memory_premium_ci_low_pct"] < memorizer["memory_premium_ci_high_pct"]


@pytest.mark.parametrize("process", ["iid normal", "ar(1) +0.3"])
def test_the_memory_premium_interval_covers_a_zero_premium_as_it_claims(process: str) -> None:
    # A lighter `benchmarks/memory_premium.py`: 300 series of 22 sessions, no premium; 95 %
    # intervals should contain 0 in about 95 % (the benchmark measures 96 % on 2,000).
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location(
        "memory_premium_benchmark", ROOT / "benchmarks" / "memory_premium.py"
    )
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert 0.92 <= benchmark.coverage(process, 22, 300, 0.95, seed=3) <= 0.995
