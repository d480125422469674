"""Knowledge cutoffs on the leaderboard: which of a model's sessions it may remember.

A session on or before a model's knowledge cutoff is `contaminated`: the model may have read how
the day ended. Later sessions are `clean`. A model's cutoff is its config's `knowledge_cutoff`,
else the shipped table's (`configs/knowledge_cutoffs.yaml`) for its name or `basemodel`; a model
neither states is `unknown` (never counted clean), and a built-in strategy learned nothing
(`n/a`: every session clean). The memory premium is the difference between a model's mean excess
return per session (over the benchmark) on contaminated and on clean sessions, with a
stationary-bootstrap interval of each side's mean.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from analysis.curves import RunCurves, on_days
from analysis.statistics import Interval, optimal_block_length, stationary_indices
from configs.cutoffs import known_cutoff, parse_cutoff
from models.errors import ResultsError
from models.tables import Run

Sessions = Literal["all", "clean", "contaminated"]
SESSION_CHOICES: tuple[str, ...] = ("all", "clean", "contaminated")
CutoffSource = Literal["config", "table", "table, approximate", "n/a", "unknown"]


class ModelCutoff(BaseModel):
    """A model's knowledge cutoff and where it comes from."""

    model: str
    knowledge_cutoff: date | None = None
    source: CutoffSource = "unknown"

    def kind_of(self, day: date) -> Literal["clean", "contaminated", "unknown"]:
        """Whether the model may remember how `day` ended."""
        if self.source == "n/a":
            return "clean"
        if self.knowledge_cutoff is None:
            return "unknown"
        return "contaminated" if day <= self.knowledge_cutoff else "clean"


class SessionCounts(BaseModel):
    """A model's sessions on each side of its cutoff; None for both when the cutoff is unknown."""

    clean: int | None
    contaminated: int | None


def model_cutoff(model: str, settings: Mapping[str, Any] | None = None) -> ModelCutoff:
    """`model`'s cutoff from its config entry (`settings`, as a run stores it) or the table."""
    settings = settings or {}
    if settings.get("kind") == "strategy":
        return ModelCutoff(model=model, source="n/a")
    if settings.get("knowledge_cutoff"):
        stated = date.fromisoformat(str(parse_cutoff(settings["knowledge_cutoff"])))
        return ModelCutoff(model=model, knowledge_cutoff=stated, source="config")
    row = known_cutoff(model, settings.get("basemodel"))
    if row is None:
        return ModelCutoff(model=model)
    source = "table, approximate" if row.approximate else "table"
    return ModelCutoff(model=model, knowledge_cutoff=row.cutoff, source=source)


def run_cutoffs(run: Run, models: list[str]) -> dict[str, ModelCutoff]:
    """Each of `models`' cutoff, from the run's config snapshot where it has the model's entry
    (a backtest), else from the table by name (an imported run)."""
    entries = (run.config or {}).get("models") or []
    configured = {str(e.get("name")): e for e in entries if isinstance(e, dict)}
    return {name: model_cutoff(name, configured.get(name)) for name in models}


def session_kinds(days: pd.DataFrame, cutoffs: Mapping[str, ModelCutoff]) -> pd.Series:
    """`clean`, `contaminated` or `unknown` for each model-day row of `days`."""
    kinds = [
        cutoffs[str(model)].kind_of(pd.Timestamp(day).date())
        for model, day in zip(days["model"], days["day"], strict=True)
    ]
    return pd.Series(kinds, index=days.index, dtype=object)


def session_counts(
    curves: RunCurves, cutoffs: Mapping[str, ModelCutoff]
) -> dict[str, SessionCounts]:
    """Each model's clean and contaminated sessions: the days its (mean) curve has a return."""
    counts = {}
    for name in curves.models:
        cutoff = cutoffs[name]
        if cutoff.kind_of(date.max) == "unknown":
            counts[name] = SessionCounts(clean=None, contaminated=None)
            continue
        kinds = [cutoff.kind_of(day.date()) for day in curves.mean_values(name).index[1:]]
        counts[name] = SessionCounts(
            clean=kinds.count("clean"), contaminated=kinds.count("contaminated")
        )
    return counts


def default_sessions(counts: Mapping[str, SessionCounts]) -> Sessions:
    """`clean` once some model has sessions on both sides of its cutoff, else `all`."""
    both = any(c.clean and c.contaminated for c in counts.values())
    return "clean" if both else "all"


def on_sessions(
    curves: RunCurves, cutoffs: Mapping[str, ModelCutoff], sessions: Sessions
) -> RunCurves:
    """The curves over each model's `sessions` only (every one for `all`); a model with none of
    them (an unknown cutoff: no session is known clean) is left out."""
    if sessions == "all":
        return curves
    kept = curves.days[session_kinds(curves.days, cutoffs) == sessions]
    if len(kept) == len(curves.days):
        return curves  # every session is of the kind: the curves as they are
    if kept.empty:
        raise ResultsError(
            f"run {curves.run.id} has no {sessions} sessions (no model's knowledge cutoff "
            "puts any there); --sessions all counts every one"
        )
    return on_days(curves, kept)


def memory_premium(
    curves: RunCurves,
    model: str,
    cutoff: ModelCutoff,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval | None:
    """The model's mean excess return per session on contaminated minus on clean sessions, with
    a percentile interval from a stationary bootstrap of each side; None without both sides, and
    no bounds with fewer than two sessions on a side."""
    excess = _excess_returns(curves, model)
    kinds = np.array([cutoff.kind_of(day.date()) for day in excess.index])
    remembered = excess.to_numpy()[kinds == "contaminated"]
    fresh = excess.to_numpy()[kinds == "clean"]
    if not len(remembered) or not len(fresh):
        return None
    estimate = float(remembered.mean() - fresh.mean())
    blocks = [optimal_block_length(side) for side in (remembered, fresh)]
    if min(len(remembered), len(fresh)) < 2:
        lower = upper = None
    else:
        rng = np.random.default_rng([seed, zlib.crc32(model.encode())])
        draws = [
            side[stationary_indices(len(side), resamples, block, rng)].mean(axis=1)
            for side, block in zip((remembered, fresh), blocks, strict=True)
        ]
        tail = (1 - confidence) / 2
        bounds = np.quantile(draws[0] - draws[1], [tail, 1 - tail], method="inverted_cdf")
        lower, upper = float(bounds[0]), float(bounds[1])
    return Interval(
        estimate=estimate,
        lower=lower,
        upper=upper,
        confidence=confidence,
        method="stationary-bootstrap",
        samples=resamples,
        block_length=max(blocks),
    )


def _excess_returns(curves: RunCurves, model: str) -> pd.Series:
    """The model's return each session (its mean curve) minus the benchmark's that day; its
    plain return where the benchmark has none."""
    values = curves.mean_values(model)
    returns = values.pct_change().iloc[1:]
    if not len(curves.benchmark):
        return returns
    benchmark = curves.benchmark.pct_change().reindex(returns.index).fillna(0.0)
    return returns - benchmark
