"""The aitrader CLI end to end on a real store: data, legacy import, results, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deployments.cli import app
from models.engine import dispose_engines, head_revision

runner = CliRunner()


@pytest.fixture
def cli(store_url: str, monkeypatch: pytest.MonkeyPatch):
    """Invoke `aitrader ...` against the test store; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", store_url)
    monkeypatch.delenv("AITRADER_DEBUG", raising=False)

    def invoke(*args: str | Path) -> tuple[int, str, str]:
        result = runner.invoke(app, [str(a) for a in args])
        return result.exit_code, result.stdout, result.stderr

    yield invoke
    dispose_engines()


def test_import_coverage_legacy_and_leaderboard(cli, shared_data: Path) -> None:
    code, out, _ = cli("data", "import", shared_data / "nasdaq100_daily")
    assert code == 0 and "inserted 10," in out
    code, out, _ = cli("data", "import", shared_data / "nasdaq100_daily")
    assert code == 0 and "inserted 0 new" in out

    code, out, _ = cli("data", "coverage", "--format", "json")
    rows = json.loads(out)
    assert len(rows) == 103
    assert {r["first"] for r in rows if r["symbol"] != "FB"} == {"2025-06-10"}
    assert {r["last"] for r in rows if r["symbol"] != "FB"} == {"2025-10-30"}
    (fb,) = [r for r in rows if r["symbol"] == "FB"]
    assert (fb["last"], fb["days"]) == ("2025-10-16", 79)

    code, out, _ = cli("import-aitrader", shared_data / "legacy_aitrader_daily_run")
    assert code == 0 and "gpt-5" in out
    code, out, _ = cli("import-aitrader", shared_data / "legacy_aitrader_daily_run")
    assert code == 0 and "already imported" in out

    code, out, _ = cli("results", "leaderboard", "--format", "json")
    board = json.loads(out)
    assert [r["rank"] for r in board] == [1, 2, 3, 4, 5, 6, None]
    assert board[-1]["model"] == "QQQ"
    assert all(r["start"] == "2025-10-01" and r["end"] == "2025-10-30" for r in board)

    code, out, _ = cli(
        "results",
        "days",
        "--model",
        "gpt-5",
        "--start",
        "2025-10-10",
        "--end",
        "2025-10-17",
        "--format",
        "csv",
    )
    days = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [d["day"] for d in days] == [
        "2025-10-10",
        "2025-10-13",
        "2025-10-14",
        "2025-10-15",
        "2025-10-16",
        "2025-10-17",
    ]
    assert {d["model"] for d in days} == {"gpt-5"}

    code, out, _ = cli("results", "runs", "--format", "json")
    (run,) = json.loads(out)
    assert run["kind"] == "legacy-import" and run["status"] == "completed"

    code, out, _ = cli("results", "leaderboard")
    assert code == 0 and "leaderboard of run" in out and "QQQ" in out

    code, out, _ = cli(
        "results", "details", "--model", "gpt-5", "--day", "2025-10-10", "-f", "json"
    )
    assert code == 0 and [(d["model"], d["day"]) for d in json.loads(out)] == [
        ("gpt-5", "2025-10-10")
    ]

    # `aitrader results` alone is the leaderboard, and so are options with no view before them.
    assert cli("results", "--format", "json") == cli("results", "leaderboard", "--format", "json")


