"""Rendering rows for the terminal: rich tables, JSON or CSV, and one-line errors."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

# Piped output is not wrapped at 80 columns: wide tables stay readable in files and logs.
console = Console(width=None if sys.stdout.isatty() else 220)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else 220)

# Fractions shown as percentages in tables (JSON and CSV keep the raw fractions).
PERCENT_COLUMNS = {
    "return",
    "annualized",
    "volatility",
    "max_drawdown",
    "win_rate",
    "alpha",
    "benchmark_return",
}

P = ParamSpec("P")
R = TypeVar("R")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if column in PERCENT_COLUMNS and isinstance(value, float):
        return f"{value:+.2%}"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(_plain(value))


def render(rows: Sequence[dict[str, Any]], fmt: OutputFormat, title: str | None = None) -> None:
    """Print rows (dicts with the same keys) as a table, a JSON array or CSV."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps([{k: _plain(v) for k, v in r.items()} for r in rows], indent=2))
        return
    if fmt is OutputFormat.csv:
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _plain(v) for k, v in r.items()} for r in rows)
        typer.echo(buffer.getvalue(), nl=False)
        return
    table = Table(title=title, show_lines=False)
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c], c) for c in columns))
    console.print(table if rows else f"[dim]{title or 'nothing'}: no rows[/dim]")


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise (code 1)."""
    error_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


class OneLineUsageErrors(TyperGroup):
    """The root command: a usage error (a malformed date, an unknown view or command) is one
    `error:` line and exit 1, like every other refused input, instead of click's panel and 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except typer.exceptions.TyperException as exc:  # click's, as typer ships it
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # the help text, as `aitrader` alone always printed
                sys.exit(exc.exit_code)
            context = getattr(exc, "ctx", None)
            hint = f" (see {context.command_path} --help)" if context else ""
            message = " ".join(exc.format_message().replace("Value error, ", "").split())
            sys.exit(fail(message + hint).exit_code)
        except typer.Abort:
            sys.exit(fail("aborted").exit_code)
        # Without standalone mode click returns a typer.Exit's code instead of exiting.
        sys.exit(result if isinstance(result, int) else 0)


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a command's exception as one clear line and exit 1 (AITRADER_DEBUG=1 re-raises)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("AITRADER_DEBUG"):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise fail(message) from None

    return wrapper


def leaderboard_row(row: Any) -> dict[str, Any]:
    """A leaderboard row as the CLI shows it (fractions, not percentages)."""
    p = row.performance
    return {
        "rank": row.rank,
        "model": row.model,
        "start": p.start_date,
        "end": p.end_date,
        "final_value": p.end_value,
        "return": p.cumulative_return,
        "annualized": p.annualized_return,
        "volatility": p.annualized_volatility,
        "sharpe": p.sharpe_ratio,
        "sortino": p.sortino_ratio,
        "max_drawdown": p.max_drawdown,
        "dd_peak": p.max_drawdown_peak,
        "dd_trough": p.max_drawdown_trough,
        "calmar": p.calmar_ratio,
        "win_rate": p.win_rate,
        "trades": p.trades,
        "turnover": p.turnover,
        "alpha": p.alpha,
        "beta": p.beta,
        "info_ratio": p.information_ratio,
        "benchmark_return": p.benchmark_cumulative_return,
    }


def leaderboard_rows(board: Sequence[Any]) -> list[dict[str, Any]]:
    return [leaderboard_row(row) for row in board]


def compact(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leaderboard rows for a terminal: the window and drawdown dates belong in the title."""
    hidden = {"start", "end", "dd_peak", "dd_trough"}
    return [{k: v for k, v in row.items() if k not in hidden} for row in rows]
