"""Tables that fit the terminal: the leaderboard's compact default at 100 and 80 columns, the
columns left out said, `--wide` and `--columns` for the rest, JSON keeping every field."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from sqlmodel import Session
from typer.testing import CliRunner

from deployments.cli import app
from market_data.calendar import trading_days
from models.engine import create_store_engine, dispose_engines, upgrade
from models.prices import Bar, insert_bars
from models.tables import Run
from tests.conftest import completed_day

DAYS = trading_days(date(2025, 1, 2), date(2025, 1, 31))
MODELS = ["equal-weight", "momentum-with-a-long-name", "random"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('tables') / 'store.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        before = DAYS[0] - timedelta(days=3)
        insert_bars(
            session,
            [
                Bar(
                    symbol="QQQ",
                    ts=datetime.combine(d, datetime.min.time()),
                    open=500 + i,
                    close=500 + i,
                )
                for i, d in enumerate([before, *DAYS])
            ],
        )
        run = Run(name="tables", models=MODELS, start_date=DAYS[0], end_date=DAYS[-1])
        run.portfolios = {m: f"tables/{m}@1" for m in MODELS}
        session.add(run)
        session.flush()
        for k, model in enumerate(MODELS):
            for i, day in enumerate(DAYS):
                value = 10_000 * (1 + (k - 1) * 0.004 * i) + 37.5 * (i % 3)
                session.add(completed_day(run, model, day, value))
        session.commit()
    engine.dispose()
    return url


def results(store: str, columns: int, *arguments: str) -> str:
    """`aitrader results ARGUMENTS` on a terminal COLUMNS wide (in this process: the console is
    made for the width at hand); its output, exit 0 asserted."""
    done = invoke(store, columns, *arguments)
    assert done.exit_code == 0, done.output
    return done.stdout


def invoke(store: str, columns: int, *arguments: str) -> Result:
    try:
        return CliRunner().invoke(
            app, ["results", *arguments], env={"DATABASE_URL": store, "COLUMNS": str(columns)}
        )
    finally:
        dispose_engines()


@pytest.mark.parametrize(
    ("width", "shown"),
    [
        (100, ["return", "final_value", "sharpe", "max_drawdown", "trades"]),
        (80, ["return", "final_value", "sharpe"]),  # the rest said to be too wide
    ],
)
def test_the_default_leaderboard_fits_the_terminal(store: str, width: int, shown: list) -> None:
    output = results(store, width)
    lines = output.splitlines()
    assert max(len(line) for line in lines) <= width
    header = next(line for line in lines if line.split()[:2] == ["rank", "model"])
    assert all(name in header.split() for name in shown)
    for model in MODELS:  # names whole, never folded into three-letter cells
        assert any(model in line.split() for line in lines), model
    optional = ("max_drawdown", "trades", "clean_sessions")  # clean_sessions: cutoffs unknown
    hidden = [c for c in optional if c not in header.split()]
    assert ("too wide for this terminal: " + ", ".join(hidden) in output) == bool(hidden)


def test_a_narrow_terminal_leaves_out_the_least_important_columns_and_says_so(store: str) -> None:
    output = results(store, 60)
    assert max(len(line) for line in output.splitlines()) <= 60
    header = next(line for line in output.splitlines() if line.split()[:2] == ["rank", "model"])
    assert "return" in header and "trades" not in header
    assert "too wide for this terminal:" in output and "trades" in output.split("too wide")[1]


def test_wide_and_chosen_columns_and_json_keep_every_field(store: str) -> None:
    wide = results(store, 400, "--wide")
    assert "info_ratio" in wide and "turnover" in wide and "annualized" in wide
    # However narrow the terminal, --wide cuts no value and no name: its lines are just longer.
    folded = results(store, 100, "--wide")
    header = next(line for line in folded.splitlines() if line.split()[:2] == ["rank", "model"])
    assert "info_ratio" in header.split() and "…" not in header
    assert max(len(line) for line in folded.splitlines()) > 100
    chosen = results(store, 100, "--columns", "beta", "--columns", "alpha")
    header = next(line for line in chosen.splitlines() if line.split()[:2] == ["rank", "model"])
    assert header.split() == ["rank", "model", "beta", "alpha"]  # in the order asked for
    rows = json.loads(results(store, 80, "--format", "json"))
    assert {"annualized", "sortino", "calmar", "info_ratio", "dd_peak"} <= set(rows[0])
    bad = invoke(store, 100, "--columns", "nope")
    assert bad.exit_code == 1 and "unknown column(s) nope; known: rank, model" in bad.stderr
    assert Path(store.removeprefix("sqlite:///")).exists()


def test_levels_show_no_sign_and_changes_do() -> None:
    from deployments.output import _cell

    assert _cell(0.05, "return") == "+5.00%" and _cell(0.05, "gross_return") == "+5.00%"
    assert _cell(0.05, "volatility") == "5.00%" and _cell(0.5, "win_rate") == "50.00%"
    assert _cell(-0.0593, "max_drawdown") == "-5.93%" and _cell(0.0, "max_drawdown") == "0.00%"


def test_a_value_reads_the_same_wherever_it_was_computed() -> None:
    from analysis.formats import fixed, percent
    from website.build import money

    # Stored as 9945.755, or summed to 9945.755000000001: one reading, as the import showed.
    assert fixed(9945.755) == fixed(9945.755000000001) == money(9945.755) == "9,945.76"
    assert fixed(-0.001) == "0.00" and fixed(2.5, 0) == "3" and percent(0.138894) == "+13.89%"
