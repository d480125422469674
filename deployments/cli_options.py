"""The options the `aitrader` commands share: typed days, lists, config, output format, store,
and the run, days and ranking choices of the `aitrader results` views."""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from deployments.output import OutputFormat, console
from models.engine import aitrader_home, get_engine, shown_url, store_key

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default: the offline default).")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json or csv.")]


def parse_day(text: str) -> date:
    """A YYYY-MM-DD day; anything else is click's usage error naming the option (exit 2)."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        # date's own reason helps for a day out of range, not for a wrong format.
        reason = "" if "isoformat" in str(exc) else f" ({exc})"
        raise typer.BadParameter(f"{text!r} is not a day like 2025-10-01{reason}") from None


def day_option(*names: str, help: str) -> Any:
    """A typer option parsed into a `date` by `parse_day`."""
    return typer.Option(*names, parser=parse_day, metavar="YYYY-MM-DD", help=help)


RunOption = Annotated[int | None, typer.Option("--run", "-r", help="Run id (default: newest).")]
ModelOption = Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")]
StartOption = Annotated[date | None, day_option(help="From this day.")]
EndOption = Annotated[date | None, day_option(help="Up to this day.")]
DayOption = Annotated[date | None, day_option(help="Only this day (same as --start D --end D).")]


class TrackChoice(StrEnum):
    all = "all"
    live = "live"
    backtest = "backtest"


class SessionsChoice(StrEnum):
    all = "all"
    clean = "clean"
    contaminated = "contaminated"


TrackOption = Annotated[
    TrackChoice,
    typer.Option(
        help="Rank over every session, or only those decided live (before their session "
        "closed) or as a backtest."
    ),
]
SessionsOption = Annotated[
    SessionsChoice | None,
    typer.Option(
        help="Rank over every session, or only those after (clean) or on or before "
        "(contaminated) each model's knowledge cutoff. Default: clean once some model has "
        "both, else all.",
        show_default=False,
    ),
]
ConfidenceOption = Annotated[
    float,
    typer.Option(help="Confidence of the intervals and the tests.", min=0.51, max=0.999),
]
RiskFreeRateOption = Annotated[
    float, typer.Option(help="Annual risk-free rate (the leaderboard's).")
]
CostMultiplierOption = Annotated[
    float,
    typer.Option(
        help="Rank as if every fill had paid this many times its trading costs (0: gross).",
        min=0.0,
        max=10.0,
    ),
]


def parse_session_time(text: str) -> time:
    """An HH:MM session label; anything else is click's usage error naming the option."""
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time like 10:30") from None


def session_option(help: str) -> Any:
    """A typer option parsed into a `time` by `parse_session_time`."""
    return typer.Option(parser=parse_session_time, metavar="HH:MM", help=help)


def split_commas(values: list[str] | None) -> list[str] | None:
    """A repeatable option's values with commas also separating them; None when not given."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def names_given(values: list[str] | None, option: str) -> list[str] | None:
    """`split_commas`, refusing an option given only blanks (it must not mean "all")."""
    names = split_commas(values)
    if names == []:
        raise ValueError(f"{option} names nothing; leave it out for the default")
    return names


def store_session(announce: bool = True) -> Session:
    """A session on the store of DATABASE_URL (or `--db`); says which store, once per process."""
    if announce:
        announce_store()
    return Session(get_engine(), expire_on_commit=False)


def announce_store() -> None:
    """Print which store this command uses (once; never its password)."""
    if not _announced:
        console().print(f"[dim]store: {shown_url()}[/dim]", highlight=False)
        _announced.append(True)


_announced: list[bool] = []


def default_reports() -> Path:
    """Where reports go by default: one folder per store under the home, so stores never clash."""
    return aitrader_home() / "reports" / store_key()
