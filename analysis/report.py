"""The backtest report: the leaderboard, how sure it is, and the equity curves (PNG, HTML, md)."""

from __future__ import annotations

import base64
import importlib.resources
import io
import json
import shutil
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session

from analysis.colours import BENCHMARK_COLOUR, model_colours
from analysis.curves import run_curves
from analysis.formats import RATIO_COLUMNS, RATIO_DIGITS, fixed
from analysis.leaderboard import (
    COST_MULTIPLIERS,
    LeaderboardRow,
    Ranking,
    rank_curves,
    scenario_label,
    sessions_note,
)
from analysis.robustness import robustness_section
from models.errors import ResultsError
from models.results import get_run
from models.seals import chain_heads
from models.tables import Run, Track
from models.trials import TrialRef


def equity_curves(session: Session, run_id: int) -> pd.DataFrame:
    """Each model's value from its starting book, and the benchmark scaled to the initial cash:
    the curves the leaderboard measures (empty when nothing completed)."""
    try:
        return run_curves(session, run_id).frame()
    except ResultsError:
        return pd.DataFrame()


def _figure(width: float, height: float) -> tuple[Any, Any]:
    """A matplotlib figure and its axes, saved by Agg; no pyplot, whose registry of open
    figures each chart had to be closed from."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    return figure, figure.subplots()


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def equity_png(
    curves: pd.DataFrame,
    title: str,
    trials: pd.DataFrame | None = None,
    currency: str = "USD",
    colours: dict[str, str] | None = None,
) -> bytes:
    """A line chart of the curves, the benchmark dashed; each trial of a model run in several
    trials faintly under its mean (matplotlib). `colours`: the store's, by model."""
    figure, axes = _figure(10, 5)
    colours = dict(colours or {})
    for column in curves.columns:
        dashed = column == curves.columns[-1] and len(curves.columns) > 1
        colour = BENCHMARK_COLOUR if dashed else colours.get(str(column))
        (line,) = axes.plot(
            curves.index,
            curves[column],
            label=str(column),
            ls="--" if dashed else "-",
            lw=2,
            color=colour,
        )
        colours[str(column)] = line.get_color()
    for column in trials.columns if trials is not None else []:
        model = TrialRef.parse(str(column)).model
        axes.plot(trials.index, trials[column], color=colours.get(model), alpha=0.25, lw=1)
    axes.set_title(title)
    axes.set_ylabel(f"portfolio value ({currency})")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    if _days_apart(curves.index) <= SHORT_SPAN_DAYS:
        from matplotlib.dates import DateFormatter, DayLocator

        axes.xaxis.set_major_locator(DayLocator())  # not the hours between end-of-day points
        axes.xaxis.set_major_formatter(DateFormatter("%b %d"))
    figure.autofmt_xdate()
    return _png(figure)


# A chart spanning at most this many days gets a tick a day; left to itself a plotting library
# ticks the hours between end-of-day values.
SHORT_SPAN_DAYS = 14
DAY_MS = 86_400_000


def _days_apart(index: pd.Index) -> float:
    if len(index) < 2:
        return 0.0
    return (pd.Timestamp(index.max()) - pd.Timestamp(index.min())).total_seconds() / 86_400


def time_axis(index: pd.Index) -> dict[str, Any]:
    """A plotly x axis for end-of-day values: a tick a day on a short span, never one between
    days; hovering shows the time where a value is not at midnight (an hourly market's bar)."""
    times = pd.DatetimeIndex(index)
    timed = bool(len(times)) and bool((times != times.normalize()).any())
    axis: dict[str, Any] = {"hoverformat": "%Y-%m-%d %H:%M" if timed else "%Y-%m-%d"}
    if _days_apart(index) <= SHORT_SPAN_DAYS:
        axis.update(dtick=DAY_MS, tickformat="%b %d")
    return axis


