"""`aitrader results`: the runs, each model-day (in summary or in full) and the leaderboard."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlmodel import Session

from analysis.leaderboard import RankingOptions, leaderboard_rows, rank_run, sessions_note
from analysis.robustness import RobustnessOptions
from deployments.cli_options import (
    FormatOption,
    day_option,
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


class ResultsView(StrEnum):
    leaderboard = "leaderboard"
    days = "days"
    runs = "runs"
    pairs = "pairs"
    costs = "costs"
    robustness = "robustness"
    report = "report"
    verify = "verify"
    export_chain = "export-chain"


@dataclass
class Scope:
    """Which run, model and days a view is about."""

    run: int | None
    model: str | None
    start: date | None
    end: date | None


@dataclass
class ColumnChoice:
    """The leaderboard columns asked for: every one (`--wide`), or a chosen few."""

    wide: bool = False
    chosen: list[str] | None = None


class TrackChoice(StrEnum):
    all = "all"
    live = "live"
    backtest = "backtest"


class SessionsChoice(StrEnum):
    all = "all"
    clean = "clean"
    contaminated = "contaminated"


class Detail(StrEnum):
    summary = "summary"
    full = "full"


# long: typer reads a command's options from its signature; most of these lines declare them.
@one_line_errors
def results(
    view: Annotated[
        ResultsView | None,
        typer.Argument(
            help="leaderboard, days, runs, pairs (which models can be told apart), costs (each "
            "model's return and tier at 0, 1, 2 and 3 times its trading costs), robustness "
            "(how often each model ranks first or in tier 1 over rolling windows, and its "
            "deflated Sharpe), report (write "
            "the run's report files), verify (recompute the sealed chains of model-days) or "
            "export-chain (the chains as JSON lines); default: leaderboard (days with --detail "
            "full). verify and export-chain cover the whole store without --run or --model.",
            show_default=False,
        ),
    ] = None,
    run: Annotated[
        int | None, typer.Option("--run", "-r", help="Run id (default: newest).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
    start: Annotated[date | None, day_option(help="From this day.")] = None,
    end: Annotated[date | None, day_option(help="Up to this day.")] = None,
    risk_free_rate: Annotated[
        float, typer.Option(help="Annual risk-free rate (the leaderboard's).")
    ] = 0.0,
    detail: Annotated[
        Detail,
        typer.Option(
            help="The days view in summary, or in full: each model-day's conversation, "
            "tool calls and trades."
        ),
    ] = Detail.summary,
    day: Annotated[
        date | None, day_option(help="Only this day (same as --start D --end D).")
    ] = None,
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
    confidence: Annotated[
        float, typer.Option(help="Confidence of the intervals and the tests.", min=0.51, max=0.999)
    ] = 0.95,
    resamples: Annotated[
        int,
        typer.Option(
            help="Bootstrap resamples of the Sortino and max drawdown intervals (seeded: the same "
            "answer every time); the other intervals and the tests draw nothing.",
            min=100,
        ),
    ] = 2000,
    cost_multiplier: Annotated[
        float,
        typer.Option(
            help="Rank as if every fill had paid this many times its trading costs (0: gross).",
            min=0.0,
            max=10.0,
        ),
    ] = 1.0,
    track: Annotated[
        TrackChoice,
        typer.Option(
            help="Rank over every session, or only those decided live (before their session "
            "closed) or as a backtest."
        ),
    ] = TrackChoice.all,
    sessions: Annotated[
        SessionsChoice | None,
        typer.Option(
            help="Rank over every session, or only those after (clean) or on or before "
            "(contaminated) each model's knowledge cutoff. Default: clean once some model has "
            "both, else all.",
            show_default=False,
        ),
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option(help="verify: also compare with this earlier export-chain file."),
    ] = None,
    window: Annotated[
        int, typer.Option(help="robustness: sessions in a rolling window.", min=2)
    ] = 20,
    step: Annotated[
        int, typer.Option(help="robustness: sessions between window starts.", min=1)
    ] = 1,
    min_sessions: Annotated[
        int, typer.Option(help="robustness: fewer sessions and a model is not ranked.", min=2)
    ] = 20,
) -> None:
    """Show runs, per model-day values, or the leaderboard with its metrics."""
    from models.results import get_run, list_runs, model_days_frame
    from models.runs import mark_crashed_runs

    view = _view_of(view, detail)
    first, last = (day, day) if day is not None else (start, end)
    if first and last and last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    with store_session(announce=fmt is OutputFormat.table) as session:
        if detail is Detail.full:
            _print_details(session, run, model, first, last, fmt)
        elif view is ResultsView.report:
            _write_report(session, run, _track(track))
        elif view in (ResultsView.verify, ResultsView.export_chain):
            from deployments import cli_chain

            portfolios = cli_chain.chain_portfolios(session, run, model)
            if view is ResultsView.verify:
                cli_chain.verify(session, portfolios, against)
            else:
                cli_chain.export(session, portfolios)
        elif view is ResultsView.runs:
            mark_crashed_runs(session.get_bind())  # a killed run cannot say so itself
            render([_run_row(r) for r in list_runs(session)], fmt, title="runs")
        elif view is ResultsView.days:
            newest = get_run(session, run).id  # the newest run, as its help says, not every run
            frame = model_days_frame(session, newest, model=model, start=first, end=last)
            if fmt is OutputFormat.table:
                dropped = ["run", "traded_notional", "cached", "session", "track"]
                frame = frame.drop(columns=dropped)
            render(frame.to_dict("records"), fmt, title="model-days")
        elif view is ResultsView.robustness:
            robust = RobustnessOptions(
                window=window,
                step=step,
                min_sessions=min_sessions,
                confidence=confidence,
                risk_free_rate=risk_free_rate,
                cost_multiplier=cost_multiplier,
                sessions=sessions.value if sessions else "auto",
            )
            scope = Scope(run=run, model=model, start=first, end=last)
            _print_robustness(session, scope, robust, _track(track), fmt)
        else:
            scope = Scope(run=run, model=model, start=first, end=last)
            options = RankingOptions(
                confidence=confidence,
                resamples=resamples,
                risk_free_rate=risk_free_rate,
                cost_multiplier=cost_multiplier,
                sessions=sessions.value if sessions else "auto",
            )
            ranking = rank_run(session, run, first, last, model, options, _track(track))
            if view is ResultsView.pairs:
                _print_pairs(ranking, fmt)
            elif view is ResultsView.costs:
                _print_cost_scenarios(ranking, fmt)
            else:
                chosen = ColumnChoice(wide=wide, chosen=split_commas(columns))
                _print_leaderboard(session, scope, ranking, fmt, chosen)


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


def _view_of(view: ResultsView | None, detail: Detail) -> ResultsView:
    """The view asked for; full detail is a rendering of model-days, refused for other views."""
    if detail is Detail.full:
        if view not in (None, ResultsView.days):
            raise ValueError(
                f"--detail full shows model-days: use it with the days view, not {view.value}"
            )
        return ResultsView.days
    return view or ResultsView.leaderboard


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


def _print_details(
    session: Session,
    run: int | None,
    model: str | None,
    first: date | None,
    last: date | None,
    fmt: OutputFormat,
) -> None:
    """Each model-day's messages, reasoning, tool calls with answers, trades and tokens."""
    from rich.panel import Panel

    from models.results import model_day_details

    details = model_day_details(session, run, model=model, start=first, end=last)
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
