"""The leaderboard: every model of a run ranked over a window beside the benchmark, and how sure
the ranking is: calibrated intervals, significance tiers, repeated trials, LLM cost, and what the
fills paid in trading costs.

Returns are net of trading costs. Each row also says what the model's fills paid, its return had
they been free, and its return, rank and tier had they paid 0, 1, 2 or 3 times as much (the same
fills assumed), so a reader sees which rankings survive realistic and pessimistic costs.

A model run in several trials is ranked on its mean curve (the value averaged across trials);
its row also lists each trial's return and an interval across trials. Tiers come from paired
tests of the models' daily returns (see `analysis.statistics`): models that cannot be told apart
from the best share tier 1, and so on down.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlmodel import Session

from analysis.contamination import (
    ModelCutoff,
    SessionCounts,
    memory_premium,
    ranked_sessions,
)
from analysis.curves import ModelCurve, RunCurves, run_curves
from analysis.metrics import PerformanceSummary, summarize
from analysis.statistics import (
    Interval,
    ModelStatistics,
    PairTest,
    ranking_statistics,
    scenario_pairwise_tests,
    tiers,
    trial_interval,
)
from models.tables import Track

# The cost scenarios every leaderboard reports: free fills, the market's costs, twice, thrice.
COST_MULTIPLIERS = (0.0, 1.0, 2.0, 3.0)


class RankingOptions(BaseModel):
    """How sure the statistics are asked to be, and how they are drawn (seeded: reproducible)."""

    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    resamples: int = Field(2000, ge=100, le=100_000)
    seed: int = 0
    risk_free_rate: float = 0.0
    cost_multiplier: float = Field(
        1.0, ge=0.0, le=10.0, description="rank as if every fill paid this many times its costs"
    )
    sessions: Literal["auto", "all", "clean", "contaminated"] = Field(
        "auto",
        description="the sessions ranked, by each model's knowledge cutoff; auto: clean ones once "
        "some model has sessions on both sides of its cutoff, else all",
    )


class Trials(BaseModel):
    """A model's repeated trials: each one's return and final value, and an interval across them."""

    count: int
    returns: list[float]
    final_values: list[float]
    return_interval: Interval


class Cost(BaseModel):
    """What a model's LLM calls cost over the window (built-in strategies cost nothing)."""

    model_days: int
    tokens: int
    cost_usd: float
    tokens_per_day: float
    usd_per_day: float
    return_per_usd: float | None  # the cumulative return per dollar spent; None if nothing spent
    return_after_llm_cost: float  # the cumulative return had the book paid for the LLM calls


class CostsPaid(BaseModel):
    """What a model's fills paid beyond their value over the window (mean over trials)."""

    costs_paid: float  # at the ranking's cost multiplier
    gross_return: float  # the cumulative return had every fill been free


class CostScenario(BaseModel):
    """A model's standing had every fill paid `multiplier` times its costs."""

    multiplier: float
    cumulative_return: float
    rank: int
    tier: int

    @property
    def label(self) -> str:
        """`0x`, `1x`, `2x`, `3x`: the suffix of its columns (`return_at_2x`)."""
        return scenario_label(self.multiplier)


def scenario_label(multiplier: float) -> str:
    return f"{multiplier:g}x"


class LeaderboardRow(BaseModel):
    """One model's (or the benchmark's) performance over a run's window, with its uncertainty."""

    rank: int | None
    model: str
    is_benchmark: bool = False
    tier: int | None = None
    performance: PerformanceSummary
    intervals: dict[str, Interval] = Field(default_factory=dict)
    psr: float | None = None  # probability that the true Sharpe ratio is above 0
    psr_vs_benchmark: float | None = None  # ... above the benchmark's Sharpe ratio
    trials: Trials | None = None
    cost: Cost | None = None
    costs_paid: CostsPaid | None = None
    cost_scenarios: list[CostScenario] = Field(default_factory=list)
    # The sessions the ranking counts: `all`, or only those decided `live` (before their
    # session closed) or as a `backtest`; and how many of the model's were live.
    track: str = "all"
    live_sessions: int | None = None
    # Knowledge cutoffs (`analysis.contamination`): the sessions ranked (`all`, `clean` or
    # `contaminated`), the model's cutoff and its source, its sessions on each side of it
    # (None when the cutoff is unknown) and its memory premium.
    sessions: str = "all"
    knowledge_cutoff: date | None = None
    cutoff_source: str | None = None
    clean_sessions: int | None = None
    contaminated_sessions: int | None = None
    memory_premium: Interval | None = None


