"""Is the ranking robust across windows? Rolling windows, first sessions, regimes, deflated Sharpe.

A ranking that flips when the window starts a week later is not a ranking. For a run's curves
(:mod:`analysis.curves`; each model ranked on its mean curve over trials, as the leaderboard does)
this module reports, per model:

- **Rolling windows**: every window of ``window`` consecutive sessions (daily returns), one
  starting every ``step`` sessions. In each, the models whose returns cover the whole window are
  ranked by their cumulative return over it (the leaderboard's ordering); ``share_first`` is the
  share of the windows a model took part in where it ranked first.
- **Tier 1 across windows**: ``share_tier1`` is the share of *tier windows* where the model sits in
  tier 1 (:func:`analysis.statistics.tiers` over :func:`analysis.statistics.pairwise_tests` of that
  window alone). Tier windows start every ``tier_step`` sessions, by default the window length:
  non-overlapping windows. Why not every start date: the paired tests (analytic EWC t-tests,
  nothing drawn) still cost about 20 ms of CPU a window for 10 models (45 pairs, half of it
  aligning each pair's dates), so the 231 windows of 250 sessions would take about 5 s against
  the 2 s budget (``benchmarks/robustness.py`` measures it), and windows one session apart share
  all but one session, so their tiers are nearly the same draw. The point-estimate rank is cheap
  and is taken at every start date.
- **First sessions**: the rank and tier over the first N sessions, for N = window, 2 x window,
  4 x window, ... below the run's length (the whole run is the leaderboard itself).
- **Regimes**: the same shares over the windows where the benchmark rose (``_up``: its return over
  the window >= 0) and those where it fell (``_down``).
- **Deflated Sharpe ratio** (Bailey & López de Prado 2014, "The deflated Sharpe ratio: correcting
  for selection bias, backtest overfitting and non-normality", J. Portfolio Management 40(5)):
  the probabilistic Sharpe ratio of the model's curve against ``SR0``, the Sharpe the best of ``N``
  unskilled trials would be expected to show::

      SR0 = sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e))),  g = 0.5772...

  ``N`` is every model-trial of the run (each trial of each model is a strategy that was tried),
  ``V`` the sample variance (ddof=1) of their per-session Sharpe ratios (those defined). With
  fewer than two trials there is no selection, and ``SR0 = 0`` (the plain PSR).

The sessions are the leaderboard's (:mod:`analysis.contamination`): by default the clean ones
(after each model's knowledge cutoff) once some model has sessions on both sides of its cutoff,
else all; ``sessions`` chooses. A model with fewer than ``min_sessions`` daily returns is listed
but not ranked (``ranked`` false, its shares and deflated Sharpe None): it takes part in no
window, but its trials still count in N.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from analysis.contamination import ranked_sessions
from analysis.curves import RunCurves
from analysis.metrics import TRADING_DAYS_PER_YEAR, ZERO_DISPERSION
from analysis.statistics import pairwise_tests, probabilistic_sharpe, tiers

EULER_GAMMA = 0.5772156649015329


class RobustnessOptions(BaseModel):
    """The windows, and the confidence of their tiers."""

    window: int = Field(20, ge=2, description="sessions (daily returns) in a rolling window")
    step: int = Field(1, ge=1, description="sessions between the starts of rolling windows")
    min_sessions: int = Field(20, ge=2, description="fewer daily returns: listed, not ranked")
    tier_step: int | None = Field(None, ge=1, description="between tier windows; None: window")
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    risk_free_rate: float = 0.0
    cost_multiplier: float = Field(1.0, ge=0.0, le=10.0)
    # The leaderboard's choice of sessions by knowledge cutoff (`auto`: clean once some model
    # has sessions on both sides of its cutoff), so both rank the same sessions.
    sessions: Literal["auto", "all", "clean", "contaminated"] = "auto"


class FirstSessions(BaseModel):
    """A model's rank and tier over the run's first ``sessions`` sessions (None: not in them)."""

    sessions: int
    rank: int | None
    tier: int | None


class RobustnessRow(BaseModel):
    """One model's robustness: how often it ranks first or in tier 1, and its deflated Sharpe."""

    model: str
    ranked: bool
    rank: int | None  # over each model's whole span, by cumulative return (the leaderboard's)
    session_count: int  # its daily returns on the sessions ranked
    trials: int
    windows: int = 0  # rolling windows it took part in
    first_in: int = 0  # ... and ranked first in
    share_first: float | None = None
    share_first_up: float | None = None
    share_first_down: float | None = None
    tier_windows: int = 0
    share_tier1: float | None = None
    share_tier1_up: float | None = None
    share_tier1_down: float | None = None
    sharpe: float | None  # annualised, of its ranked curve
    deflated_sharpe: float | None = None
    first_sessions: list[FirstSessions] = Field(default_factory=list)
    sessions: str = "all"  # the kind ranked, as on the leaderboard: all, clean or contaminated


