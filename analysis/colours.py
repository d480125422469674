"""One colour per model across every chart of a store: the report's charts and the site's."""

from __future__ import annotations

from sqlmodel import Session, select

from models.tables import Run

# The category10 palette (matplotlib's `tab10`, plotly's default): distinct, readable on white.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
BENCHMARK_COLOUR = "#444444"


def model_colours(session: Session) -> dict[str, str]:
    """Each model of the store its colour, by first appearance: a model added later takes the
    next colour and no earlier model's colour changes."""
    order: dict[str, None] = {}
    for models in session.exec(select(Run.models).order_by(Run.id)):
        order.update(dict.fromkeys(models))
    return {model: PALETTE[k % len(PALETTE)] for k, model in enumerate(order)}
