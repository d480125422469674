"""The `aitrader` command line: store, market data, legacy import and results."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from configs.loader import load_config
from deployments.output import (
    OutputFormat,
    compact,
    console,
    leaderboard_rows,
    one_line_errors,
    render,
)
from models.engine import current_revision, get_engine, upgrade

app = typer.Typer(
    help="Run LLM trading agents through backtests and daily simulations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The results store (SQLite by default, any URL via DATABASE_URL).")
data_app = typer.Typer(help="Market data: import, download, synthesize, inspect.")
tools_app = typer.Typer(help="The agents' MCP tool servers, for manual sessions and agents.")
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(tools_app, name="tools")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default: the offline default).")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json or csv.")]


def _session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


@db_app.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Create or migrate the store to the latest schema."""
    from models.engine import create_store_engine

    engine = create_store_engine()
    before = current_revision(engine)
    after = upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"store {url} is at revision {after} (up to date)")
    else:
        console.print(f"store {url} migrated from {before or 'empty'} to {after}")


@data_app.command("import")
@one_line_errors
def data_import(
    path: Annotated[Path, typer.Argument(help="A daily_prices_*.json, merged.jsonl, or a folder.")],
) -> None:
    """Import AI-Trader price files (idempotent: bars already stored are skipped)."""
    from market_data.aitrader_files import import_prices

    with _session() as session:
        report = import_prices(session, path)
        session.commit()
    console.print(
        f"read {report.bars_read:,} bars of {len(report.symbols)} symbols from "
        f"{report.files_read} file(s); inserted {report.bars_inserted:,} new"
    )


@data_app.command("synth")
@one_line_errors
def data_synth(
    config: ConfigOption = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the config's).")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
) -> None:
    """Write a seeded synthetic market for the config's universe and benchmark (no network)."""
    from market_data.synthetic import synthesize_into

    cfg = load_config(config)
    universe = cfg.resolve_universe()
    first = _parse_day(start, "--start") or cfg.market.start
    last = _parse_day(end, "--end") or cfg.market.end
    if last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    with _session() as session:
        inserted = synthesize_into(
            session,
            universe.symbols,
            first,
            last,
            seed=seed if seed is not None else cfg.market.seed,
            benchmark=universe.benchmark,
        )
        session.commit()
    console.print(
        f"market {cfg.market.name}: {len(universe.symbols)} symbols + {universe.benchmark}, "
        f"{first} to {last}: inserted {inserted:,} bars"
    )


@data_app.command("fetch")
@one_line_errors
def data_fetch(
    config: ConfigOption = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: the universe).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last day wanted (default: today).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Alpha Vantage endpoint.")] = None,
) -> None:
    """Download missing daily bars from Alpha Vantage (key in ALPHAVANTAGE_API_KEY)."""
    from market_data.alphavantage import AlphaVantageClient, sync_daily

    cfg = load_config(config)
    universe = cfg.resolve_universe()
    wanted = (
        [s.strip().upper() for s in symbols.split(",") if s.strip()]
        if symbols
        else [*universe.symbols, universe.benchmark]
    )
    client = AlphaVantageClient.from_env(base_url=base_url)
    with _session() as session:
        report = sync_daily(
            session, client, wanted, until=_parse_day(until, "--until") or date.today()
        )
    inserted = sum(report.inserted.values())
    console.print(
        f"fetched {len(report.inserted)} symbol(s), inserted {inserted:,} bars; "
        f"{len(report.skipped)} already up to date"
    )
    if report.stopped_reason:
        raise ValueError(f"stopped early: {report.stopped_reason}")


