"""A seeded synthetic market on XNYS trading days, for runs that need no network.

Each stock's daily log return is `alpha + beta * market + noise`. The market factor depends only
on the seed and the dates, and each stock's parameters and noise only on the seed and its name,
so adding a symbol leaves the others unchanged. The benchmark tracks the market factor closely.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime

import numpy as np
from sqlmodel import Session

from configs.loader import default_benchmark
from market_data.calendar import trading_days
from models.prices import DAILY, INSERT_CHUNK, Bar, insert_bars

SOURCE = "synthetic"
# Stream tags keep the market, stock and benchmark random streams apart for one seed.
_MARKET_STREAM, _STOCK_STREAM, _BENCHMARK_STREAM = 0, 1, 2
# It stands in for the default market (XNYS, daily), so it is measured against its benchmark.
BENCHMARK = default_benchmark()
_MARKET_DRIFT, _MARKET_VOL = 0.0004, 0.011
_MIN_PRICE = 0.01


def synthetic_market(seed: int) -> str:
    """The market name a seed's bars are stored under, apart from real prices and other seeds."""
    return f"synthetic-{seed}"


def _rng(seed: int, *stream: int) -> np.random.Generator:
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=stream))


def _market_returns(seed: int, days: int) -> np.ndarray:
    return _MARKET_DRIFT + _MARKET_VOL * _rng(seed, _MARKET_STREAM).standard_normal(days)


def _daily_draws(rng: np.random.Generator, days: int) -> np.ndarray:
    # One row per day, drawn in order, so a later `end` leaves the earlier bars unchanged.
    return rng.standard_normal((days, 5))


def _series(
    symbol: str,
    days: list[date],
    draws: np.ndarray,
    returns: np.ndarray,
    start_price: float,
    idio_vol: float,
    base_volume: float,
) -> list[Bar]:
    """OHLCV bars from close-to-close log returns and four standard normal draws per day."""
    log_close = np.log(start_price) + np.cumsum(returns)
    previous_close = np.concatenate(([np.log(start_price)], log_close[:-1]))
    gap = 0.3 * returns + 0.25 * idio_vol * draws[:, 0]
    opens = np.exp(previous_close + gap)
    closes = np.exp(log_close)
    wick = 0.5 * idio_vol + 0.3 * np.abs(returns)
    highs = np.maximum(opens, closes) * np.exp(wick * np.abs(draws[:, 1]))
    lows = np.minimum(opens, closes) * np.exp(-wick * np.abs(draws[:, 2]))
    volumes = base_volume * np.exp(0.3 * draws[:, 3] + 20 * np.abs(returns))

    bars = []
    for i, day in enumerate(days):
        # Round to cents first, then widen high/low so rounding never breaks their order.
        open_ = max(round(float(opens[i]), 2), _MIN_PRICE)
        close = max(round(float(closes[i]), 2), _MIN_PRICE)
        high = max(round(float(highs[i]), 2), open_, close)
        low = min(max(round(float(lows[i]), 2), _MIN_PRICE), open_, close)
        bars.append(
            Bar(
                symbol=symbol,
                interval=DAILY,
                ts=datetime(day.year, day.month, day.day),
                open=open_,
                high=high,
                low=low,
                close=close,
                volume=float(round(volumes[i])),
                source=SOURCE,
            )
        )
    return bars


def _stock(symbol: str, days: list[date], market: np.ndarray, seed: int) -> list[Bar]:
    # crc32 is stable across processes, unlike hash().
    rng = _rng(seed, _STOCK_STREAM, zlib.crc32(symbol.encode()))
    beta = rng.uniform(0.6, 1.6)
    alpha = rng.normal(0.0, 0.0003)
    idio_vol = rng.uniform(0.008, 0.025)
    start_price = float(np.exp(rng.uniform(np.log(20), np.log(600))))
    base_volume = float(np.exp(rng.uniform(np.log(1e6), np.log(5e7))))
    draws = _daily_draws(rng, len(days))
    returns = alpha + beta * market + idio_vol * draws[:, 0]
    return _series(symbol, days, draws[:, 1:], returns, start_price, idio_vol, base_volume)


def _benchmark(symbol: str, days: list[date], market: np.ndarray, seed: int) -> list[Bar]:
    rng = _rng(seed, _BENCHMARK_STREAM)
    idio_vol = 0.002
    start_price = float(rng.uniform(350, 550))
    draws = _daily_draws(rng, len(days))
    returns = market + idio_vol * draws[:, 0]
    return _series(symbol, days, draws[:, 1:], returns, start_price, idio_vol, 4e7)


def synthesize(
    symbols: Iterable[str],
    start: date,
    end: date,
    seed: int,
    benchmark: str | None = BENCHMARK,
) -> list[Bar]:
    """Daily bars for `symbols` (and `benchmark`) on every XNYS session from `start` to `end`.

    The same arguments always give the same bars.
    """
    return [bar for bars in _bars_by_symbol(symbols, start, end, seed, benchmark) for bar in bars]


def _bars_by_symbol(
    symbols: Iterable[str], start: date, end: date, seed: int, benchmark: str | None
) -> Iterator[list[Bar]]:
    days = trading_days(start, end)
    if not days:
        return
    market = _market_returns(seed, len(days))
    benchmark = benchmark.strip().upper() if benchmark else None
    name = synthetic_market(seed)
    for symbol in dict.fromkeys(s.strip().upper() for s in symbols if s.strip()):
        if symbol != benchmark:
            yield _named(_stock(symbol, days, market, seed), name)
    if benchmark:
        yield _named(_benchmark(benchmark, days, market, seed), name)


def _named(bars: list[Bar], market: str) -> list[Bar]:
    for bar in bars:
        bar.market = market
    return bars


def synthesize_into(
    session: Session,
    symbols: Iterable[str],
    start: date,
    end: date,
    seed: int,
    benchmark: str | None = BENCHMARK,
) -> int:
    """Insert the synthetic bars the store lacks; return how many. The caller commits."""
    # A thousand bars at a time: the whole market's bars at once held 80 MiB more.
    count, batch = 0, []
    for bars in _bars_by_symbol(symbols, start, end, seed, benchmark):
        batch += bars
        if len(batch) >= INSERT_CHUNK:
            count, batch = count + insert_bars(session, batch), []
    return count + insert_bars(session, batch)