class Ranking(BaseModel):
    """A run's leaderboard and the pairwise tests its tiers come from."""

    rows: list[LeaderboardRow]
    pairs: list[PairTest]
    options: RankingOptions
    sessions: str = "all"  # the sessions ranked (`options.sessions`, `auto` resolved)
    left_out: dict[str, str] = Field(default_factory=dict)  # model: why it is not ranked


def rank_run(
    session: Session,
    run_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    model: str | None = None,
    options: RankingOptions | None = None,
    track: Track | None = None,
) -> Ranking:
    """Every model of a run ranked by cumulative return (net of trading costs at the options'
    multiplier), with intervals, tiers, LLM and trading costs, and the cost scenarios; over the
    sessions of one `track` if given."""
    ranking = rank_curves(run_curves(session, run_id, start, end, model, track), options)
    for row in ranking.rows:
        row.track = track or "all"
    return ranking


def rank_curves(charged: RunCurves, options: RankingOptions | None = None) -> Ranking:
    """`rank_run` of curves already read (a caller that also draws them reads them once)."""
    options = options or RankingOptions()
    every_session = charged.at_cost_multiplier(options.cost_multiplier)
    charged, sessions, cutoffs, counts = ranked_sessions(charged, options.sessions)
    scenarios = _cost_scenarios(charged, options.cost_multiplier)
    curves = scenarios[options.cost_multiplier]
    rows = [_model_row(curves, name, trials, options) for name, trials in curves.models.items()]
    rows.sort(key=lambda r: r.performance.cumulative_return, reverse=True)
    for rank, row in enumerate(rows, start=1):
        row.rank = rank
    ranked = [row.model for row in rows]
    pair_sets = scenario_pairwise_tests(
        [{name: c.mean_values(name) for name in ranked} for c in scenarios.values()],
        confidence=options.confidence,
    )
    stats = ranking_statistics(
        {name: curves.mean_values(name) for name in ranked},
        ranked,
        curves.benchmark if len(curves.benchmark) else None,
        confidence=options.confidence,
        resamples=options.resamples,
        seed=options.seed,
        risk_free_rate=options.risk_free_rate,
        periods_per_year=curves.periods_per_year,
        pairs=pair_sets[0],
    )
    for row in rows:
        _add_statistics(row, stats.models[row.model], stats.tiers[row.model])
    tested = zip(scenarios.items(), pair_sets, strict=True)
    _add_cost_scenarios(rows, {m: (c, pairs) for (m, c), pairs in tested})
    _add_costs_paid(rows, charged, options.cost_multiplier)
    for row in rows:
        _add_cutoff(row, every_session, cutoffs[row.model], counts[row.model], options)
    if len(curves.benchmark):
        rows.append(_benchmark_row(curves, options))
    for row in rows:
        row.sessions = sessions
    left_out = {name: _why_left_out(cutoffs[name], sessions) for name in every_session.models}
    left_out = {name: why for name, why in left_out.items() if name not in curves.models}
    return Ranking(
        rows=rows, pairs=stats.pairs, options=options, sessions=sessions, left_out=left_out
    )


def sessions_note(ranking: Ranking) -> str:
    """One line on knowledge cutoffs: which sessions are ranked, and which models are not or
    cannot be told clean ("" when no model has a cutoff to speak of)."""
    rows = [row for row in ranking.rows if not row.is_benchmark]
    unknown = [row.model for row in rows if row.cutoff_source == "unknown"]
    if ranking.sessions != "all":
        where = "after" if ranking.sessions == "clean" else "on or before"
        line = (
            f"ranked on {ranking.sessions} sessions only ({where} each model's knowledge cutoff; "
            "--sessions all counts every one)"
        )
        if ranking.left_out:
            left_out = ranking.left_out.items()
            line += "; not ranked: " + "; ".join(f"{m} ({why})" for m, why in left_out)
    elif remembered := [row.model for row in rows if row.contaminated_sessions]:
        line = (
            "every session ranked, some on or before the knowledge cutoff of "
            f"{', '.join(remembered)} (--sessions clean ranks without them)"
        )
    elif any(row.knowledge_cutoff for row in rows):
        line = "every session is after each model's knowledge cutoff (clean)"
    else:
        line = ""
    if unknown and ranking.sessions == "all":
        line += ("; " if line else "") + f"knowledge cutoff unknown: {', '.join(unknown)}"
    return line


def leaderboard(
    session: Session,
    run_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    risk_free_rate: float = 0.0,
    model: str | None = None,
) -> list[LeaderboardRow]:
    """The rows of `rank_run` with the default statistics options."""
    options = RankingOptions(risk_free_rate=risk_free_rate)
    return rank_run(session, run_id, start, end, model, options).rows


