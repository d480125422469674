"""The site's charts: plotly figures as page fragments that share one offline bundle.

The bundle is plotly.js's basic distribution (`assets/plotly-basic.min.js`, plotly.js-basic-dist-min
from npm, MIT), the same plotly.js version as the installed plotly's full bundle: it draws every
trace the site uses (lines and stacked areas) and a page with it loads in a fifth of the time
(200 ms against 1.1 s in headless chromium here; benchmarks/site_build.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io

from analysis.colours import BENCHMARK_COLOUR
from analysis.report import time_axis
from models.trials import TrialRef
from website.content import RunContent

CONFIG = {"displaylogo": False, "responsive": True}


# Its first lines name its version; tests/test_site.py holds it to the installed plotly's.
BUNDLE = "plotly-basic.min.js"


def fragment(figure: go.Figure, label: str) -> str:
    """A chart as a `<div>` and its script (the page loads plotly.js once)."""
    figure.update_layout(
        margin={"l": 56, "r": 16, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.18},
        template="plotly_white",
        height=420,
    )
    html = plotly.io.to_html(figure, include_plotlyjs=False, full_html=False, config=CONFIG)
    return f'<figure class="chart" aria-label="{label}">{html}</figure>'


def equity(content: RunContent) -> str:
    """Each model's value from its starting book against the benchmark; trials faint."""
    assert content.curves is not None
    curves = content.curves
    colour = content.colours
    currency = content.run.currency
    frame = curves.on_bar_times(curves.frame())  # an hourly market's values at their bar
    trials = curves.on_bar_times(curves.trial_frame())
    axis = time_axis(frame.index)
    hover = f"%{{x|{axis['hoverformat']}}}: %{{y:,.2f}} {currency}<extra>%{{fullData.name}}</extra>"
    figure = go.Figure()
    for column in trials.columns:
        model = TrialRef.parse(column).model
        line = {"color": colour.get(model), "width": 1}
        trace = _value_line(trials[column], line, hover, opacity=0.3, showlegend=False)
        figure.add_trace(trace)
    for column in frame.columns:
        benchmark = column == content.run.benchmark and column not in curves.models
        line = {
            "color": BENCHMARK_COLOUR if benchmark else colour.get(column),
            "width": 2,
            "dash": "dash" if benchmark else "solid",
        }
        figure.add_trace(_value_line(frame[column], line, hover))
    figure.update_layout(title="Portfolio value", yaxis_title=currency, xaxis=axis)
    return fragment(figure, "portfolio value of every model and the benchmark")


def _value_line(series: pd.Series, line: dict[str, Any], hover: str, **style: Any) -> go.Scatter:
    """One curve of the equity chart, named after its column; its missing days left out."""
    series = series.dropna()
    return go.Scatter(
        x=series.index,
        y=series.values,
        name=series.name,
        mode="lines",
        line=line,
        hovertemplate=hover,
        **style,
    )


def allocation(frame: pd.DataFrame, model: str, currency: str) -> str:
    """A model's end-of-day book, stacked: its largest holdings, the rest, and cash."""
    if frame.empty:
        return ""
    figure = go.Figure()
    for column in frame.columns:
        figure.add_trace(
            go.Scatter(
                x=frame.index,
                y=frame[column],
                name=column,
                mode="lines",
                stackgroup="book",
                line={"width": 0.5},
                hovertemplate=f"%{{x|%Y-%m-%d}} {column}: %{{y:,.2f}} {currency}<extra></extra>",
            )
        )
    figure.update_layout(
        title=f"What {model} held at each close", yaxis_title=currency, xaxis=time_axis(frame.index)
    )
    return fragment(figure, f"allocation of {model} over time")