class Robustness(BaseModel):
    """Every model's row and what they were measured over."""

    rows: list[RobustnessRow]
    options: RobustnessOptions
    windows: int
    windows_up: int
    windows_down: int
    tier_windows: int
    trials: int
    sharpe_variance: float | None  # of the trials' per-session Sharpe ratios
    expected_max_sharpe: float  # SR0, annualised
    sessions: str = "all"  # which sessions were ranked: all, clean or contaminated


# --------------------------------------------------------------------------------------------------
# Deflated Sharpe ratio


def expected_max_sharpe(trials: int, variance: float) -> float:
    """The expected largest of ``trials`` Sharpe ratios of zero true Sharpe and this variance
    (Bailey & López de Prado 2014, eq. for SR0); 0 with fewer than two trials."""
    if trials < 2 or variance <= 0.0:
        return 0.0
    z = NormalDist().inv_cdf
    spread = (1 - EULER_GAMMA) * z(1 - 1 / trials) + EULER_GAMMA * z(1 - 1 / (trials * math.e))
    return math.sqrt(variance) * spread


def session_sharpe(
    returns: np.ndarray, risk_free_rate: float = 0.0, periods_per_year: float = 252
) -> float | None:
    """``mean(r - rf/P) / std(r, ddof=1)``, per session (not annualised); None if undefined."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) < 2 or float(np.std(r, ddof=1)) <= ZERO_DISPERSION:
        return None
    return float(np.mean(r - risk_free_rate / periods_per_year) / np.std(r, ddof=1))


def deflated_sharpe(
    returns: np.ndarray,
    trial_sharpes: Sequence[float | None],
    *,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """P(true Sharpe > SR0) of ``returns``, SR0 from every trial's per-session Sharpe (None:
    undefined, still counted as a trial); None when the PSR is undefined."""
    sr0 = _sr0(trial_sharpes)
    return probabilistic_sharpe(
        np.asarray(returns, dtype=float),
        sr0 * math.sqrt(periods_per_year),  # probabilistic_sharpe takes it annualised
        risk_free_rate=risk_free_rate,
        periods_per_year=periods_per_year,
    )


def _sharpe_variance(trial_sharpes: Sequence[float | None]) -> float | None:
    defined = [s for s in trial_sharpes if s is not None]
    return float(np.var(defined, ddof=1)) if len(defined) >= 2 else None


def _sr0(trial_sharpes: Sequence[float | None]) -> float:
    return expected_max_sharpe(len(trial_sharpes), _sharpe_variance(trial_sharpes) or 0.0)


# --------------------------------------------------------------------------------------------------
# Windows


def _cumulative(returns: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(starts, columns)`` cumulative returns over ``length`` sessions from each start; NaN
    where a column lacks a session of the window."""
    logs = np.log1p(returns)
    valid = np.isfinite(logs)
    zero = np.zeros((1, returns.shape[1]))
    total = np.vstack([zero, np.cumsum(np.where(valid, logs, 0.0), axis=0)])
    count = np.vstack([zero, np.cumsum(valid, axis=0)])
    growth = np.expm1(total[starts + length] - total[starts])
    return np.where(count[starts + length] - count[starts] == length, growth, np.nan)


def _order(window_returns: np.ndarray, names: Sequence[str]) -> list[str]:
    """The models taking part (a finite return), best first; ties keep the given order."""
    taking_part = [i for i in range(len(names)) if np.isfinite(window_returns[i])]
    taking_part.sort(key=lambda i: -window_returns[i])
    return [names[i] for i in taking_part]


