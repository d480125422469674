"""The `aitrader` command line: store, market data, legacy import, backtests and results."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated

import typer

from configs.loader import DEFAULT_CONFIG, load_config
from deployments.cli_data import data_app
from deployments.cli_options import (
    ConfigOption,
    day_option,
    default_reports,
    session_option,
    split_commas,
    store_session,
)
from deployments.cli_results import results_app
from deployments.cli_site import site_app
from deployments.output import (
    OneLineUsageErrors,
    OutputFormat,
    console,
    one_line_errors,
    render,
)
from flows.parameters import BacktestParameters
from models.engine import current_revision, get_engine, upgrade
from models.errors import StoreError

app = typer.Typer(
    cls=OneLineUsageErrors,
    help="Run LLM trading agents through backtests and daily simulations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The results store (SQLite by default, any URL via DATABASE_URL).")
tools_app = typer.Typer(help="The agents' MCP tool servers, for manual sessions and agents.")
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(tools_app, name="tools")
app.add_typer(site_app, name="site")
app.add_typer(results_app, name="results")


def _about(field: str) -> str:
    """A backtest option's help: its BacktestParameters field's description."""
    return BacktestParameters.model_fields[field].description or ""


@db_app.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Create or migrate the store to the latest schema."""
    from models.engine import create_store_engine

    engine = create_store_engine()
    try:
        before = current_revision(engine)
    except Exception as exc:  # unreachable, or not a database: the driver's reason, one line
        raise StoreError(f"cannot open the store at {engine.url!r}: {exc}") from exc
    after = upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    if before == after:
        console().print(f"store {url} is at revision {after} (up to date)")
    else:
        console().print(f"store {url} migrated from {before or 'empty'} to {after}")