def equity_html(
    curves: pd.DataFrame,
    title: str,
    currency: str = "USD",
    colours: dict[str, str] | None = None,
) -> str:
    """An interactive chart (plotly) that loads plotly.js from its folder's parent (one copy
    for every run's report of a store: `write_report` puts it there), so it opens offline."""
    import plotly.io

    colours = colours or {}
    traces = []
    for column in curves.columns:
        dashed = column == curves.columns[-1] and len(curves.columns) > 1
        line = {"color": BENCHMARK_COLOUR if dashed else colours.get(str(column))}
        if dashed:
            line["dash"] = "dash"
        trace = {"line": line, "mode": "lines", "name": column}
        traces.append(trace | {"x": curves.index, "y": curves[column], "type": "scatter"})
    layout = {
        "template": _plotly_template(),
        "title": {"text": title},
        "yaxis": {"title": {"text": f"portfolio value ({currency})"}},
        "hovermode": "x unified",
        "xaxis": time_axis(curves.index),
    }
    # A plain figure dict, not validated: plotly's graph objects load 13 MiB of validators for
    # a chart whose every property is written here.
    return plotly.io.to_html(
        {"data": traces, "layout": layout},
        include_plotlyjs=f"../{PLOTLY_BUNDLE}",
        full_html=True,
        validate=False,
    )


def _plotly_template() -> dict:
    """plotly's default look (its `plotly` template), as graph objects would apply it."""
    return json.loads(_plotly_data("templates/plotly.json").read_bytes())


def _plotly_data(name: str) -> Traversable:
    """A file of the plotly package's data: its templates, plotly.js."""
    return importlib.resources.files("plotly").joinpath("package_data", *name.split("/"))


def leaderboard_table(rows: list[LeaderboardRow]) -> list[dict]:
    """Leaderboard rows as plain dicts, percentages rounded (artifacts, notebooks, Windmill).

    Every row has every key, the benchmark's rank is "benchmark", intervals are `_low`/`_high`.
    """
    return [_table_row(row) for row in rows]


def leaderboard_artifact(session: Session, run: Run, rows: list[LeaderboardRow]) -> list[dict]:
    """`leaderboard_table` with each model's chain head through the run's last day (of its
    trial-1 portfolio's sealed chain, `aitrader results verify`): the leaderboard artifact the
    Windmill dashboard shows."""
    heads = chain_heads(session, list(run.portfolios.values()), through=run.end_date)
    table = leaderboard_table(rows)
    for row in table:
        head = heads.get(run.portfolios.get(row["model"], ""))
        row["chain_head"] = head[1] if head else None
    return table


def _table_row(row: LeaderboardRow) -> dict:
    p = row.performance
    ci = row.intervals.get("cumulative_return")
    cost = row.cost
    trials = row.trials
    return {
        "rank": "benchmark" if row.is_benchmark else row.rank,
        "model": row.model,
        "tier": row.tier,
        "final_value": round(p.end_value, 2),
        "return_pct": round(100 * p.cumulative_return, 3),
        "return_ci_low_pct": _pct(ci.lower if ci else None),
        "return_ci_high_pct": _pct(ci.upper if ci else None),
        "annualized_pct": _pct(p.annualized_return),
        "volatility_pct": _pct(p.annualized_volatility),
        "sharpe": _round(p.sharpe_ratio),
        "psr": _round(row.psr),
        "sortino": _round(p.sortino_ratio),
        "max_drawdown_pct": round(100 * p.max_drawdown, 3),
        "calmar": _round(p.calmar_ratio),
        "win_rate_pct": _pct(p.win_rate),
        "trades": p.trades,
        "turnover": _round(p.turnover),
        "alpha": _round(p.alpha),
        "beta": _round(p.beta),
        "information_ratio": _round(p.information_ratio),
        "trials": trials.count if trials else 1,
        "track": row.track,
        "live_sessions": row.live_sessions,
        "trial_return_ci_low_pct": _pct(trials.return_interval.lower if trials else None),
        "trial_return_ci_high_pct": _pct(trials.return_interval.upper if trials else None),
        "usd_per_day": _round(cost.usd_per_day if cost else None),
        "tokens_per_day": _round(cost.tokens_per_day if cost else None, 1),
        "return_after_llm_cost_pct": _pct(cost.return_after_llm_cost if cost else None),
        "gross_return_pct": _pct(row.costs_paid.gross_return if row.costs_paid else None),
        "costs_paid": round(row.costs_paid.costs_paid, 2) if row.costs_paid else None,
        **_scenario_cells(row),
        **_cutoff_cells(row),
    }