def _model_row(
    curves: RunCurves, name: str, trials: list[ModelCurve], options: RankingOptions
) -> LeaderboardRow:
    values = curves.mean_values(name)
    window = curves.benchmark.loc[values.index[0] : values.index[-1]]
    notional = sum(c.trade_notional for c in trials) / len(trials)
    performance = summarize(
        values,
        benchmark=window if len(window) else None,
        trades=round(sum(c.trades for c in trials) / len(trials)),
        trade_notional=notional.dropna(),
        risk_free_rate=options.risk_free_rate,
        periods_per_year=curves.periods_per_year,
    )
    return LeaderboardRow(
        rank=None,
        model=name,
        performance=performance,
        trials=_trials(trials, options) if len(trials) > 1 else None,
        cost=_cost(trials, performance),
        live_sessions=max(c.live_sessions for c in trials),
    )


def _trials(trials: list[ModelCurve], options: RankingOptions) -> Trials:
    returns = [float(c.values.iloc[-1] / c.values.iloc[0] - 1) for c in trials]
    return Trials(
        count=len(trials),
        returns=returns,
        final_values=[float(c.values.iloc[-1]) for c in trials],
        return_interval=trial_interval(returns, options.confidence),
    )


def _cost(trials: list[ModelCurve], performance: PerformanceSummary) -> Cost:
    """Per model-day figures over every trial; return figures for the mean trial."""
    days = sum(c.model_days for c in trials)
    tokens = sum(c.tokens for c in trials)
    usd = sum(c.cost_usd for c in trials)
    per_trial_usd = usd / len(trials)
    gained = performance.cumulative_return
    return Cost(
        model_days=days,
        tokens=tokens,
        cost_usd=usd,
        tokens_per_day=tokens / days if days else 0.0,
        usd_per_day=usd / days if days else 0.0,
        return_per_usd=gained / per_trial_usd if per_trial_usd > 0 else None,
        return_after_llm_cost=(performance.end_value - per_trial_usd) / performance.start_value - 1,
    )


def _cost_scenarios(charged: RunCurves, multiplier: float) -> dict[float, RunCurves]:
    """The curves at `multiplier` first, then at each of COST_MULTIPLIERS (only the first when
    no fill paid anything: every scenario would be the same)."""
    free = all(float(c.trading_costs.sum()) == 0 for c in charged.curves)
    multipliers = [multiplier] if free else [multiplier, *COST_MULTIPLIERS]
    return {m: charged.at_cost_multiplier(m) for m in dict.fromkeys(multipliers)}


def _add_costs_paid(rows: list[LeaderboardRow], charged: RunCurves, multiplier: float) -> None:
    """Each row's costs paid at `multiplier`, and its return had its fills been free (its 0x
    scenario, which `_add_cost_scenarios` has added)."""
    for row in rows:
        trials = charged.models[row.model]
        paid = sum(float(c.trading_costs.sum()) for c in trials) / len(trials)
        (free,) = [s for s in row.cost_scenarios if s.multiplier == 0.0]
        row.costs_paid = CostsPaid(
            costs_paid=paid * multiplier, gross_return=free.cumulative_return
        )


def _add_cost_scenarios(
    rows: list[LeaderboardRow], tested: dict[float, tuple[RunCurves, list[PairTest]]]
) -> None:
    """Each row's return, rank and tier at every cost multiplier (free fills: the ranking's)."""
    for multiplier in COST_MULTIPLIERS:
        curves, pairs = tested.get(multiplier) or next(iter(tested.values()))
        values = {row.model: curves.mean_values(row.model) for row in rows}
        returns = {name: float(v.iloc[-1] / v.iloc[0] - 1) for name, v in values.items()}
        ranked = sorted(returns, key=lambda name: returns[name], reverse=True)
        tier_of = tiers(ranked, pairs)
        for row in rows:
            row.cost_scenarios.append(
                CostScenario(
                    multiplier=multiplier,
                    cumulative_return=returns[row.model],
                    rank=ranked.index(row.model) + 1,
                    tier=tier_of[row.model],
                )
            )


def _add_statistics(row: LeaderboardRow, stats: ModelStatistics, tier: int) -> None:
    row.intervals = stats.intervals
    row.psr = stats.psr
    row.psr_vs_benchmark = stats.psr_vs_benchmark
    row.tier = tier


def _add_cutoff(
    row: LeaderboardRow,
    every_session: RunCurves,
    cutoff: ModelCutoff,
    counts: SessionCounts,
    options: RankingOptions,
) -> None:
    """A row's cutoff, its sessions on each side, and its memory premium over every session."""
    row.knowledge_cutoff = cutoff.knowledge_cutoff
    row.cutoff_source = cutoff.source
    row.clean_sessions = counts.clean
    row.contaminated_sessions = counts.contaminated
    row.memory_premium = memory_premium(
        every_session, row.model, cutoff, confidence=options.confidence
    )


