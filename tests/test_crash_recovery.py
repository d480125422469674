"""Acceptance: `kill -9` of a default-config backtest mid-run, then an immediate re-run.

The re-run completes, counted from the kill, within 1.5 times an uninterrupted run of the same
command measured right after it on the same machine (about 80 s against 60 s on an idle one: no
wait for the killed claims' 60 s lease, which the takeover check below pins down), its books are
identical to those of the uninterrupted run, every model-day the killed run was simulating is
taken over, and the killed run shows as crashed. The uninterrupted run is the quick start's
(`quickstart_backtest`, the same command), which the documentation test reads as well.

Each backtest is `aitrader backtest` as a user runs it: no PREFECT_API_URL, so the command starts
its own temporary Prefect server (a child process in its process group) and runs the flow in
process. The kill takes the whole process group, so nothing of the killed run survives; the
re-run uses the same store and the same PREFECT_HOME, as a user's re-run would.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from models.engine import create_store_engine
from models.tables import Holding, ModelDay, ModelDayStatus, Run, RunStatus, Trade
from tests.conftest import (
    ROOT,
    FinishedBacktest,
    live_group_members,
    quickstart_job,
    run_command,
    wait_for,
)

# One worker runs this test and the documentation's quick start test, which share the
# uninterrupted run; this one first, so that the run is measured right after the re-run.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("quickstart-backtest")]

START, END = "2025-01-02", "2025-03-31"
MODELS = 3  # the built-in strategy models of configs/default.yaml
TRADING_DAYS = 60  # NYSE sessions from START to END
PLANNED = MODELS * TRADING_DAYS
KILL_AFTER = 30  # completed model-days before the kill: well into the run, far from its end
KILL_LATEST = 60  # the kill comes by then even if no model-day was seen running
RECOVERY_RATIO = 1.5  # kill to re-run end, against an uninterrupted run's duration
RUN_TIMEOUT_S = 400


def backtest_command(reports: Path) -> list[str]:
    """The default-config backtest (the quick start's), its report files kept apart."""
    assert quickstart_job()[1:] == ["backtest", "--start", START, "--end", END]
    return [sys.executable, "-m", "deployments", *quickstart_job()[1:], "--reports", str(reports)]


def store_env(folder: Path) -> dict[str, str]:
    """An environment with its own SQLite store and Prefect home, and no Prefect server set."""
    (folder / "prefect").mkdir(parents=True)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
        "PREFECT_HOME": str(folder / "prefect"),
        "COLUMNS": "200",
    }
    env.pop("PREFECT_API_URL", None)  # the command starts its own temporary server
    return env


def model_day_counts(engine: Engine) -> Counter[str]:
    """Model-days by status; none before the command has created and migrated the store."""
    if not Path(engine.url.database).exists():
        return Counter()  # not created by this reader: the command creates and migrates it
    try:
        with Session(engine) as session:
            query = select(ModelDay.status, func.count()).group_by(ModelDay.status)
            return Counter(dict(session.exec(query).all()))
    except OperationalError:  # its tables are not migrated yet
        return Counter()


def kill_mid_model_day(process: subprocess.Popen, engine: Engine) -> float:
    """SIGKILL the process group once `KILL_AFTER` model-days are done; the monotonic kill time.

    From then on the store is polled fast to kill while a model-day is running, so the re-run has
    a day to take over; failing that (a strategy's day lasts a fraction of a second), the kill
    comes at `KILL_LATEST` regardless.
    """
    deadline = time.monotonic() + 240
    while True:
        if process.poll() is not None:
            pytest.fail(f"the backtest exited with {process.returncode} before it was killed")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {KILL_AFTER} completed model-days")
        counts = model_day_counts(engine)
        done = counts[ModelDayStatus.COMPLETED]
        if done >= KILL_AFTER and (counts[ModelDayStatus.RUNNING] or done >= KILL_LATEST):
            os.killpg(process.pid, signal.SIGKILL)
            return time.monotonic()
        time.sleep(0.02 if done >= KILL_AFTER else 0.3)