def _cutoff_cells(row: LeaderboardRow) -> dict:
    """The row's knowledge cutoff, its sessions on each side, its memory premium (in percent
    per session) and the sessions ranked."""
    premium = row.memory_premium
    return {
        "sessions": row.sessions,
        # Text, as the artifacts' JSON holds it.
        "knowledge_cutoff": row.knowledge_cutoff.isoformat() if row.knowledge_cutoff else None,
        "cutoff_source": row.cutoff_source,
        "clean_sessions": row.clean_sessions,
        "contaminated_sessions": row.contaminated_sessions,
        "memory_premium_pct": _pct(premium.estimate if premium else None),
        "memory_premium_ci_low_pct": _pct(premium.lower if premium else None),
        "memory_premium_ci_high_pct": _pct(premium.upper if premium else None),
    }


def _scenario_cells(row: LeaderboardRow) -> dict:
    """`return_at_<m>x_pct` and `tier_at_<m>x` for each cost multiplier (None for the benchmark)."""
    scenarios = {s.multiplier: s for s in row.cost_scenarios}
    cells: dict = {}
    for multiplier in COST_MULTIPLIERS:
        scenario = scenarios.get(multiplier)
        times = scenario_label(multiplier)
        cells[f"return_at_{times}_pct"] = _pct(scenario.cumulative_return if scenario else None)
        cells[f"tier_at_{times}"] = scenario.tier if scenario else None
    return cells


MARKDOWN_COLUMNS = [
    "rank",
    "model",
    "tier",
    "final_value",
    "return_pct",
    "return_ci_low_pct",
    "return_ci_high_pct",
    "sharpe",
    "max_drawdown_pct",
    "trades",
    "costs_paid",
    "usd_per_day",
]


def markdown_report(
    title: str, rows: list[LeaderboardRow], png: bytes | None, intervals_png: bytes | None = None
) -> str:
    """The run's report: the leaderboard, how sure it is, and the equity curves (PNGs inline)."""
    table = leaderboard_table(rows)
    lines = [f"# {title}", ""]
    if table:
        lines.append("| " + " | ".join(MARKDOWN_COLUMNS) + " |")
        lines.append("|" + "---|" * len(MARKDOWN_COLUMNS))
        for row in table:
            cells = (_markdown_cell(row[c], c) for c in MARKDOWN_COLUMNS)
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", TIERS_NOTE]
        lines += _cost_scenarios_markdown(table)
    for name, image in (("return intervals", intervals_png), ("equity curves", png)):
        if image:
            encoded = base64.b64encode(image).decode()
            lines += ["", f"![{name}](data:image/png;base64,{encoded})"]
    return "\n".join(lines) + "\n"


