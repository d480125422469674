"""The backtest report: every model's equity curve against the benchmark (PNG, HTML, markdown)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pandas as pd
from sqlmodel import Session

from analysis.curves import run_curves
from analysis.leaderboard import LeaderboardRow, leaderboard
from models.errors import ResultsError
from models.results import get_run
from models.tables import Run


def equity_curves(session: Session, run_id: int) -> pd.DataFrame:
    """Each model's value from its starting book, and the benchmark scaled to the initial cash:
    the curves the leaderboard measures (empty when nothing completed)."""
    try:
        return run_curves(session, run_id).frame()
    except ResultsError:
        return pd.DataFrame()


def equity_png(curves: pd.DataFrame, title: str) -> bytes:
    """A line chart of the curves (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5), dpi=100)
    for column in curves.columns:
        dashed = column == curves.columns[-1] and len(curves.columns) > 1
        axes.plot(curves.index, curves[column], label=str(column), ls="--" if dashed else "-")
    axes.set_title(title)
    axes.set_ylabel("portfolio value ($)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def equity_html(curves: pd.DataFrame, title: str) -> str:
    """An interactive chart (plotly), self-contained so it opens offline."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for column in curves.columns:
        figure.add_trace(go.Scatter(x=curves.index, y=curves[column], mode="lines", name=column))
    figure.update_layout(title=title, yaxis_title="portfolio value ($)", hovermode="x unified")
    return figure.to_html(include_plotlyjs=True, full_html=True)


def leaderboard_table(rows: list[LeaderboardRow]) -> list[dict]:
    """Leaderboard rows as plain dicts (for artifacts, JSON and notebooks)."""
    table = []
    for row in rows:
        p = row.performance
        table.append(
            {
                "rank": row.rank,
                "model": row.model,
                "final_value": round(p.end_value, 2),
                "return_pct": round(100 * p.cumulative_return, 3),
                "annualized_pct": _pct(p.annualized_return),
                "volatility_pct": _pct(p.annualized_volatility),
                "sharpe": _round(p.sharpe_ratio),
                "sortino": _round(p.sortino_ratio),
                "max_drawdown_pct": round(100 * p.max_drawdown, 3),
                "calmar": _round(p.calmar_ratio),
                "win_rate_pct": _pct(p.win_rate),
                "trades": p.trades,
                "turnover": _round(p.turnover),
                "alpha": _round(p.alpha),
                "beta": _round(p.beta),
                "information_ratio": _round(p.information_ratio),
            }
        )
    return table


def markdown_report(title: str, rows: list[LeaderboardRow], png: bytes | None) -> str:
    """The run's report: the leaderboard and the equity curves (embedded as a PNG)."""
    table = leaderboard_table(rows)
    lines = [f"# {title}", ""]
    if table:
        columns = [
            "rank",
            "model",
            "final_value",
            "return_pct",
            "sharpe",
            "max_drawdown_pct",
            "trades",
            "alpha",
            "beta",
        ]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in table:
            lines.append(
                "| " + " | ".join("-" if row[c] is None else str(row[c]) for c in columns) + " |"
            )
    if png:
        encoded = base64.b64encode(png).decode()
        lines += ["", f"![equity curves](data:image/png;base64,{encoded})"]
    return "\n".join(lines) + "\n"


def report_title(run: Run) -> str:
    return f"Backtest run {run.id}: {run.name}, {run.start_date} to {run.end_date}"


def write_report(session: Session, run_id: int, folder: Path) -> list[Path]:
    """Write a run's report (markdown with the leaderboard, PNG and HTML charts) into `folder`.

    Any run can be reported, whoever triggered it; ResultsError if nothing completed.
    """
    run = get_run(session, run_id)
    board = leaderboard(session, run.id)
    curves = equity_curves(session, run.id)
    title = report_title(run)
    folder.mkdir(parents=True, exist_ok=True)
    png = equity_png(curves, title)
    files = [folder / "report.md", folder / "equity.png", folder / "equity.html"]
    files[0].write_text(markdown_report(title, board, png))
    files[1].write_bytes(png)
    files[2].write_text(equity_html(curves, title))
    return files


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 3)
