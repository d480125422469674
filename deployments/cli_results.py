"""`aitrader results`: one subcommand per view of the store, the leaderboard by default.

The views: the leaderboard, the runs, each model-day (in summary or in full), the pairwise tests,
the cost scenarios, the robustness over rolling windows, a run's report files, and the sealed
chains (verify, export-chain; see deployments/cli_chain.py).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlmodel import Session
from typer.core import TyperGroup

from analysis.leaderboard import RankingOptions, leaderboard_rows, rank_run, sessions_note
from analysis.robustness import RobustnessOptions
from deployments.cli_options import (
    ConfidenceOption,
    CostMultiplierOption,
    DayOption,
    EndOption,
    FormatOption,
    ModelOption,
    RiskFreeRateOption,
    RunOption,
    SessionsChoice,
    SessionsOption,
    StartOption,
    TrackChoice,
    TrackOption,
    default_reports,
    split_commas,
    store_session,
)
from deployments.output import (
    OutputFormat,
    console,
    leaderboard_columns,
    one_line_errors,
    render,
    without_cost_scenarios,
)
from models.tables import Track

if TYPE_CHECKING:
    from models.tables import Run

DEFAULT_VIEW = "leaderboard"  # the most asked-for view: `aitrader results` alone shows it


class LeaderboardByDefault(TyperGroup):
    """The `results` group: options with no view before them are the leaderboard's; the old
    one-command spellings that no longer parse fail with a one-line hint to the new one."""

    default_view = DEFAULT_VIEW

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if any(word == "--detail" or word.startswith("--detail=") for word in args):
            ctx.fail(
                "--detail is gone: use `aitrader results days` for the summary, "
                "`aitrader results details` for each model-day in full"
            )
        if not args or (args[0].startswith("-") and args[0] not in ctx.help_option_names):
            misplaced = self._view_after_options(args)
            if misplaced:
                others = list(args)
                others.remove(misplaced)
                spelling = shlex.join(["aitrader", "results", misplaced, *others])
                ctx.fail(f"name the view first: use `{spelling}`")
            args = [self.default_view, *args]
        return super().parse_args(ctx, args)

    def _view_after_options(self, args: list[str]) -> str | None:
        """A view named after options (`results --run 3 pairs`, once valid), not as a value."""
        leaderboard = self.commands[self.default_view]
        flags = {
            name
            for param in leaderboard.params
            if getattr(param, "is_flag", False)
            for name in (*param.opts, *param.secondary_opts)
        }
        previous = ""
        for word in args:
            a_value = previous.startswith("-") and "=" not in previous and previous not in flags
            if word in self.commands and not a_value:
                return word
            previous = word
        return None


results_app = typer.Typer(
    cls=LeaderboardByDefault,
    help="Show the leaderboard (the default: `aitrader results` alone), the runs, each "
    "model-day, the pairwise tests, the cost scenarios, the robustness, a run's report files, "
    "or check and export the sealed chains.",
    no_args_is_help=False,
)


@dataclass
class Scope:
    """Which run, model and days a view is about."""

    run: int | None
    model: str | None
    start: date | None
    end: date | None


def scope_of(
    run: int | None, model: str | None, start: date | None, end: date | None, day: date | None
) -> Scope:
    """The run, model and days asked for; `--day D` is `--start D --end D`."""
    first, last = (day, day) if day is not None else (start, end)
    if first and last and last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    return Scope(run=run, model=model, start=first, end=last)


@dataclass
class ColumnChoice:
    """The leaderboard columns asked for: every one (`--wide`), or a chosen few."""

    wide: bool = False
    chosen: list[str] | None = None


def _ranking(
    confidence: float,
    risk_free_rate: float,
    cost_multiplier: float,
    sessions: SessionsChoice | None,
    resamples: int = RankingOptions.model_fields["resamples"].default,
) -> RankingOptions:
    """The ranking options of the leaderboard, pairs and costs views."""
    return RankingOptions(
        confidence=confidence,
        resamples=resamples,
        risk_free_rate=risk_free_rate,
        cost_multiplier=cost_multiplier,
        sessions=sessions.value if sessions else "auto",
    )


@results_app.command(DEFAULT_VIEW)
@one_line_errors
def leaderboard(
    run: RunOption = None,
    model: ModelOption = None,
    start: StartOption = None,
    end: EndOption = None,
    day: DayOption = None,
    fmt: FormatOption = OutputFormat.table,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every leaderboard column, however wide the table.")
    ] = False,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns", help="Leaderboard columns to show after rank and model (repeatable)."
        ),
    ] = None,
    confidence: ConfidenceOption = 0.95,
    resamples: Annotated[
        int,
        typer.Option(
            help="Bootstrap resamples of the Sortino and max drawdown intervals (seeded: the same "
            "answer every time); the other intervals and the tests draw nothing.",
            min=100,
        ),
    ] = 2000,
    risk_free_rate: RiskFreeRateOption = 0.0,
    cost_multiplier: CostMultiplierOption = 1.0,
    track: TrackOption = TrackChoice.all,
    sessions: SessionsOption = None,
) -> None:
    """The run's models ranked, with their metrics, intervals and tiers (the default view)."""
    scope = scope_of(run, model, start, end, day)
    options = _ranking(confidence, risk_free_rate, cost_multiplier, sessions, resamples)
    with store_session(announce=fmt is OutputFormat.table) as session:
        ranking = rank_run(session, run, scope.start, scope.end, model, options, _track(track))
        chosen = ColumnChoice(wide=wide, chosen=split_commas(columns))
        _print_leaderboard(session, scope, ranking, fmt, chosen)