def books(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """Each completed model-day's book by (model, day): portfolio, cash, value, trades, holdings."""
    with Session(engine) as session:
        days = session.exec(
            select(ModelDay).where(ModelDay.status == ModelDayStatus.COMPLETED)
        ).all()
        trade = (Trade.model_day_id, Trade.seq, Trade.symbol, Trade.side, Trade.shares, Trade.price)
        trades = session.exec(select(*trade)).all()
        holdings = session.exec(
            select(Holding.model_day_id, Holding.symbol, Holding.shares, Holding.value)
        ).all()
    trades_of: dict[int, list[tuple]] = {}
    for model_day_id, *trade in sorted(trades):
        trades_of.setdefault(model_day_id, []).append(tuple(trade))
    holdings_of: dict[int, list[tuple]] = {}
    for model_day_id, *holding in sorted(holdings):
        holdings_of.setdefault(model_day_id, []).append(tuple(holding))
    return {
        (d.model, d.day.isoformat()): {
            "portfolio": d.portfolio,
            "cash_end": d.cash_end,
            "value_end": d.value_end,
            "trades": trades_of.get(d.id, []),
            "holdings": holdings_of.get(d.id, []),
        }
        for d in days
    }


@pytest.mark.timeout(900)
def test_a_killed_backtest_is_recovered_by_an_immediate_rerun(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    crashed_env = store_env(tmp_path / "crashed")
    command = backtest_command(tmp_path / "reports")
    engine = create_store_engine(crashed_env["DATABASE_URL"])  # the test only reads the store

    # 1. Start the backtest; kill -9 its whole process group once it is well under way.
    log = (tmp_path / "killed.log").open("w")
    killed = subprocess.Popen(
        command,
        env=crashed_env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        killed_at = kill_mid_model_day(killed, engine)
        killed.wait(timeout=30)  # reaped, as a shell would: its pid is gone at once
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
        log.close()
    assert killed.returncode == -signal.SIGKILL
    wait_for(lambda: not live_group_members(killed.pid), 10, "the killed process group to end")

    with Session(engine) as session:
        (killed_run,) = session.exec(select(Run)).all()
        done_before = model_day_counts(engine)[ModelDayStatus.COMPLETED]
        running_at_kill = {
            (d.portfolio, d.day): d
            for d in session.exec(select(ModelDay).where(ModelDay.status == ModelDayStatus.RUNNING))
        }
    assert killed_run.status == RunStatus.RUNNING  # nobody has looked yet
    assert KILL_AFTER <= done_before < PLANNED, "the kill did not land mid-run"

    # 2. Re-run at once, in the same store and Prefect home.
    rerun = run_command(command, crashed_env, timeout=RUN_TIMEOUT_S)
    recovered_s = time.monotonic() - killed_at
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Completed:" in rerun.stdout, rerun.stdout

    # 3. An uninterrupted run of the same command in a fresh store: the reference books. Asked
    # for only now, so that (unless another test ran it first) it is measured right after.
    reference: FinishedBacktest = request.getfixturevalue("quickstart_backtest")
    reference_s = reference.seconds
    assert recovered_s <= RECOVERY_RATIO * reference_s, (
        f"the re-run finished {recovered_s:.0f} s after the kill; "
        f"an uninterrupted run took {reference_s:.0f} s"
    )
    assert f"Completed: {TRADING_DAYS} day(s), {PLANNED} model-day(s)" in reference.output
    reference_engine = create_store_engine(f"sqlite:///{reference.store}")
    try:
        expected = books(reference_engine)
    finally:
        reference_engine.dispose()

    # 4. The books: every planned model-day completed exactly once, identical to the reference.
    try:
        with Session(engine) as session:
            rows = session.exec(select(ModelDay.portfolio, ModelDay.day, ModelDay.status)).all()
            runs = {run.id: run for run in session.exec(select(Run))}
            taken_over = {
                (d.portfolio, d.day): d
                for d in session.exec(select(ModelDay))
                if (d.portfolio, d.day) in running_at_kill
            }
        actual = books(engine)
    finally:
        engine.dispose()
    assert Counter(status for _, _, status in rows) == {ModelDayStatus.COMPLETED: PLANNED}
    twice = [key for key, n in Counter((p, d) for p, d, _ in rows).items() if n > 1]
    assert twice == [], f"model-days completed twice: {twice}"
    assert len(expected) == PLANNED
    per_model = Counter(model for model, _ in expected)
    assert len(per_model) == MODELS and set(per_model.values()) == {TRADING_DAYS}
    assert actual.keys() == expected.keys()
    differing = [key for key in sorted(expected) if actual[key] != expected[key]]
    assert not differing, (
        f"{len(differing)} model-day(s) differ from the uninterrupted run; the first, "
        f"{differing[0]}: {actual[differing[0]]} != {expected[differing[0]]}"
    )

    # 5. The killed run is crashed, the re-run completed; the re-run took the running days over.
    (rerun_id,) = set(runs) - {killed_run.id}
    listed = run_command(
        [sys.executable, "-m", "deployments", "results", "runs", "--format", "json"], crashed_env
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    statuses = {row["id"]: row["status"] for row in json.loads(listed.stdout)}
    assert statuses == {killed_run.id: "crashed", rerun_id: "completed"}
    assert runs[killed_run.id].message.startswith("crashed: its process"), runs[killed_run.id]
    # Prefect is told too: the killed flow run is Crashed in the server's database, not Running.
    prefect_db = sqlite3.connect(Path(crashed_env["PREFECT_HOME"]) / "prefect.db")
    (state,) = prefect_db.execute(
        "select state_type from flow_run where id = ?", (killed_run.flow_run_id,)
    ).fetchone()
    prefect_db.close()
    assert state == "CRASHED"
    rerun_holder = runs[rerun_id].holder
    assert rerun_holder and rerun_holder != killed_run.holder
    for key, at_kill in running_at_kill.items():
        model_day = taken_over[key]
        assert at_kill.claimed_by == killed_run.holder, key
        assert model_day.claimed_by == rerun_holder, key
        assert model_day.attempts >= max(2, at_kill.attempts + 1), key

    takeovers = ", ".join(
        f"{d.model} {d.day} taken over "
        f"{(d.lease_until - taken_over[key].started_at).total_seconds():.1f} s before its lease end"
        for key, d in running_at_kill.items()
    )
    print(
        f"\n{done_before}/{PLANNED} model-days done at the kill, {len(running_at_kill)} running"
        f" ({takeovers or 'none'}); re-run finished {recovered_s:.1f} s after the kill"
        f" (an uninterrupted run: {reference_s:.1f} s);"
        f" re-run said: {rerun.stdout.strip().splitlines()[0]}"
    )