def test_synthetic_market_from_the_default_config(cli) -> None:
    code, out, _ = cli("data", "synth", "--start", "2025-01-02", "--end", "2025-01-31")
    assert code == 0 and "101 symbols + QQQ" in out
    code, out, _ = cli("data", "coverage", "--interval", "1d", "--format", "json")
    rows = json.loads(out)
    assert len(rows) == 102 and {r["days"] for r in rows} == {20}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("results", "--start", "2025-10-05", "--end", "2025-10-01"), "is before --start"),
        (("results",), "no runs yet"),
        (("results", "--run", "99"), "no run with id 99"),
        (("import-aitrader", "/nonexistent/agent_data"), "no such file or folder"),
        (("data", "import", "/nonexistent/prices"), "/nonexistent/prices"),
        (("data", "synth", "--start", "2025-02-01", "--end", "2025-01-01"), "is before --start"),
        (("data", "synth", "--config", "/nonexistent.yaml"), "config file not found"),
        (("data", "fetch", "--symbols", "AAPL"), "ALPHAVANTAGE_API_KEY"),
        (("data", "fetch", "--symbol", ","), "--symbol names nothing"),
        (("data", "news", "--ticker", " "), "--ticker names nothing"),
    ],
)
def test_bad_input_is_one_clear_line(cli, monkeypatch, args, message) -> None:
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY", raising=False)
    code, out, err = cli(*args)
    assert code == 1
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 2  # one line, perhaps wrapped by the terminal width


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("results", "--start", "2025-13-01"), "Invalid value for '--start': '2025-13-01'"),
        (("results", "--day", "2025-02-30"), "Invalid value for '--day': '2025-02-30'"),
        (("results", "everything"), "No such command 'everything'"),
        # The old one-command spellings: a one-line hint to the new one.
        (("results", "days", "--detail", "full"), "`aitrader results details`"),
        (("results", "--detail", "full"), "`aitrader results days` for the summary"),
        (
            ("results", "--run", "1", "pairs"),
            "name the view first: use `aitrader results pairs --run 1`",
        ),
        (("results", "-f", "json", "days"), "use `aitrader results days -f json`"),
        (("results", "runs", "--model", "gpt-5"), "No such option: --model"),
        (("data", "synth", "--end", "31/01/2025"), "Invalid value for '--end'"),
        (("data", "fetch", "--until", "tomorrow"), "Invalid value for '--until'"),
        (("data", "news", "--until", "2025-10-32"), "Invalid value for '--until'"),
        (("tools", "serve", "--day", "2025-1-5"), "Invalid value for '--day'"),
    ],
)
def test_a_malformed_option_is_a_usage_error(
    args: tuple[str, ...], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typed options are refused by typer before the command runs, as one `error:` line, exit 1.
    monkeypatch.delenv("AITRADER_DEBUG", raising=False)
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert message in result.stderr and result.stderr.startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr


def test_symbols_and_tickers_repeat_and_split_on_commas(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from market_data import alphavantage, news_feed

    class FakeClient:
        def __enter__(self) -> FakeClient:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    asked: dict[str, object] = {}

    def fake_sync(session, client, symbols, until) -> alphavantage.SyncReport:
        asked.update(symbols=symbols, until=until)
        return alphavantage.SyncReport(target_day=until)

    def fake_news(session, client, tickers, cutoff, days, limit) -> int:
        asked.update(tickers=tickers)
        return 0

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setattr(alphavantage.AlphaVantageClient, "from_env", lambda **_: FakeClient())
    monkeypatch.setattr(alphavantage, "sync_daily", fake_sync)
    monkeypatch.setattr(news_feed, "fetch_news", fake_news)
    fetch = ["data", "fetch", "--symbol", "aapl", "--symbols", "msft, nvda"]
    result = runner.invoke(app, [*fetch, "--until", "2025-10-15"])
    assert result.exit_code == 0, result.stderr
    assert asked == {"symbols": ["AAPL", "MSFT", "NVDA"], "until": date(2025, 10, 15)}
    result = runner.invoke(app, ["data", "news", "--ticker", "aapl", "--tickers", "msft,"])
    assert result.exit_code == 0, result.stderr
    assert asked["tickers"] == ["AAPL", "MSFT"]
    runner.invoke(app, ["data", "news"])
    assert asked["tickers"] is None  # not given: all news


def test_malformed_price_file_leaves_the_store_unchanged(cli, tmp_path: Path, shared_data) -> None:
    cli("data", "import", shared_data / "nasdaq100_daily" / "daily_prices_AAPL.json")
    bad = tmp_path / "prices"
    bad.mkdir()
    (bad / "daily_prices_MSFT.json").write_text(
        (shared_data / "nasdaq100_daily" / "daily_prices_MSFT.json").read_text()
    )
    (bad / "daily_prices_ZZZ.json").write_text(
        '{"Time Series (Daily)": {"2025-10-01": {"1. open": "x"}}}'
    )
    code, _, err = cli("data", "import", bad)
    assert code == 1 and "daily_prices_ZZZ.json" in err
    _, out, _ = cli("data", "coverage", "--format", "json")
    assert [r["symbol"] for r in json.loads(out)] == ["AAPL"]


def test_db_upgrade_reports_the_revision(cli) -> None:
    code, out, _ = cli("db", "upgrade")
    assert code == 0 and head_revision() in out and "up to date" in out


def test_config_validation_errors_name_the_field(cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("initial_cash: -5\nuniverse: nasdaq100\n")
    code, _, err = cli("data", "synth", "--config", config)
    assert code == 1 and "initial_cash" in err
    config.write_text("universe: dow30\n")
    code, _, err = cli("data", "synth", "--config", config)
    assert code == 1 and "unknown universe 'dow30'" in err
    config.write_text("start_date: 2025-02-01\nend_date: 2025-01-01\n")
    code, _, err = cli("data", "synth", "--config", config)
    assert code == 1 and "before start_date" in err
    config.write_text("- just\n- a list\n")
    code, _, err = cli("data", "synth", "--config", config)
    assert code == 1 and "mapping" in err


def test_synthetic_and_real_markets_never_shadow_each_other(cli, shared_data: Path) -> None:
    # The synthetic default market overlaps the real data's first weeks (2025-06-10 onwards).
    cli("data", "synth", "--start", "2025-06-02", "--end", "2025-06-20")
    cli("data", "import", shared_data / "nasdaq100_daily")
    _, out, _ = cli("data", "coverage", "--summary", "--format", "json")
    summary = {row["market"]: row for row in json.loads(out)}
    assert summary["real"]["symbols"] == 103 and summary["real"]["bars"] == 10_279
    assert summary["real"]["first"] == "2025-06-10"
    assert (
        summary["synthetic-7"]["symbols"] == 102 and summary["synthetic-7"]["last"] == "2025-06-20"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:secret@db:5432/prefect", "postgresql+asyncpg://u:secret@db:5432/prefect"),
        ("postgres://u@db/prefect", "postgresql+asyncpg://u@db/prefect"),
        ("postgresql+asyncpg://u@db/prefect", "postgresql+asyncpg://u@db/prefect"),
        ("sqlite:////var/lib/prefect.db", "sqlite+aiosqlite:////var/lib/prefect.db"),
    ],
)
def test_the_server_database_url_gets_the_async_driver(given: str, expected: str) -> None:
    from deployments.server import server_database_url, shown

    assert server_database_url(given) == expected
    assert "secret" not in shown(server_database_url(given))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("postgresql+psycopg://u@db/prefect", "needs the async driver 'postgresql+asyncpg'"),
        ("mysql://u@db/prefect", "runs on PostgreSQL or SQLite, not 'mysql'"),
        ("db.example.com/prefect", "not a database URL"),
    ],
)
def test_a_server_database_url_prefect_cannot_use_is_refused(
    given: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    started = []
    monkeypatch.setattr(os, "execv", lambda *args: started.append(args))
    result = runner.invoke(app, ["server", "--database-url", given])
    assert result.exit_code == 1 and message in result.stderr
    assert started == []  # no server was started
