"""Sealed decisions: every completed model-day chained by hash, checked by `results verify` and by
the documented third-party script, on SQLite and PostgreSQL, against real tampering."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, select
from typer.testing import CliRunner

from agents.session import run_model_day_sync
from agents.types import ModelDayRequest
from configs.loader import ModelConfig, load_universe
from deployments.cli import app
from market_data.synthetic import synthesize_into, synthetic_market
from models.book import Fill, Portfolio
from models.engine import create_store_engine
from models.ledger import record_completed_day, record_sessions
from models.prices import PriceBook
from models.seals import GENESIS, chain_heads, export_chain, verify_chains
from models.tables import ModelDay, Run, SessionSeal, Trade

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "sealed-decisions.md"
MEGACAPS = load_universe("megacaps").symbols
SEED = 11
DAYS = [date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8), date(2025, 1, 10)]
MODELS = [
    ModelConfig(name="momentum", strategy="momentum", params={"top_k": 3, "lookback": 3}),
    ModelConfig(name="random", strategy="random", params={"seed": 2, "trade_probability": 1.0}),
]
runner = CliRunner()


def simulate(url: str) -> int:
    """Both models over DAYS on a synthetic megacaps market; the run's id."""
    engine = create_store_engine(url)
    with Session(engine) as session:
        synthesize_into(session, MEGACAPS, date(2024, 12, 2), date(2025, 1, 31), seed=SEED)
        run = Run(name="sealed", models=[m.name for m in MODELS], market=synthetic_market(SEED))
        run.portfolios = {m.name: f"sealed/{m.name}" for m in MODELS}
        session.add(run)
        session.commit()
        run_id = run.id
        prices = PriceBook.load(session, market=synthetic_market(SEED))
    for day in DAYS:
        for model in MODELS:
            request = ModelDayRequest(
                run_id=run_id,
                model=model,
                day=day,
                portfolio=f"sealed/{model.name}",
                universe=MEGACAPS,
            )
            result = run_model_day_sync(engine, request, prices)
            assert result.status == "completed", result.error
    return run_id