@results_app.command("runs")
@one_line_errors
def runs(fmt: FormatOption = OutputFormat.table) -> None:
    """Every run in the store, newest first, with its status."""
    from models.results import list_runs
    from models.runs import mark_crashed_runs

    with store_session(announce=fmt is OutputFormat.table) as session:
        mark_crashed_runs(session.get_bind())  # a killed run cannot say so itself
        render([_run_row(r) for r in list_runs(session)], fmt, title="runs")


# days and details show a run's model-days, in summary or in full: the same options and the same
# work, only the printing differs, so one function serves both (days is registered first).
@results_app.command(
    "details",
    help="Each model-day in full: its conversation, reasoning, tool calls, trades and tokens.",
)
@results_app.command(
    "days", help="One row per model-day of a run: its value, cash, return, trades and costs."
)
@one_line_errors
def model_days(
    ctx: typer.Context,
    run: RunOption = None,
    model: ModelOption = None,
    start: StartOption = None,
    end: EndOption = None,
    day: DayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """`results days` or `results details`: the model-days asked for, printed by that command."""
    scope = scope_of(run, model, start, end, day)
    with store_session(announce=fmt is OutputFormat.table) as session:
        print_days = _print_days if ctx.command.name == "days" else _print_details
        print_days(session, scope, fmt)


# pairs and costs are two tables of one ranking: the same options and the same work, only the
# printing differs. One function serves both commands; the name it was invoked by picks the table.
# Decorators apply bottom-up: pairs is registered first, so `results --help` lists it first.
@results_app.command(
    "costs", help="Each model's return and tier at 0, 1, 2 and 3 times its trading costs."
)
@results_app.command(
    "pairs", help="Which models can be told apart: every pair's Holm-adjusted p-value."
)
@one_line_errors
def ranking_table(
    ctx: typer.Context,
    run: RunOption = None,
    model: ModelOption = None,
    start: StartOption = None,
    end: EndOption = None,
    day: DayOption = None,
    fmt: FormatOption = OutputFormat.table,
    confidence: ConfidenceOption = 0.95,
    cost_multiplier: CostMultiplierOption = 1.0,
    track: TrackOption = TrackChoice.all,
    sessions: SessionsOption = None,
) -> None:
    """`results pairs` or `results costs`: the run ranked, then that command's table printed."""
    scope = scope_of(run, model, start, end, day)
    options = _ranking(confidence, 0.0, cost_multiplier, sessions)
    with store_session(announce=fmt is OutputFormat.table) as session:
        ranking = rank_run(session, run, scope.start, scope.end, model, options, _track(track))
        print_table = _print_pairs if ctx.command.name == "pairs" else _print_cost_scenarios
        print_table(ranking, fmt)


@results_app.command("robustness")
@one_line_errors
def robustness(
    run: RunOption = None,
    model: ModelOption = None,
    start: StartOption = None,
    end: EndOption = None,
    day: DayOption = None,
    fmt: FormatOption = OutputFormat.table,
    window: Annotated[int, typer.Option(help="Sessions in a rolling window.", min=2)] = 20,
    step: Annotated[int, typer.Option(help="Sessions between window starts.", min=1)] = 1,
    min_sessions: Annotated[
        int, typer.Option(help="Fewer sessions and a model is not ranked.", min=2)
    ] = 20,
    confidence: ConfidenceOption = 0.95,
    risk_free_rate: RiskFreeRateOption = 0.0,
    cost_multiplier: CostMultiplierOption = 1.0,
    track: TrackOption = TrackChoice.all,
    sessions: SessionsOption = None,
) -> None:
    """How often each model ranks first or in tier 1 over rolling windows; deflated Sharpes."""
    scope = scope_of(run, model, start, end, day)
    options = RobustnessOptions(
        window=window,
        step=step,
        min_sessions=min_sessions,
        confidence=confidence,
        risk_free_rate=risk_free_rate,
        cost_multiplier=cost_multiplier,
        sessions=sessions.value if sessions else "auto",
    )
    with store_session(announce=fmt is OutputFormat.table) as session:
        _print_robustness(session, scope, options, _track(track), fmt)


@results_app.command("report")
@one_line_errors
def report(run: RunOption = None, track: TrackOption = TrackChoice.all) -> None:
    """Write a run's report files: the markdown, two PNG charts and the plotly page."""
    with store_session() as session:
        _write_report(session, run, _track(track))


@results_app.command("verify")
@one_line_errors
def verify(
    run: Annotated[
        int | None, typer.Option("--run", "-r", help="Only this run's chains (default: all).")
    ] = None,
    model: ModelOption = None,
    against: Annotated[
        Path | None, typer.Option(help="Also compare with this earlier export-chain file.")
    ] = None,
) -> None:
    """Recompute the sealed chains of model-days (the whole store without --run or --model)."""
    from deployments import cli_chain

    with store_session() as session:
        cli_chain.verify(session, cli_chain.chain_portfolios(session, run, model), against)


@results_app.command("export-chain")
@one_line_errors
def export_chain(
    run: Annotated[
        int | None, typer.Option("--run", "-r", help="Only this run's chains (default: all).")
    ] = None,
    model: ModelOption = None,
) -> None:
    """The sealed chains as JSON lines on stdout (the whole store without --run or --model)."""
    from deployments import cli_chain

    with store_session() as session:
        cli_chain.export(session, cli_chain.chain_portfolios(session, run, model))


def _track(choice: TrackChoice) -> Track | None:
    """The sessions a view counts: None for every one."""
    return None if choice is TrackChoice.all else Track(choice.value)


def _write_report(session: Session, run: int | None, track: Track | None = None) -> None:
    """Render a run's report files, whoever triggered it (a deployment, REST, Windmill)."""
    from analysis.report import render_report, write_report
    from models.results import get_run

    selected = get_run(session, run)
    report = render_report(session, selected.id, track)
    folder = f"run-{selected.id}" + (f"-{track}" if track else "")
    files = write_report(report, default_reports() / folder)
    console().print(f"report of run {selected.id}: {', '.join(map(str, files))}")


def _print_leaderboard(
    session: Session, scope: Scope, ranking: Any, fmt: OutputFormat, columns: ColumnChoice
) -> None:
    from models.results import get_run

    selected = get_run(session, scope.run)
    rows = leaderboard_rows(ranking.rows)
    if fmt is OutputFormat.table and not columns.chosen:
        rows = without_cost_scenarios(rows)
    first = ranking.rows[0].performance
    title = (
        f"leaderboard of run {selected.id}: {selected.name}, {first.start_date} to "
        f"{first.end_date} ({ranking.options.confidence:.0%} intervals, tier 1 = "
        "cannot be told apart from the best)"
    )
    if ranking.rows[0].track != "all":
        title += f", {ranking.rows[0].track} sessions only"
    if ranking.options.cost_multiplier != 1:
        title += f", every fill charged {ranking.options.cost_multiplier:g} times its costs"
    note = sessions_note(ranking)
    title += f"\n{note}" if note else ""
    fit = leaderboard_columns(rows, columns.wide, columns.chosen)
    render(rows, fmt, title, fit=fit, in_fit_order=bool(columns.chosen))


def _print_cost_scenarios(ranking: Any, fmt: OutputFormat) -> None:
    """Each model's costs paid, and its return, rank and tier at every cost multiplier."""
    rows = []
    for row in ranking.rows:
        if row.is_benchmark:
            continue
        cells: dict[str, Any] = {"model": row.model, "costs_paid": row.costs_paid.costs_paid}
        for scenario in row.cost_scenarios:
            cells[f"return_at_{scenario.label}"] = scenario.cumulative_return
            cells[f"rank_at_{scenario.label}"] = scenario.rank
            cells[f"tier_at_{scenario.label}"] = scenario.tier
        rows.append(cells)
    title = "returns and tiers had every fill paid 0, 1, 2 or 3 times its trading costs"
    render(rows, fmt, title=title)


def _print_robustness(
    session: Session,
    scope: Scope,
    options: RobustnessOptions,
    track: Track | None,
    fmt: OutputFormat,
) -> None:
    """How often each model ranks first or in tier 1 across windows, and its deflated Sharpe."""
    from analysis.curves import run_curves
    from analysis.robustness import robustness, robustness_rows

    curves = run_curves(session, scope.run, scope.start, scope.end, track=track)
    result = robustness(curves, options)
    rows = robustness_rows(result, as_table=fmt is OutputFormat.table)
    if scope.model is not None:
        rows = [row for row in rows if row["model"] == scope.model]
    title = (
        f"robustness of run {curves.run.id} over {result.windows} windows of {options.window} "
        f"sessions (every {options.step}): share ranked first, share in tier 1 of "
        f"{result.tier_windows} non-overlapping windows, deflated Sharpe over "
        f"{result.trials} model-trials"
    )
    if result.sessions != "all":
        title += f", on {result.sessions} sessions only (by knowledge cutoff; --sessions all)"
    render(rows, fmt, title=title)


def _print_pairs(ranking: Any, fmt: OutputFormat) -> None:
    """Every pair's Holm-adjusted p-value: rows as JSON and CSV, a matrix as a table."""
    if fmt is not OutputFormat.table:
        render([pair.model_dump() for pair in ranking.pairs], fmt)
        return
    models = [row.model for row in ranking.rows if not row.is_benchmark]
    p_values = {frozenset((p.model_a, p.model_b)): p for p in ranking.pairs}
    matrix = []
    for a in models:
        cells: dict[str, Any] = {"model": a}
        for b in models:
            pair = p_values.get(frozenset((a, b)))
            cells[b] = (
                "" if pair is None else f"{pair.p_value:.3f}" + ("*" if pair.significant else "")
            )
        matrix.append(cells)
    alpha = 1 - ranking.options.confidence
    render(matrix, fmt, title=f"Holm-adjusted p-values of the paired tests (* below {alpha:.2f})")


def _print_days(session: Session, scope: Scope, fmt: OutputFormat) -> None:
    """One row per model-day of the run (the newest without --run): value, cash, trades, costs."""
    from models.results import get_run, model_days_frame

    newest = get_run(session, scope.run).id  # the newest run, as its help says, not every run
    frame = model_days_frame(session, newest, model=scope.model, start=scope.start, end=scope.end)
    if fmt is OutputFormat.table:
        dropped = ["run", "traded_notional", "cached", "session", "track"]
        frame = frame.drop(columns=dropped)
    render(frame.to_dict("records"), fmt, title="model-days")


def _print_details(session: Session, scope: Scope, fmt: OutputFormat) -> None:
    """Each model-day's messages, reasoning, tool calls with answers, trades and tokens."""
    from rich.panel import Panel

    from models.results import model_day_details

    details = model_day_details(
        session, scope.run, model=scope.model, start=scope.start, end=scope.end
    )
    if fmt is not OutputFormat.table:
        typer.echo(json.dumps([d.model_dump(mode="json") for d in details], indent=2))
        return
    if not details:
        console().print("[dim]no model-days match[/dim]")
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
        console().print(Panel("\n".join(lines) or "-", title=head, title_align="left"))


def _run_row(run: Run) -> dict[str, Any]:
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