def _tiers_of(
    values: pd.DataFrame, order: list[str], start: int, length: int, options: RobustnessOptions
) -> dict[str, int]:
    """The tiers of the models in ``order`` over sessions ``start .. start + length`` alone."""
    window = {name: values[name].iloc[start : start + length + 1] for name in order}
    return tiers(order, pairwise_tests(window, confidence=options.confidence))


def _share(hits: np.ndarray, among: np.ndarray) -> float | None:
    taken = int(np.count_nonzero(among))
    return float(np.count_nonzero(hits & among)) / taken if taken else None


@dataclass
class _Outcomes:
    """Which models took part in each window, which of them scored (first, or tier 1), and
    whether the benchmark rose or fell over it."""

    took_part: np.ndarray  # (windows, models)
    hit: np.ndarray  # (windows, models)
    up: np.ndarray  # (windows,)
    down: np.ndarray  # (windows,)

    def shares(self, j: int) -> tuple[float | None, float | None, float | None]:
        """Model ``j``'s share of hits over all its windows, the rising ones, the falling ones."""
        took, hit = self.took_part[:, j], self.hit[:, j]
        return _share(hit, took), _share(hit, took & self.up), _share(hit, took & self.down)


def _regimes(benchmark_returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows where the benchmark rose (>= 0) and fell; neither without its return."""
    with np.errstate(invalid="ignore"):
        return benchmark_returns >= 0.0, benchmark_returns < 0.0


def _rolling(returns: np.ndarray, starts: np.ndarray, length: int) -> _Outcomes:
    """Who ranked first in each window (by point estimate); the benchmark is the last column."""
    windows = _cumulative(returns, starts, length)
    models = windows[:, :-1]
    present = np.isfinite(models)
    contest = present.sum(axis=1) >= 2  # a model alone in a window beats nobody
    hit = np.zeros_like(present)
    rows = np.flatnonzero(contest)
    if len(rows):  # no contest at all (a run shorter than a window): nobody leads
        hit[rows, np.nanargmax(models[rows], axis=1)] = True
    up, down = _regimes(windows[:, -1])
    return _Outcomes(present & contest[:, None], hit, up, down)


def _tiered(
    values: pd.DataFrame, returns: np.ndarray, starts: np.ndarray, options: RobustnessOptions
) -> _Outcomes:
    """Who sits in tier 1 of each window starting at ``starts`` (paired tests of that window)."""
    names = list(values.columns)
    windows = _cumulative(returns, starts, options.window)
    took = np.zeros((len(starts), len(names)), dtype=bool)
    hit = np.zeros_like(took)
    for k, start in enumerate(starts):
        order = _order(windows[k, :-1], names)
        if len(order) < 2:
            continue
        tier_of = _tiers_of(values, order, int(start), options.window, options)
        for name, tier in tier_of.items():
            took[k, names.index(name)] = True
            hit[k, names.index(name)] = tier == 1
    up, down = _regimes(windows[:, -1])
    return _Outcomes(took, hit, up, down)


def _first_sessions(
    values: pd.DataFrame, returns: np.ndarray, options: RobustnessOptions
) -> dict[str, list[FirstSessions]]:
    """Each model's rank and tier over the first N = window, 2 window, 4 window... sessions."""
    names = list(values.columns)
    found: dict[str, list[FirstSessions]] = {name: [] for name in names}
    length = options.window
    while length < len(returns):
        order = _order(_cumulative(returns, np.array([0]), length)[0, :-1], names)
        tier_of = _tiers_of(values, order, 0, length, options) if len(order) >= 2 else {}
        for name in names:
            rank = order.index(name) + 1 if name in order else None
            found[name].append(FirstSessions(sessions=length, rank=rank, tier=tier_of.get(name)))
        length *= 2
    return found


# --------------------------------------------------------------------------------------------------
# The whole


def robustness(curves: RunCurves, options: RobustnessOptions | None = None) -> Robustness:
    """Every model of a run's curves over rolling windows, first sessions and regimes, with its
    deflated Sharpe over every model-trial (each model ranked on its mean curve)."""
    options = options or RobustnessOptions()
    kept, sessions, _, _ = ranked_sessions(curves, options.sessions)
    charged = kept.at_cost_multiplier(options.cost_multiplier)
    per_year = charged.periods_per_year
    trial_sharpes: list[float | None] = [
        session_sharpe(c.values.pct_change().to_numpy()[1:], options.risk_free_rate, per_year)
        for c in charged.curves
    ]
    # A trial left out with its model (no session of the kind ranked) was still tried: it counts
    # in N, though not in the variance of the Sharpe ratios.
    trial_sharpes += [None] * (len(curves.curves) - len(charged.curves))
    result = window_robustness(
        {name: charged.mean_values(name) for name in charged.models},
        charged.benchmark if len(charged.benchmark) else None,
        options,
        trial_sharpes=trial_sharpes,
        trials={name: len(trials) for name, trials in charged.models.items()},
        periods_per_year=per_year,
    )
    rows = [row.model_copy(update={"sessions": sessions}) for row in result.rows]
    return result.model_copy(update={"sessions": sessions, "rows": rows})


@dataclass
class _Measured:
    """What the rows are read from: each model's own returns and the three kinds of windows."""

    own: dict[str, np.ndarray]
    ranked: list[str]
    rolling: _Outcomes
    tiered: _Outcomes
    firsts: dict[str, list[FirstSessions]]


def _measure(
    values: Mapping[str, pd.Series], benchmark: pd.Series | None, options: RobustnessOptions
) -> _Measured:
    """The models' returns on one calendar (NaN where a model has no session) and every window."""
    frame = pd.DataFrame(dict(values)).sort_index()
    returns = frame.pct_change(fill_method=None).iloc[1:]
    own = {str(name): returns[name].dropna().to_numpy() for name in frame.columns}
    ranked = [name for name in own if len(own[name]) >= options.min_sessions]
    bench = np.full(len(returns), np.nan)
    if benchmark is not None:
        bench = benchmark.reindex(frame.index).pct_change(fill_method=None).iloc[1:].to_numpy()
    matrix = np.column_stack([returns[ranked].to_numpy(), bench])  # the benchmark last
    n, length = len(returns), options.window
    starts = np.arange(0, max(n - length + 1, 0), options.step)
    tier_starts = np.arange(0, max(n - length + 1, 0), options.tier_step or length)
    return _Measured(
        own=own,
        ranked=ranked,
        rolling=_rolling(matrix, starts, length),
        tiered=_tiered(frame[ranked], matrix, tier_starts, options),
        firsts=_first_sessions(frame[ranked], matrix, options),
    )


def window_robustness(
    values: Mapping[str, pd.Series],
    benchmark: pd.Series | None = None,
    options: RobustnessOptions | None = None,
    *,
    trial_sharpes: Sequence[float | None] | None = None,
    trials: Mapping[str, int] | None = None,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> Robustness:
    """:func:`robustness` of value series by model (one trial each unless ``trial_sharpes``, the
    per-session Sharpe of every model-trial, and ``trials``, the count by model, say more)."""
    options = options or RobustnessOptions()
    measured = _measure(values, benchmark, options)
    if trial_sharpes is None:
        trial_sharpes = [
            session_sharpe(r, options.risk_free_rate, periods_per_year)
            for r in measured.own.values()
        ]
    whole = {name: float(np.prod(1.0 + measured.own[name]) - 1.0) for name in measured.ranked}
    by_return = sorted(measured.ranked, key=lambda name: -whole[name])
    rows = [
        _row(
            name,
            measured,
            by_return,
            trial_sharpes,
            (trials or {}).get(name, 1),
            options,
            periods_per_year,
        )
        for name in measured.own
    ]
    rows.sort(key=lambda row: (row.rank is None, row.rank or 0))
    rolling, took = measured.rolling, measured.rolling.took_part.any(axis=1)
    return Robustness(
        rows=rows,
        options=options,
        windows=int(took.sum()),
        windows_up=int((took & rolling.up).sum()),
        windows_down=int((took & rolling.down).sum()),
        tier_windows=int(measured.tiered.took_part.any(axis=1).sum()),
        trials=len(trial_sharpes),
        sharpe_variance=_sharpe_variance(trial_sharpes),
        expected_max_sharpe=_sr0(trial_sharpes) * math.sqrt(periods_per_year),
    )


def _row(
    name: str,
    measured: _Measured,
    by_return: list[str],
    trial_sharpes: Sequence[float | None],
    trials: int,
    options: RobustnessOptions,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> RobustnessRow:
    """One model's row; a model below the minimum sessions is listed with no shares."""
    r = measured.own[name]
    sharpe = session_sharpe(r, options.risk_free_rate, periods_per_year)
    row = RobustnessRow(
        model=name,
        ranked=False,
        rank=None,
        session_count=len(r),
        trials=trials,
        sharpe=None if sharpe is None else sharpe * math.sqrt(periods_per_year),
    )
    if name not in measured.ranked:
        return row
    j = measured.ranked.index(name)
    rolling, tiered = measured.rolling, measured.tiered
    first, first_up, first_down = rolling.shares(j)
    tier1, tier1_up, tier1_down = tiered.shares(j)
    return row.model_copy(
        update={
            "ranked": True,
            "rank": by_return.index(name) + 1,
            "windows": int(rolling.took_part[:, j].sum()),
            "first_in": int((rolling.hit[:, j] & rolling.took_part[:, j]).sum()),
            "share_first": first,
            "share_first_up": first_up,
            "share_first_down": first_down,
            "tier_windows": int(tiered.took_part[:, j].sum()),
            "share_tier1": tier1,
            "share_tier1_up": tier1_up,
            "share_tier1_down": tier1_down,
            "deflated_sharpe": deflated_sharpe(
                r,
                trial_sharpes,
                risk_free_rate=options.risk_free_rate,
                periods_per_year=periods_per_year,
            ),
            "first_sessions": measured.firsts[name],
        }
    )


# --------------------------------------------------------------------------------------------------
# Rows for people and programs

SHARES = (
    "share_first",
    "share_first_up",
    "share_first_down",
    "share_tier1",
    "share_tier1_up",
    "share_tier1_down",
)


# What a table leaves to JSON and CSV to stay readable: the counts and the tier-1 regimes.
TABLE_HIDDEN = {
    "ranked",  # a rank of "-" says it
    "trials",
    "tier_windows",
    "share_tier1_up",
    "share_tier1_down",
    "first_sessions",  # a column per N instead
    "sessions",  # the title says which
}


def robustness_rows(result: Robustness, as_table: bool = False) -> list[dict[str, Any]]:
    """Rows for `aitrader results robustness`: every field (fractions) for JSON and CSV; for a
    table, shares as percentages and each first-N ranking as a `rank (tier)` column."""
    rows = []
    for row in result.rows:
        fields = row.model_dump(exclude=TABLE_HIDDEN if as_table else set())
        if as_table:
            for share in SHARES:
                if share in fields:
                    fields[share] = _percent(fields[share])
            for first in row.first_sessions:
                cell = "-" if first.rank is None else f"{first.rank} (t{first.tier})"
                fields[f"first_{first.sessions}"] = cell
        rows.append(fields)
    return rows


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f}%"


def robustness_markdown(result: Robustness) -> list[str]:
    """The report's section: each model's shares, first-N ranks and deflated Sharpe."""
    table = robustness_rows(result, as_table=True)
    if not result.windows or not table:
        return []
    columns = [
        "model",
        "rank",
        "share_first",
        "share_first_up",
        "share_first_down",
        "share_tier1",
        "deflated_sharpe",
        *(key for key in table[0] if key.startswith("first_") and key != "first_in"),
    ]
    lines = ["", "## Robust across windows", "", robustness_note(result), ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        cells = [_markdown(row.get(column)) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def robustness_note(result: Robustness) -> str:
    """What the robustness table measures, in a sentence or three."""
    options = result.options
    return (
        f"Over {result.windows} rolling windows of {options.window} sessions ("
        f"{result.windows_up} with the benchmark up, {result.windows_down} down): how often each "
        f"model ranked first (`_up`, `_down`: by regime), and how often it sat in tier 1 of "
        f"{result.tier_windows} windows one every {options.tier_step or options.window} "
        "sessions; `first_N` is its rank (tier) over the "
        f"first N sessions. The deflated Sharpe is the probability that its true Sharpe beats "
        f"the best of {result.trials} unskilled trials (annualised "
        f"{result.expected_max_sharpe:.2f}); models with fewer than {options.min_sessions} "
        "sessions are listed, not ranked."
    )


def robustness_section(curves: RunCurves, options: RobustnessOptions | None = None) -> str:
    """The report's robustness section as markdown ("" when the run is shorter than a window)."""
    lines = robustness_markdown(robustness(curves, options))
    return "\n".join(lines) + "\n" if lines else ""
