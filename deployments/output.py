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
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from analysis.formats import RATIO_COLUMNS, RATIO_DIGITS, fixed, percent
from analysis.leaderboard import COST_MULTIPLIERS, scenario_label

# Piped output takes COLUMNS when set, else 220: a report piped to a file is not cut at 80.
PIPE_WIDTH = 220


def console() -> Console:
    """Standard output as it is now: a terminal's width, else COLUMNS, else PIPE_WIDTH.

    Made at each use, not at import: one process (a notebook, a test) may render for several.
    """
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(width=PIPE_WIDTH if piped else None)


def error_console() -> Console:
    """Standard error as it is now (a pipe gets PIPE_WIDTH, so one error stays one line)."""
    return Console(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)


# Fractions shown as percentages in tables (JSON and CSV keep the raw fractions); a change
# (a return) with its sign, a level (a volatility, a drawdown, a win rate) without a `+`.
UNSIGNED_PERCENT_COLUMNS = {"volatility", "max_drawdown", "win_rate"}
PERCENT_COLUMNS = {
    "return",
    "annualized",
    "volatility",
    "max_drawdown",
    "win_rate",
    "alpha",
    "benchmark_return",
    "excess_return",
    "return_after_llm_cost",
    "trial_return",
    "gross_return",
    *(f"return_at_{scenario_label(m)}" for m in COST_MULTIPLIERS),
}

P = ParamSpec("P")
R = TypeVar("R")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _bound(value: float | None, as_percent: bool) -> str:
    if value is None:
        return "?"
    return percent(value, 1) if as_percent else fixed(value, 2, sign=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, list) and len(value) == 2 and column.endswith("_ci"):
        as_percent = column.removesuffix("_ci") in PERCENT_COLUMNS
        low, high = (_bound(v, as_percent) for v in value)
        return f"{low}…{high}"
    if column in PERCENT_COLUMNS and isinstance(value, float):
        return percent(value, sign=column not in UNSIGNED_PERCENT_COLUMNS)
    if isinstance(value, float):
        digits = RATIO_DIGITS if column in RATIO_COLUMNS or abs(value) >= 10 else 4
        return fixed(value, digits)
    return str(_plain(value))


def render(
    rows: Sequence[dict[str, Any]],
    fmt: OutputFormat,
    title: str | None = None,
    fit: Sequence[str] | None = None,
    in_fit_order: bool = False,
) -> None:
    """Print rows (dicts with the same keys) as a table, a JSON array or CSV.

    JSON and CSV keep every field. A table with `fit` (its columns in order of importance) shows
    as many of them as the terminal's width allows, in the rows' order (in `fit`'s with
    `in_fit_order`), and says which it left out. A table without `fit` shows every column with
    whole values, however wide.
    """
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
    out = console()
    if not rows:
        out.print(f"[dim]{title or 'nothing'}: no rows[/dim]")
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))  # the benchmark has fewer
    cells = [[_cell(row.get(c), c) for c in columns] for row in rows]
    shown = _fitting(columns, cells, fit, out.width) if fit else columns
    if fit and in_fit_order:
        shown = [c for c in fit if c in shown]
    left_out = [c for c in fit or () if c in columns and c not in shown]
    caption = f"too wide for this terminal: {', '.join(left_out)}" if left_out else None
    # No padding and no borders, the box's one space between cells: the most columns that fit.
    table = Table(caption=caption, box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    for column in shown:
        numeric = all(_is_number(row.get(column)) for row in rows)
        # Fitted columns never wrap (no `equ/al-/wei/ght`); `--wide` lets rich fold them.
        table.add_column(column, justify="right" if numeric else "left", no_wrap=bool(fit))
    for row_cells in cells:
        table.add_row(*(row_cells[columns.index(c)] for c in shown))
    if title:  # above the table, not its caption: a long title is not folded to the table's width
        out.print(title, style="bold", highlight=False)
    if not fit:  # as wide as the values need: the terminal may wrap lines, rich cuts no value
        needed = sum(max(len(c), *(len(r[columns.index(c)]) for r in cells)) + 1 for c in shown)
        out.width = max(out.width, needed)
    out.print(table)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _fitting(
    columns: list[str], cells: list[list[str]], fit: Sequence[str], width: int
) -> list[str]:
    """The columns of `fit` (most important first) that fit in `width`, in table order."""
    widths = {c: max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)}
    chosen: list[str] = []
    for column in (c for c in fit if c in widths):
        if sum(widths[c] + 1 for c in [*chosen, column]) > width:  # a space after each cell
            break  # what is left out is always the least important
        chosen.append(column)
    return [c for c in columns if c in chosen]


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise (code 1)."""
    error_console().print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
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


# The leaderboard a terminal shows by default, most important first: columns at the end are the
# first left out when the terminal is narrow. `--wide` shows every field; JSON and CSV keep all.
LEADERBOARD_COLUMNS = (
    "rank",
    "model",
    "return",
    "return_ci",
    "tier",
    "trials",  # only a repeated backtest's rows have it: their figures are means over trials
    "final_value",
    "sharpe",
    "max_drawdown",
    "trades",
    "clean_sessions",  # shown once some model has a session before its cutoff, or no known one
    "costs_paid",
    "live_sessions",  # shown once some session was decided live
)


# Columns of the cost scenarios (`return_at_2x`, `tier_at_2x`): in JSON and CSV, not in tables.
COST_SCENARIO_PREFIXES = ("return_at_", "tier_at_")


def leaderboard_columns(
    rows: list[dict[str, Any]], wide: bool = False, chosen: Sequence[str] | None = None
) -> list[str] | None:
    """Which leaderboard columns a table shows, by importance: the compact set, every one, or
    the `--columns` chosen (unknown names are an error naming the known ones)."""
    known = list(dict.fromkeys(k for row in rows for k in row)) or list(LEADERBOARD_COLUMNS)
    if chosen:
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return list(dict.fromkeys(["rank", "model", *chosen]))
    if wide:
        return None  # every column, however wide
    # A column of zeros says nothing: free fills' costs, a backtest's live sessions.
    empty = {c for c in ("costs_paid", "live_sessions") if not any(row.get(c) for row in rows)}
    if all(row.get("contaminated_sessions") == 0 for row in rows if row.get("rank")):
        empty.add("clean_sessions")  # every session clean: the title says nothing else
    return [c for c in LEADERBOARD_COLUMNS if c in known and c not in empty]


def without_cost_scenarios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leaderboard rows for a table: the cost scenarios have their own view (`results costs`)."""
    return [
        {k: v for k, v in row.items() if not k.startswith(COST_SCENARIO_PREFIXES)} for row in rows
    ]