def _markdown_cell(value: Any, column: str) -> str:
    """A report cell as the CLI writes it: percentages and amounts with two decimals, ratios with
    `RATIO_DIGITS`, whole numbers as they are."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return fixed(value, RATIO_DIGITS if column in RATIO_COLUMNS else 2)
    return str(value)


def _cost_scenarios_markdown(table: list[dict]) -> list[str]:
    """Each model's return and tier had its fills paid 0, 1, 2 or 3 times their costs."""
    models = [row for row in table if row["rank"] != "benchmark"]
    if not any(row["costs_paid"] for row in models):
        return []  # free fills: every scenario is the leaderboard itself
    labels = [scenario_label(m) for m in COST_MULTIPLIERS]
    header = ["model", *(f"{label} costs" for label in labels)]
    lines = ["", "## Trading costs", "", COSTS_NOTE, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in models:
        cells = [
            f"{_markdown_cell(row[f'return_at_{x}_pct'], '')}% (tier {row[f'tier_at_{x}']})"
            for x in labels
        ]
        lines.append("| " + " | ".join([row["model"], *cells]) + " |")
    return lines


def cutoffs_section(ranking: Ranking) -> str:
    """The report's knowledge-cutoff section: each model's cutoff and source, its sessions on
    each side, and its memory premium ("" when every model is a built-in strategy)."""
    models = [row for row in ranking.rows if not row.is_benchmark]
    if all(row.cutoff_source == "n/a" for row in models):
        return ""
    header = ["model", "knowledge cutoff", "source", "clean", "contaminated", "memory premium"]
    note = sessions_note(ranking)
    lines = [
        "",
        "## Knowledge cutoffs",
        "",
        note[:1].upper() + note[1:] + ".",
        "",
        CUTOFFS_NOTE,
        "",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in models:
        premium = row.memory_premium
        shown = "-"
        if premium is not None and premium.estimate is not None:
            shown = f"{fixed(100 * premium.estimate, 2)}%"
            if premium.lower is not None and premium.upper is not None:
                shown += f" ({fixed(100 * premium.lower, 2)}% to {fixed(100 * premium.upper, 2)}%)"
        cells = [row.knowledge_cutoff, row.cutoff_source, row.clean_sessions]
        cells += [row.contaminated_sessions]
        lines.append(
            "| " + " | ".join([row.model, *(_markdown_cell(c, "") for c in cells), shown]) + " |"
        )
    for model, why in ranking.left_out.items():
        lines.append(f"| {model} | - | not ranked: {why} | - | - | - |")
    return "\n".join(lines) + "\n"


CUTOFFS_NOTE = (
    "A session on or before a model's knowledge cutoff is contaminated: the model may remember "
    "how it ended. The leaderboard ranks clean sessions only once some model has both kinds. "
    "The memory premium is the model's mean excess return per session over the benchmark on "
    "contaminated sessions minus on clean ones, with its 95 % interval; a built-in strategy "
    "learned nothing (n/a: every session clean), and an unknown cutoff is never counted clean."
)

COSTS_NOTE = (
    "Returns are net of the market's trading costs (commission, taxes, fees and slippage; "
    "`costs_paid` in the leaderboard). Below, each model's return and tier had the same fills "
    "paid nothing, the market's costs, twice or three times them: a ranking that holds at 2x and "
    "3x does not depend on the cost assumptions."
)

TIERS_NOTE = (
    "The interval holds the expected cumulative return with 95 % confidence: Student's t on a "
    "long-run variance that counts runs of good and bad days (EWC). Models in tier 1 cannot be "
    "told apart from the best by a paired t-test of their daily returns on the same variance "
    "(Holm-corrected over all pairs); a longer window or more trials narrows the intervals."
)


def intervals_png(
    rows: list[LeaderboardRow], title: str, colours: dict[str, str] | None = None
) -> bytes | None:
    """Each model's cumulative return with its interval as an error bar, best first."""
    ranked = [r for r in rows if not r.is_benchmark and "cumulative_return" in r.intervals]
    if not ranked:
        return None
    figure, axes = _figure(8, 0.6 * len(ranked) + 1.5)
    for y, row in enumerate(reversed(ranked)):
        interval = row.intervals["cumulative_return"]
        point = 100 * row.performance.cumulative_return
        low = point if interval.lower is None else 100 * interval.lower
        high = point if interval.upper is None else 100 * interval.upper
        axes.errorbar(
            point,
            y,
            # Clipped: a degenerate interval (a constant return) can miss the point by rounding.
            xerr=[[max(point - low, 0.0)], [max(high - point, 0.0)]],
            fmt="o",
            capsize=4,
            color=(colours or {}).get(row.model),
        )
        axes.annotate(f"tier {row.tier}", (high, y), xytext=(6, -3), textcoords="offset points")
    benchmark = next((r for r in rows if r.is_benchmark), None)
    if benchmark is not None:
        benchmark_return = 100 * benchmark.performance.cumulative_return
        axes.axvline(benchmark_return, ls="--", c="grey", label=benchmark.model)
        axes.legend(loc="best", fontsize="small")
    axes.set_yticks(range(len(ranked)), [r.model for r in reversed(ranked)])
    axes.set_xlabel("cumulative return (%), with its interval")
    axes.set_title(title)
    axes.grid(alpha=0.3, axis="x")
    return _png(figure)


# plotly.js, shared by the equity.html of every run's report in a store's reports folder.
PLOTLY_BUNDLE = "plotly.min.js"

# What a run was, as its report's title says it (`Run.kind`).
RUN_KINDS = {"backtest": "Backtest", "backtest-replay": "Replay", "legacy-import": "Import"}


def report_title(run: Run) -> str:
    """`Backtest run 3: …`, `Replay run 4: …` or `Import run 1: …`, with its window."""
    kind = RUN_KINDS.get(run.kind, run.kind.capitalize())
    return f"{kind} run {run.id}: {run.name}, {run.start_date} to {run.end_date}"


@dataclass
class Report:
    """A run's report, rendered: the ranking it shows and each file's content."""

    title: str
    ranking: Ranking
    markdown: str
    equity_png: bytes
    intervals_png: bytes | None
    equity_html: str


def render_report(session: Session, run_id: int, track: Track | None = None) -> Report:
    """A run's report, whoever triggered it (over one `track`'s sessions, if given);
    ResultsError if nothing completed."""
    run = get_run(session, run_id)
    curves = run_curves(session, run.id, track=track)
    ranking = rank_curves(curves)
    for row in ranking.rows:
        row.track = track or "all"
    title = report_title(run) + (f" ({track} sessions only)" if track else "")
    colours = model_colours(session)  # the same colour for a model in every chart
    frame = curves.on_bar_times(curves.frame())
    trials = curves.on_bar_times(curves.trial_frame())
    png = equity_png(frame, title, trials, run.currency, colours)
    bars = intervals_png(ranking.rows, f"{title}: how sure is this ranking?", colours)
    return Report(
        title=title,
        ranking=ranking,
        markdown=markdown_report(title, ranking.rows, png, bars)
        + cutoffs_section(ranking)
        + robustness_section(curves)
        + site_note(run.id or 0),
        equity_png=png,
        intervals_png=bars,
        equity_html=equity_html(frame, title, run.currency, colours),
    )


def site_note(run_id: int) -> str:
    """Where this run's every decision can be read: the site, built beside the reports."""
    page = f"../site/run-{run_id}/index.html"
    return (
        f"\nEvery trade with the model's stated reason, and every session's conversation: run "
        f"`aitrader site build`, then open [this run's page]({page}) (or `aitrader site serve`).\n"
    )


def write_report(report: Report, folder: Path) -> list[Path]:
    """Write a rendered report into `folder`: report.md, equity.png, intervals.png, equity.html
    (and plotly.js beside the folder, once for all the store's reports)."""
    folder.mkdir(parents=True, exist_ok=True)
    bundle = folder.parent / PLOTLY_BUNDLE
    if not bundle.exists():
        with importlib.resources.as_file(_plotly_data(PLOTLY_BUNDLE)) as source:
            shutil.copyfile(source, bundle)  # 4.8 MB never read into this process
    files = {
        "report.md": report.markdown,
        "equity.png": report.equity_png,
        "intervals.png": report.intervals_png,
        "equity.html": report.equity_html,
    }
    written = []
    for name, content in files.items():
        if content is None:
            continue
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        written.append(path)
    return written


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 3)