def verify(url: str, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.setenv("DATABASE_URL", url)
    return runner.invoke(app, ["results", "verify", *args])


def check_script(tmp_path: Path) -> Path:
    """docs/sealed-decisions.md's third-party script, as the page prints it."""
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block, "the page shows no script"
    script = tmp_path / "check_chain.py"
    script.write_text(block.group(1))
    return script


def test_every_day_is_sealed_and_any_tampering_is_named(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate(store_url)
    engine = create_store_engine(store_url)
    with Session(engine) as session:
        days = session.exec(select(ModelDay).order_by(ModelDay.portfolio, ModelDay.day)).all()
        assert verify_chains(session) == []
        heads = chain_heads(session)
    chain = [d for d in days if d.portfolio == "sealed/momentum"]
    assert [d.seal_seq for d in chain] == [1, 2, 3, 4] and chain[0].seal_prev == GENESIS
    assert all(b.seal_prev == a.seal for a, b in itertools.pairwise(chain))
    assert heads["sealed/momentum"] == (4, chain[-1].seal)
    with Session(engine) as session:  # as a run through the second day published it
        assert chain_heads(session, through=DAYS[1])["sealed/momentum"] == (2, chain[1].seal)
    assert {d.track for d in days} == {"backtest"} and all(d.decided_at for d in days)

    shown = verify(store_url, monkeypatch)
    assert shown.exit_code == 0 and "every chain holds: 2 portfolio(s)" in shown.stdout
    exported = runner.invoke(app, ["results", "export-chain"])
    export = tmp_path / "chain.jsonl"
    export.write_text(exported.stdout)
    script = check_script(tmp_path)
    checked = subprocess.run([sys.executable, script, export], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    assert f"sealed/momentum: 4 entries, head {chain[-1].seal}" in checked.stdout

    # An exported entry changed by hand fails the third-party check, naming its line.
    lines = export.read_text().splitlines()
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join([lines[0].replace('"backtest"', '"live"'), *lines[1:]]) + "\n")
    checked = subprocess.run([sys.executable, script, forged], capture_output=True, text=True)
    assert checked.returncode == 1 and "line 1: " in checked.stdout

    # One trade's price edited: that day, and only that day, is named.
    traded = next(d for d in chain if session_trades(engine, d.id))
    trade_id, price = session_trades(engine, traded.id)[0]
    tamper(engine, update(Trade).where(Trade.id == trade_id).values(price=price * 1.01))
    shown = verify(store_url, monkeypatch)
    assert shown.exit_code == 1 and "1 problem(s)" in shown.stderr
    assert f"sealed/momentum {traded.day}: edited" in shown.stdout
    tamper(engine, update(Trade).where(Trade.id == trade_id).values(price=price))
    assert verify(store_url, monkeypatch).exit_code == 0

    # Two days swapped: both named, as edited and out of order.
    first, second = chain[1], chain[2]
    swap_days(engine, first, second)
    shown = verify(store_url, monkeypatch)
    assert shown.exit_code == 1
    assert f"sealed/momentum {second.day}: edited" in shown.stdout
    assert f"sealed/momentum {first.day}: out of order" in shown.stdout
    swap_days(engine, first, second)
    assert verify(store_url, monkeypatch, "--model", "momentum").exit_code == 0

    # A day deleted: the gap is named; a deleted last day only an earlier export can show.
    tamper(engine, ModelDay.__table__.delete().where(ModelDay.id == chain[1].id))
    tamper(engine, ModelDay.__table__.delete().where(ModelDay.id == chain[3].id))
    shown = verify(store_url, monkeypatch)
    assert f"sealed/momentum {chain[2].day}: missing: entry 2" in shown.stdout
    assert str(chain[3].day) not in shown.stdout
    shown = verify(store_url, monkeypatch, "--against", str(export))
    assert f"sealed/momentum {chain[3].day}: missing: entry 4 of the published" in shown.stdout
    engine.dispose()


def session_trades(engine, model_day_id: int) -> list[tuple[int, float]]:
    with Session(engine) as session:
        query = select(Trade.id, Trade.price).where(Trade.model_day_id == model_day_id)
        return list(session.exec(query.order_by(Trade.seq)).all())


def tamper(engine, statement) -> None:
    """What someone with write access to the database could do, bypassing the code."""
    with engine.begin() as connection:
        connection.execute(statement)


def swap_days(engine, a: ModelDay, b: ModelDay) -> None:
    """Give two model-days each other's dates (through a free date: the pair is unique)."""
    with Session(engine) as session:
        day_a, day_b = (session.get(ModelDay, d.id).day for d in (a, b))
    for model_day, day in ((a, date(1999, 1, 1)), (b, day_a), (a, day_b)):
        tamper(engine, update(ModelDay).where(ModelDay.id == model_day.id).values(day=day))


def test_a_day_decided_before_its_session_closed_is_live(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every day decided at 15:00 UTC on 2025-01-10: that day closes at 16:00 New York (21:00
    # UTC), so its decision is live; the earlier days' were made after their close.
    decided = datetime(2025, 1, 10, 15, 0, tzinfo=UTC)
    monkeypatch.setenv("AITRADER_NOW", decided.isoformat())
    simulate(store_url)
    engine = create_store_engine(store_url)
    with Session(engine) as session:
        days = {d.day: d for d in session.exec(select(ModelDay).where(ModelDay.model == "random"))}
        assert days[DAYS[-1]].track == "live"
        assert {days[d].track for d in DAYS[:-1]} == {"backtest"}
        assert days[DAYS[-1]].decided_at.replace(tzinfo=UTC) == decided
        assert verify_chains(session) == []

    # The leaderboard splits the tracks: live ranks only the live session, from the initial cash.
    monkeypatch.setenv("DATABASE_URL", store_url)
    shown = runner.invoke(app, ["results", "--track", "live", "--format", "json"])
    rows = {row["model"]: row for row in json.loads(shown.stdout)}
    assert {row["track"] for row in rows.values()} == {"live"}
    assert rows["random"]["live_sessions"] == 1 and rows["QQQ"]["live_sessions"] is None
    with Session(engine) as session:
        values = {
            d.day: d.value_end
            for d in session.exec(
                select(ModelDay).where(ModelDay.model == "random").order_by(ModelDay.day)
            )
        }
        live_trades = len(
            session.exec(
                select(Trade)
                .join(ModelDay)
                .where(ModelDay.model == "random", ModelDay.day == DAYS[-1])
            ).all()
        )
    assert rows["random"]["trades"] == live_trades > 0  # the live day's own, not every day's
    live_return = values[DAYS[-1]] / values[DAYS[-2]] - 1
    assert rows["random"]["return"] == pytest.approx(live_return, abs=1e-6)  # JSON: 6 places
    assert rows["random"]["start"] == str(DAYS[-2]) and rows["random"]["end"] == str(DAYS[-1])
    everything = json.loads(runner.invoke(app, ["results", "--format", "json"]).stdout)
    backtest = json.loads(
        runner.invoke(app, ["results", "--track", "backtest", "--format", "json"]).stdout
    )
    total = next(r for r in everything if r["model"] == "random")["return"]
    past = next(r for r in backtest if r["model"] == "random")["return"]
    assert (1 + past) * (1 + live_return) == pytest.approx(1 + total, abs=2e-6)
    table = runner.invoke(app, ["results"], env={"COLUMNS": "200"}).stdout
    assert "live_sessions" in table
    monkeypatch.setenv("AITRADER_HOME", str(tmp_path))
    written = runner.invoke(app, ["results", "report", "--track", "live"])
    assert written.exit_code == 0 and "run-1-live" in written.stdout, written.stderr
    report = next(tmp_path.glob("reports/*/run-1-live/report.md")).read_text()
    assert "(live sessions only)" in report.splitlines()[0]
    engine.dispose()


def test_a_day_sealed_in_session_groups_chains_them_before_the_day(
    store_url: str, tmp_path: Path
) -> None:
    """An hourly day traded in two runs: each group's entry, then the day's, in one chain that
    the documented script accepts; a changed group entry or a deleted group is named."""
    engine = create_store_engine(store_url)
    hour = datetime(2025, 1, 6, 10, 0)
    with Session(engine) as session:
        run = Run(name="hourly", models=["random"], portfolios={"random": "hourly/random"})
        session.add(run)
        session.commit()
        day = ModelDay(run_id=run.id, model="random", portfolio="hourly/random", day=DAYS[0])
        session.add(day)
        session.commit()
        prices = PriceBook([])
        buy = Fill(seq=1, side="buy", symbol="AAPL", shares=2, price=100.0, cash_after=9800.0)
        day.session = "10:00"
        after_ten = Portfolio(cash=9800.0, positions={"AAPL": 2})
        record_sessions(session, day, [buy], after_ten, prices, hour.replace(tzinfo=UTC), "live")
        session.commit()
        sell = buy.model_copy(update={"side": "sell", "shares": 1, "cash_after": 9900.0})
        day.session = "10:00, 11:00"
        after = Portfolio(cash=9900.0, positions={"AAPL": 1})
        record_completed_day(session, day, [sell], after, prices, datetime.now(UTC), "backtest")
        session.commit()
        (group,) = session.exec(select(SessionSeal)).all()
        assert group.entry["book"] == {"cash": 9800.0, "holdings": [["AAPL", 2.0]]}
        assert group.entry["through"]["fills"] == 1 and group.seq == 1
        trades = session.exec(select(Trade.seq, Trade.side).order_by(Trade.seq)).all()
        assert [tuple(t) for t in trades] == [(1, "buy"), (2, "sell")]
        assert (day.seal_seq, day.seal_prev, day.track) == (2, group.seal, "backtest")
        assert verify_chains(session) == []
        assert chain_heads(session) == {"hourly/random": (2, day.seal)}
        lines = [json.dumps(entry) for entry in export_chain(session)]
    export = tmp_path / "chain.jsonl"
    export.write_text("\n".join(lines) + "\n")
    checked = subprocess.run(
        [sys.executable, str(check_script(tmp_path)), str(export)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The group's first fill edited: the group (and the day) are named.
    tamper(engine, update(Trade).where(Trade.seq == 1).values(shares=3))
    with Session(engine) as session:
        named = {(p.day, p.problem) for p in verify_chains(session)}
    assert ("2025-01-06 sessions 10:00", "edited: its fills differ from the seal") in named
    tamper(engine, update(Trade).where(Trade.seq == 1).values(shares=2))
    tamper(engine, SessionSeal.__table__.delete())
    with Session(engine) as session:
        (problem,) = verify_chains(session)
    assert problem.day == "2025-01-06" and problem.problem.startswith("missing: entry 1")