@data_app.command("news")
@one_line_errors
def data_news(
    tickers: Annotated[
        str | None, typer.Option(help="Comma-separated tickers (default: all news).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="News published before this day's 09:30 ET open.")
    ] = None,
    days: Annotated[int, typer.Option(help="How many days back from --until.")] = 30,
    limit: Annotated[int, typer.Option(help="At most this many items (up to 1000).")] = 50,
    base_url: Annotated[str | None, typer.Option(help="Alpha Vantage endpoint.")] = None,
) -> None:
    """Download news from Alpha Vantage into the store (key in ALPHAVANTAGE_API_KEY)."""
    from agent_tools.context import session_cutoff
    from market_data.alphavantage import AlphaVantageClient
    from market_data.news_feed import fetch_news

    day = _parse_day(until, "--until") or date.today()
    cutoff = session_cutoff(datetime.combine(day, time.min))
    wanted = [t.strip().upper() for t in tickers.split(",") if t.strip()] if tickers else None
    with AlphaVantageClient.from_env(base_url=base_url) as client, _session() as session:
        added = fetch_news(session, client, wanted, cutoff, days=days, limit=limit)
        session.commit()
    console.print(f"stored {added} new news item(s) published up to {cutoff:%Y-%m-%d %H:%M} UTC")


@data_app.command("import-news")
@one_line_errors
def data_import_news(
    path: Annotated[Path, typer.Argument(help="A saved Alpha Vantage NEWS_SENTIMENT answer.")],
) -> None:
    """Store the items of a saved NEWS_SENTIMENT JSON file (idempotent: stored URLs are skipped)."""
    from market_data.news_feed import import_news_file

    with _session() as session:
        read, added = import_news_file(session, path)
        session.commit()
    console.print(f"read {read} news item(s); stored {added} new")


@tools_app.command("serve")
@one_line_errors
def tools_serve(
    day: Annotated[str, typer.Option(help="The session day the tools are bound to, YYYY-MM-DD.")],
    model: Annotated[str, typer.Option(help="Name the session's book is kept under.")] = "manual",
    cash: Annotated[float, typer.Option(help="Starting cash of the in-memory book.")] = 10_000.0,
    universe: Annotated[
        str, typer.Option(help="A universe of configs/universes.yaml, or comma-separated symbols.")
    ] = "nasdaq100",
    market: Annotated[str, typer.Option(help="real or synthetic-<seed>.")] = "real",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
) -> None:
    """Serve one session day's tools over MCP streamable HTTP at http://HOST:PORT/mcp.

    Orders change only this server's in-memory book; nothing is written to the store.
    """
    from agent_tools.servers import build_server
    from deployments.tool_server import build_manual_context

    session_day = _parse_day(day, "--day")
    context = build_manual_context(
        get_engine(), session_day, model=model, cash=cash, universe=universe, market=market
    )
    console.print(
        f"serving the tools of {context.day} ({len(context.universe)} symbols, market {market}) "
        f"for {model} at http://{host}:{port}/mcp"
    )
    build_server(context).run(transport="http", host=host, port=port, show_banner=False)


@data_app.command("coverage")
@one_line_errors
def data_coverage(
    interval: Annotated[str | None, typer.Option(help="1d or 60min (default: both).")] = None,
    market: Annotated[
        str | None, typer.Option(help="real or synthetic-<seed> (default: all).")
    ] = None,
    summary: Annotated[bool, typer.Option(help="One line per market and interval.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """What the price store holds: first and last day and bar count per symbol."""
    from models.prices import coverage

    with _session() as session:
        rows = coverage(session, interval, market)
    if summary:
        groups: dict[tuple[str, str], list] = {}
        for row in rows:
            groups.setdefault((row.market, row.interval), []).append(row)
        summary_rows = [
            {
                "market": m,
                "interval": i,
                "symbols": len(group),
                "first": min(r.first for r in group),
                "last": max(r.last for r in group),
                "bars": sum(r.bars for r in group),
            }
            for (m, i), group in groups.items()
        ]
        render(summary_rows, fmt, title="price coverage")
    else:
        render([row.model_dump() for row in rows], fmt, title="price coverage")


@app.command("import-aitrader")
@one_line_errors
def import_aitrader(
    path: Annotated[
        Path, typer.Argument(help="An agent_data folder, a model folder or a position.jsonl.")
    ],
    name: Annotated[str | None, typer.Option(help="Run name (default: aitrader:<folder>).")] = None,
) -> None:
    """Import an original AI-Trader run's position logs as a run of the store."""
    from market_data.legacy_import import import_aitrader_run

    with _session() as session:
        report = import_aitrader_run(session, path, name=name)
    if report.already_imported:
        console.print(f"already imported as run {report.run_id} ({report.run_name}); nothing added")
        return
    render(
        [m.model_dump() for m in report.models],
        OutputFormat.table,
        title=f"run {report.run_id}: {report.run_name} ({report.interval} prices)",
    )
    if report.missing_prices:
        console.print(
            f"[yellow]no close at all for: {', '.join(report.missing_prices)} (valued at 0)"
        )


@app.command("results")
@one_line_errors
def results(
    view: Annotated[str, typer.Argument(help="leaderboard, days or runs.")] = "leaderboard",
    run: Annotated[
        int | None, typer.Option("--run", "-r", help="Run id (default: newest).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
    start: Annotated[str | None, typer.Option(help="From this day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Up to this day, YYYY-MM-DD.")] = None,
    risk_free_rate: Annotated[float, typer.Option(help="Annual risk-free rate.")] = 0.0,
    detail: Annotated[
        str, typer.Option(help="summary, or full: each model-day's conversation and tool calls.")
    ] = "summary",
    day: Annotated[
        str | None, typer.Option(help="Only this day (same as --start D --end D).")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show runs, per model-day values, or the leaderboard with its metrics."""
    from analysis.leaderboard import leaderboard
    from models.results import get_run, list_runs, model_days_frame

    first, last = _parse_day(start, "--start"), _parse_day(end, "--end")
    if day is not None:
        first = last = _parse_day(day, "--day")
    if first and last and last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    if detail not in ("summary", "full"):
        raise ValueError(f"unknown detail {detail!r}; use summary or full")
    with _session() as session:
        if detail == "full":
            _print_details(session, run, model, first, last, fmt)
        elif view == "runs":
            rows = [_run_row(r) for r in list_runs(session)]
            render(rows, fmt, title="runs")
        elif view == "days":
            frame = model_days_frame(session, run, model=model, start=first, end=last)
            if fmt is OutputFormat.table:
                frame = frame.drop(columns=["run", "traded_notional", "cached"])
            render(frame.to_dict("records"), fmt, title="model-days")
        elif view == "leaderboard":
            selected = get_run(session, run)
            board = leaderboard(session, selected.id, first, last, risk_free_rate, model=model)
            rows = leaderboard_rows(board)
            if fmt is OutputFormat.table:
                rows = compact(rows)
            window = f"{board[0].performance.start_date} to {board[0].performance.end_date}"
            render(rows, fmt, title=f"leaderboard of run {selected.id}: {selected.name}, {window}")
        else:
            raise ValueError(f"unknown view {view!r}; use leaderboard, days or runs")


def _print_details(session, run, model, first, last, fmt: OutputFormat) -> None:
    """Each model-day's messages, reasoning, tool calls with answers, trades and tokens."""
    import json

    from rich.panel import Panel

    from models.results import model_day_details

    details = model_day_details(session, run, model=model, start=first, end=last)
    if fmt is not OutputFormat.table:
        typer.echo(json.dumps([d.model_dump(mode="json") for d in details], indent=2))
        return
    if not details:
        console.print("[dim]no model-days match[/dim]")
    for detail in details:
        head = (
            f"{detail.model} on {detail.day}: {detail.status}"
            f" | tokens {detail.tokens_in:,} in, {detail.tokens_out:,} out, ${detail.cost_usd:.4f}"
            f" | {detail.llm_calls} LLM calls"
        )
        if detail.value_end is not None:
            head += f" | value {detail.value_end:,.2f}, cash {detail.cash_end:,.2f}"
        lines = [f"[red]{detail.error}[/red]"] if detail.error else []
        for message in detail.messages:
            if message["role"] == "system":
                continue  # the same long prompt every day; `--format json` has it
            if message["reasoning"]:
                lines.append(f"[magenta]reasoning:[/magenta] {message['reasoning']}")
            lines.append(f"[bold]{message['role']}:[/bold] {message['content']}")
        for call in detail.tool_calls:
            mark = "[red]error[/red]" if call["is_error"] else "ok"
            lines.append(
                f"[cyan]tool {call['tool']}({json.dumps(call['arguments'])})[/cyan] {mark}: "
                f"{call['result'][:300]}"
            )
        for trade in detail.trades:
            lines.append(
                f"[green]{trade['side']} {trade['shares']} {trade['symbol']} "
                f"at {trade['price']:.4f}[/green]"
            )
        console.print(Panel("\n".join(lines) or "-", title=head, title_align="left"))


@app.command("backtest")
@one_line_errors
def backtest_command(
    start: Annotated[str | None, typer.Option(help="First day (default: catch up).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (default: latest prices).")] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model names (default: enabled).")
    ] = None,
    config: ConfigOption = None,
    replay: Annotated[bool, typer.Option(help="Answer LLM calls from the record only.")] = False,
    budget_usd: Annotated[float | None, typer.Option(help="Stop LLM calls past this.")] = None,
    reports: Annotated[Path, typer.Option(help="Where the report files go.")] = Path("reports"),
) -> None:
    """Run the backtest flow (an ephemeral Prefect server when PREFECT_API_URL is unset)."""
    from deployments.backtest_cli import run_with_progress

    run_with_progress(
        start=_parse_day(start, "--start"),
        end=_parse_day(end, "--end"),
        models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        config=str(config) if config else None,
        replay=replay,
        budget_usd=budget_usd,
        reports=reports,
    )


@app.command("serve")
@one_line_errors
def serve_command(
    config: ConfigOption = None,
    paused_schedule: Annotated[
        bool, typer.Option(help="Register the daily schedule paused.")
    ] = False,
) -> None:
    """Serve the daily (cron) and manual deployments of the backtest flow from this process."""
    from deployments.serve import serve_deployments

    serve_deployments(str(config) if config else None, paused_schedule)


@app.command("server")
@one_line_errors
def server_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (4200 is Prefect's default).")] = 4200,
    ui: Annotated[bool, typer.Option(help="Serve Prefect's web UI.")] = True,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="PREFECT_API_DATABASE_CONNECTION_URL",
            show_envvar=True,
            help="The server's own database, e.g. postgresql+asyncpg://user@host/prefect "
            "(default: SQLite under PREFECT_HOME).",
        ),
    ] = None,
) -> None:
    """Start a dedicated Prefect server with this project's settings (it replaces this process)."""
    import os
    import sys

    from deployments.server import server_database_url, shown

    if database_url:
        os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = server_database_url(database_url)
    prefect = Path(sys.executable).with_name("prefect")
    arguments = [str(prefect), "server", "start", "--host", host, "--port", str(port)]
    if not ui:
        arguments.append("--no-ui")
    where = shown(os.environ["PREFECT_API_DATABASE_CONNECTION_URL"]) if database_url else "SQLite"
    console.print(f"Prefect API at http://{host}:{port}/api on {where} (export PREFECT_API_URL)")
    os.execv(arguments[0], arguments)


@app.command("health")
@one_line_errors
def health_command(config: ConfigOption = None) -> None:
    """Check the store, data coverage, the Prefect API and each model endpoint."""
    from deployments.health import run_checks

    checks = run_checks(load_config(config))
    render([c.model_dump() for c in checks], OutputFormat.table, title="health")
    failing = [c for c in checks if not c.ok]
    if failing:
        raise ValueError("; ".join(f"{c.check}: {c.detail}" for c in failing))


def _run_row(run) -> dict:
    return {
        "id": run.id,
        "name": run.name,
        "kind": run.kind,
        "status": run.status,
        "models": ", ".join(run.models),
        "start": run.start_date,
        "end": run.end_date,
        "created": run.created_at.replace(microsecond=0),
    }


def _parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} must be a date like 2025-10-01, got {text!r}") from None


@app.callback()
def main(
    db: Annotated[
        str | None, typer.Option("--db", help="Store URL (overrides DATABASE_URL).")
    ] = None,
) -> None:
    """Run LLM trading agents through backtests and daily simulations."""
    from deployments.prefect_settings import apply_local_defaults

    apply_local_defaults()
    if db:
        import os

        os.environ["DATABASE_URL"] = db
