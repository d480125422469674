"""The TypeScript scripts under bun: unit tests with a stubbed fetch, and end-to-end tests against a
real Prefect server (basic auth) serving the backtest deployments. The e2e results are then checked
against the project's own store and stored with the Python script, as the Windmill flow would."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session, select

from analysis.leaderboard import leaderboard
from analysis.report import leaderboard_artifact
from models.engine import create_store_engine
from models.tables import ModelDay, Run
from tests.conftest import running_prefect_server
from tests.test_deployment_e2e import served_deployments
from tests.windmill.conftest import WINDMILL, workspace_script

AUTH = "windmill:e2e-secret"
E2E_TESTS = 6  # the tests in windmill/tests/prefect_e2e.test.ts: none may be skipped


@dataclass
class BunRun:
    """One `bun test` run: its JUnit report summary and console output."""

    tests: int
    failures: int
    skipped: int
    output: str


def bun_test(bun: Path, test_file: str, report: Path, env: dict, timeout: float) -> BunRun:
    """Run `bun test <test_file>` in windmill/ and read its JUnit report."""
    done = subprocess.run(
        [str(bun), "test", test_file, "--reporter=junit", f"--reporter-outfile={report}"],
        cwd=WINDMILL,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert report.exists(), f"bun wrote no report (exit {done.returncode}):\n{output}"
    suite = ET.parse(report).getroot()
    run = BunRun(
        tests=int(suite.get("tests", 0)),
        failures=int(suite.get("failures", 0)) + int(suite.get("errors", 0)),
        skipped=int(suite.get("skipped", 0)),
        output=output,
    )
    # The exit code and the report must agree (a crash outside any test shows in the code only).
    assert (done.returncode == 0) == (run.failures == 0), output
    return run


def test_unit_tests_with_a_stubbed_fetch(bun: Path, tmp_path: Path) -> None:
    run = bun_test(bun, "tests/unit.test.ts", tmp_path / "unit.xml", dict(os.environ), 120)
    assert run.failures == 0, run.output
    assert run.tests >= 30 and run.skipped == 0, run.output


def served(test: Callable) -> Callable:
    """A test on the served deployments: slow, and on the worker that serves them (one server
    for the module's tests)."""
    return pytest.mark.slow(pytest.mark.xdist_group("windmill-e2e")(test))


@dataclass
class ServedPrefect:
    api_url: str
    store: str  # the project store the served backtests write to


@pytest.fixture(scope="module")
def served_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPrefect]:
    """A Prefect server with basic auth and `aitrader serve` of the backtest deployments."""
    home = tmp_path_factory.mktemp("windmill-e2e")
    (home / "server").mkdir()
    with running_prefect_server(home / "server", PREFECT_SERVER_API_AUTH_STRING=AUTH) as url:
        store = f"sqlite:///{home / 'store.db'}"
        # PREFECT_API_AUTH_STRING: the client side of the server's auth string.
        with served_deployments(url, store, home, PREFECT_API_AUTH_STRING=AUTH):
            yield ServedPrefect(api_url=url, store=store)


@pytest.fixture(scope="module")
def e2e(bun: Path, served_prefect: ServedPrefect, tmp_path_factory: pytest.TempPathFactory):
    """windmill/tests/prefect_e2e.test.ts run once against the served deployments."""
    out = tmp_path_factory.mktemp("windmill-e2e-out")
    env = {
        **os.environ,
        "WINDMILL_E2E_API_URL": served_prefect.api_url,
        "WINDMILL_E2E_AUTH_STRING": AUTH,
        "WINDMILL_E2E_OUT": str(out),
    }
    run = bun_test(bun, "tests/prefect_e2e.test.ts", out / "e2e.xml", env, 900)
    return run, out


@served
def test_scripts_against_a_real_prefect_server(e2e) -> None:
    run, _ = e2e
    assert run.failures == 0, run.output
    assert (run.tests, run.skipped) == (E2E_TESTS, 0), run.output


def _store_run(store: str, flow_run_id: str) -> tuple[list[dict], list[tuple]]:
    """The leaderboard and (day, model, value) rows the project store holds for a flow run."""
    engine = create_store_engine(store)
    with Session(engine) as session:
        run = session.exec(select(Run).where(Run.flow_run_id == flow_run_id)).one()
        board = leaderboard_artifact(session, run, leaderboard(session, run.id))
        days = session.exec(select(ModelDay).where(ModelDay.run_id == run.id)).all()
        values = sorted((str(d.day), d.model, round(d.value_end, 2)) for d in days)
    engine.dispose()
    return board, values


def _fetched(out: Path, name: str) -> dict:
    path = out / name
    if not path.exists():
        pytest.fail(f"{name} was not written: the bun e2e test that writes it failed")
    return json.loads(path.read_text())


@served
def test_fetched_results_are_the_runs_own(e2e, served_prefect: ServedPrefect) -> None:
    _, out = e2e
    fetched = _fetched(out, "fetched.json")
    board, values = _store_run(served_prefect.store, fetched["flow_run_id"])
    assert fetched["leaderboard"] == board
    got = sorted((v["day"], v["model"], round(v["value"], 2)) for v in fetched["daily_values"])
    assert got == values
    assert len({day for day, _, _ in values}) == 4  # 2025-01-06..10 less the 9th (NYSE closed)


@served
def test_flow_results_are_stored_and_shown(e2e, served_prefect: ServedPrefect, mocked_wmill):
    _, out = e2e
    store_input = _fetched(out, "flow_store_input.json")
    store = workspace_script("store_simulation_results")
    latest = workspace_script("get_latest_performance")
    saved = store.main(**store_input)
    assert saved["leaderboard_rows"] == 4 and saved["daily_value_rows"] == 5 * 3
    board, _ = _store_run(served_prefect.store, store_input["results"]["flow_run_id"])
    table = latest.main("table")
    shown = (
        "model",
        "final_value",
        "return_pct",
        "tier",
        "return_ci_low_pct",
        "return_ci_high_pct",
        "costs_paid",
        "return_at_0x_pct",
        "tier_at_3x",
    )
    assert {tuple(r[k] for k in shown) for r in table} == {
        tuple(r[k] for k in shown) for r in board
    }
    assert {r["tier"] for r in table if r["model"] != "QQQ"} >= {1}  # the dashboard shows tiers
    # ... and what the fills paid: with the US costs, every model that traded paid something.
    assert all(r["costs_paid"] > 0 for r in table if r["model"] != "QQQ" and r["trades"])
    returns = [r["return_pct"] for r in table]
    assert returns == sorted(returns, reverse=True)
    chart = latest.main("chart")
    assert chart["labels"][0] == "2025-01-13" and chart["labels"][-1] == "2025-01-17"
    assert sorted(d["label"] for d in chart["datasets"]) == ["equal-weight", "momentum", "random"]