@tools_app.command("serve")
@one_line_errors
def tools_serve(
    day: Annotated[date, day_option(help="The session day the tools are bound to.")],
    model: Annotated[str, typer.Option(help="Name the session's book is kept under.")] = "manual",
    cash: Annotated[
        float | None, typer.Option(help="Starting cash of the book (default: the market's).")
    ] = None,
    universe: Annotated[
        str | None,
        typer.Option(help="A universe of configs/universes.yaml, or comma-separated symbols."),
    ] = None,
    market: Annotated[str, typer.Option(help="real or synthetic-<seed>.")] = "real",
    rules_of: Annotated[
        str, typer.Option(help="A market of configs/markets.yaml: calendar, sessions, rules.")
    ] = "nasdaq100",
    session: Annotated[
        time | None, session_option(help="An hourly market's session (default: the first).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
) -> None:
    """Serve one session's tools over MCP streamable HTTP at http://HOST:PORT/mcp.

    Orders change only this server's in-memory book; nothing is written to the store.
    """
    from agent_tools.servers import build_server
    from configs.markets import load_market
    from deployments.tool_server import build_manual_context, quiet_disconnects

    trading = load_market(rules_of)
    context = build_manual_context(
        get_engine(),
        day,
        model=model,
        cash=trading.initial_cash if cash is None else cash,
        universe=universe or trading.universe,
        market=market,
        rules_of=trading,
        session=session,
    )
    console().print(
        f"serving the tools of {context.label} ({len(context.universe)} symbols, market {market}) "
        f"for {model} at http://{host}:{port}/mcp"
    )
    quiet_disconnects()
    build_server(context).run(transport="http", host=host, port=port, show_banner=False)


@app.command("import-aitrader")
@one_line_errors
def import_aitrader(
    path: Annotated[
        Path, typer.Argument(help="An agent_data folder, a model folder or a position.jsonl.")
    ],
    name: Annotated[str | None, typer.Option(help="Run name (default: aitrader:<folder>).")] = None,
) -> None:
    """Import an original AI-Trader run's position logs as a run of the store.

    Import the market's prices first (`aitrader data import`): a held symbol without a close is
    refused, and nothing is written.
    """
    from market_data.legacy_import import import_aitrader_run

    with store_session() as session:
        report = import_aitrader_run(session, path, name=name)
    if report.already_imported:
        console().print(
            f"already imported as run {report.run_id} ({report.run_name}); nothing added"
        )
        return
    render(
        [m.model_dump() for m in report.models],
        OutputFormat.table,
        title=f"run {report.run_id}: {report.run_name} ({report.interval} prices)",
    )
    console().print(f"benchmark: {report.benchmark}", highlight=False)


@app.command("backtest")
@one_line_errors
def backtest_command(
    start: Annotated[date | None, day_option(help=_about("start"))] = None,
    end: Annotated[date | None, day_option(help=_about("end"))] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            "--models",
            metavar="NAME",
            help=f"{_about('models')} Repeatable; commas also separate names.",
        ),
    ] = None,
    config: ConfigOption = None,
    replay: Annotated[bool, typer.Option(help=_about("replay"))] = False,
    budget_usd: Annotated[float | None, typer.Option(help=_about("budget_usd"))] = None,
    budget_tokens: Annotated[int | None, typer.Option(help=_about("budget_tokens"))] = None,
    trials: Annotated[int | None, typer.Option(metavar="N", help=_about("trials"))] = None,
    refresh: Annotated[bool, typer.Option(help=_about("refresh"))] = False,
    reports: Annotated[
        Path | None,
        typer.Option(help="Where the report files go (default: reports/<store> under the home)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every task's and day subflow's log lines.")
    ] = False,
) -> None:
    """Run the backtest flow (an ephemeral Prefect server when PREFECT_API_URL is unset)."""
    from deployments.backtest_cli import run_with_progress
    from flows.preflight import preflight

    parameters = BacktestParameters.checked(
        {
            "start": start,
            "end": end,
            "models": split_commas(models),
            "config": str(config) if config else None,
            "replay": replay,
            "budget_usd": budget_usd,
            "budget_tokens": budget_tokens,
            "trials": trials,
            "refresh": refresh,
        },
        label=lambda field: f"--{field.replace('_', '-')}",
    )
    checked = preflight(parameters)  # refused before Prefect starts, the store untouched
    if checked.plan is not None and not checked.plan.days:
        console().print(f"[bold]UpToDate[/bold]: {checked.plan.up_to_date}")  # no Prefect needed
        return
    run_with_progress(checked, reports or default_reports(), verbose)


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
    from flows.preflight import check_market, check_models

    # A config every flow run would fail on is refused before anything is served.
    settings, source = load_config(config), str(config or DEFAULT_CONFIG)
    check_models(settings, None, source)
    check_market(settings, source)
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
    # Prefect's own `prefect server start`, its SQLite writes begun IMMEDIATE (server_app.py).
    arguments = [sys.executable, "-m", "deployments.server_app", "server", "start"]
    arguments += ["--host", host, "--port", str(port)]
    if not ui:
        arguments.append("--no-ui")
    where = shown(os.environ["PREFECT_API_DATABASE_CONNECTION_URL"]) if database_url else "SQLite"
    console().print(f"Prefect API at http://{host}:{port}/api on {where} (export PREFECT_API_URL)")
    os.execv(arguments[0], arguments)


@app.command("demo-llm")
@one_line_errors
def demo_llm_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8011,  # configs/demo-llm.yaml's
) -> None:
    """Serve a local OpenAI-compatible endpoint that trades like an LLM (no key, no network).

    `aitrader backtest --config configs/demo-llm.yaml` then runs the real LLM path against it.
    """
    import uvicorn

    from deployments.demo_llm import DEMO_MODELS, demo_app

    console().print(f"serving {', '.join(DEMO_MODELS)} at http://{host}:{port}/v1 (Ctrl+C stops)")
    uvicorn.run(demo_app(), host=host, port=port, log_level="warning")


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