def _why_left_out(cutoff: ModelCutoff, sessions: str) -> str:
    """Why a model has no row when only `sessions` sessions are ranked."""
    if cutoff.source == "unknown":
        return "knowledge cutoff unknown: state knowledge_cutoff in its config"
    return f"no {sessions} sessions"


def _benchmark_row(curves: RunCurves, options: RankingOptions) -> LeaderboardRow:
    bench = curves.benchmark
    performance = summarize(
        bench,
        benchmark=bench,
        risk_free_rate=options.risk_free_rate,
        periods_per_year=curves.periods_per_year,
    )
    return LeaderboardRow(
        rank=None, model=curves.run.benchmark, is_benchmark=True, performance=performance
    )


def leaderboard_row(row: LeaderboardRow) -> dict[str, Any]:
    """A leaderboard row as `aitrader results --format json` and the site show it: fractions
    (not percentages), intervals as `[low, high]`, and per-trial and cost figures where the run
    has them."""
    p = row.performance
    ci = row.intervals
    fields: dict[str, Any] = {
        "rank": row.rank,
        "model": row.model,
        "tier": row.tier,
        "start": p.start_date,
        "end": p.end_date,
        "final_value": p.end_value,
        "return": p.cumulative_return,
        "return_ci": _bounds(ci.get("cumulative_return")),
        "annualized": p.annualized_return,
        "annualized_ci": _bounds(ci.get("annualized_return")),
        "volatility": p.annualized_volatility,
        "sharpe": p.sharpe_ratio,
        "sharpe_ci": _bounds(ci.get("sharpe_ratio")),
        "psr": row.psr,
        "psr_vs_benchmark": row.psr_vs_benchmark,
        "sortino": p.sortino_ratio,
        "sortino_ci": _bounds(ci.get("sortino_ratio")),
        "max_drawdown": p.max_drawdown,
        "max_drawdown_ci": _bounds(ci.get("max_drawdown")),
        "dd_peak": p.max_drawdown_peak,
        "dd_trough": p.max_drawdown_trough,
        "calmar": p.calmar_ratio,
        "win_rate": p.win_rate,
        "trades": p.trades,
        "turnover": p.turnover,
        "alpha": p.alpha,
        "beta": p.beta,
        "info_ratio": p.information_ratio,
        "benchmark_return": p.benchmark_cumulative_return,
        "excess_return_ci": _bounds(ci.get("excess_return")),
        "track": row.track,
        "live_sessions": row.live_sessions,
        "sessions": row.sessions,
        "knowledge_cutoff": row.knowledge_cutoff,
        "cutoff_source": row.cutoff_source,
        "clean_sessions": row.clean_sessions,
        "contaminated_sessions": row.contaminated_sessions,
        "memory_premium": row.memory_premium.estimate if row.memory_premium else None,
        "memory_premium_ci": _bounds(row.memory_premium) if _bounded(row.memory_premium) else None,
    }
    return fields | _where_known(row)


def _where_known(row: LeaderboardRow) -> dict[str, Any]:
    """A row's per-trial, LLM cost, book and trading cost figures, where the run has them."""
    fields: dict[str, Any] = {}
    if row.trials is not None:
        fields["trials"] = row.trials.count
        fields["trial_returns"] = row.trials.returns
        fields["trial_return_ci"] = _bounds(row.trials.return_interval)
    if row.cost is not None:
        fields.update(
            tokens_per_day=row.cost.tokens_per_day,
            usd_per_day=row.cost.usd_per_day,
            cost_usd=row.cost.cost_usd,
            return_per_usd=row.cost.return_per_usd,
            return_after_llm_cost=row.cost.return_after_llm_cost,
        )
    if row.costs_paid is not None:
        fields.update(
            gross_return=row.costs_paid.gross_return, costs_paid=row.costs_paid.costs_paid
        )
    for scenario in row.cost_scenarios:
        fields[f"return_at_{scenario.label}"] = scenario.cumulative_return
        fields[f"tier_at_{scenario.label}"] = scenario.tier
    return fields


def _bounded(interval: Interval | None) -> bool:
    return interval is not None and interval.lower is not None and interval.upper is not None


def _bounds(interval: Interval | None) -> list[float | None] | None:
    return None if interval is None else [interval.lower, interval.upper]


def leaderboard_rows(board: Sequence[LeaderboardRow]) -> list[dict[str, Any]]:
    return [leaderboard_row(row) for row in board]
