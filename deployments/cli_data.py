"""`aitrader data`: import, download, synthesize and inspect market data and news."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from configs.loader import load_config
from deployments.cli_options import (
    ConfigOption,
    FormatOption,
    day_option,
    names_given,
    store_session,
)
from deployments.output import OutputFormat, console, one_line_errors, render

if TYPE_CHECKING:
    from configs.markets import Market
    from market_data.alphavantage import SyncReport

data_app = typer.Typer(help="Market data: import, download, synthesize, inspect.")


@data_app.command("import")
@one_line_errors
def data_import(
    path: Annotated[
        Path,
        typer.Argument(
            help="A daily_prices_*.json, merged.jsonl, raw price CSV, or a folder of them "
            "(nasdaq100_daily, nasdaq100_hourly, sse50_daily, sse50_hourly, crypto_daily)."
        ),
    ],
) -> None:
    """Import AI-Trader price files (idempotent: stored bars are kept, open-only ones completed)."""
    from market_data.aitrader_files import import_prices

    with store_session() as session:
        report = import_prices(session, path)
        session.commit()
    console().print(
        f"read {report.bars_read:,} bars of {len(report.symbols)} symbols from "
        f"{report.files_read} file(s); inserted {report.bars_inserted:,} new"
    )
    for skipped in report.files_skipped:
        console().print(f"skipped {skipped}: it holds no prices", highlight=False)


@data_app.command("synth")
@one_line_errors
def data_synth(
    config: ConfigOption = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the config's).")] = None,
    start: Annotated[date | None, day_option(help="First day (default: the config's).")] = None,
    end: Annotated[date | None, day_option(help="Last day (default: the config's).")] = None,
) -> None:
    """Write a seeded synthetic market for the config's universe and benchmark (no network)."""
    from market_data.synthetic import synthesize_into

    cfg = load_config(config)
    universe = cfg.resolve_universe()
    first = start or cfg.market.start
    last = end or cfg.market.end
    if last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    with store_session() as session:
        inserted = synthesize_into(
            session,
            universe.symbols,
            first,
            last,
            seed=seed if seed is not None else cfg.market.seed,
            benchmark=universe.benchmark,
        )
        session.commit()
    console().print(
        f"market {cfg.market.store_market}: {len(universe.symbols)} symbols "
        f"+ {universe.benchmark}, "
        f"{first} to {last}: inserted {inserted:,} bars"
    )


class FetchKind(StrEnum):
    """What `data fetch` downloads from Alpha Vantage."""

    stocks = "stocks"  # TIME_SERIES_DAILY
    crypto = "crypto"  # DIGITAL_CURRENCY_DAILY in USD, every UTC day
    intraday = "intraday"  # TIME_SERIES_INTRADAY, 60-minute bars of regular US hours


def _fetch_kind(market: Market) -> FetchKind:
    """What the config's market trades on, when `--kind` is not given."""
    if market.calendar == "XSHG":
        raise ValueError(
            f"market {market.name!r}: Alpha Vantage is not this project's source of A-share "
            "prices; import the AI-Trader files (`aitrader data import`), or pass --kind"
        )
    if market.calendar == "ALWAYS":
        return FetchKind.crypto
    return FetchKind.intraday if market.hourly else FetchKind.stocks


@data_app.command("fetch")
@one_line_errors
def data_fetch(
    config: ConfigOption = None,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol",
            "--symbols",
            metavar="SYMBOL",
            help="A symbol to fetch; repeatable, commas also separate (default: the universe).",
        ),
    ] = None,
    kind: Annotated[
        FetchKind | None,
        typer.Option(
            help="stocks (daily), crypto (daily, USD, weekends included) or intraday (60min) "
            "(default: what the config's market trades on)."
        ),
    ] = None,
    until: Annotated[date | None, day_option(help="Last day wanted (default: today).")] = None,
    start: Annotated[
        date | None,
        day_option(
            help="--kind intraday: first day wanted when none is stored (default: an hourly "
            "config's start_date, else 30 days before --until)."
        ),
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Alpha Vantage endpoint.")] = None,
) -> None:
    """Download missing bars from Alpha Vantage (key in ALPHAVANTAGE_API_KEY)."""
    from market_data import alphavantage

    cfg = load_config(config)
    kind = kind or _fetch_kind(cfg.market.definition)
    if start is not None and kind is not FetchKind.intraday:
        raise ValueError("--start is for --kind intraday only (daily downloads fill the gap)")
    universe = cfg.resolve_universe()
    named = names_given(symbols, "--symbol")
    # The crypto benchmark (CD5) is computed from the coins; Alpha Vantage does not quote it.
    default = [*universe.symbols] + ([] if kind is FetchKind.crypto else [universe.benchmark])
    wanted = [s.upper() for s in named] if named else default
    last = until or date.today()
    client = alphavantage.AlphaVantageClient.from_env(base_url=base_url)
    with client, store_session() as session:
        if kind is FetchKind.crypto:
            report = alphavantage.sync_crypto_daily(session, client, wanted, until=last)
        elif kind is FetchKind.intraday:
            # An hourly config's start_date is where its backtest needs bars from.
            first = start or (cfg.start_date if cfg.market.definition.hourly else None)
            report = alphavantage.sync_intraday(session, client, wanted, last, start=first)
        else:
            report = alphavantage.sync_daily(session, client, wanted, until=last)
    _print_sync(report, kind)


def _print_sync(report: SyncReport, kind: FetchKind) -> None:
    """One line of what a fetch did, one per failed symbol; a stop is the command's error."""
    console().print(
        f"{kind.value}: fetched {len(report.inserted)} symbol(s) up to {report.target_day}, "
        f"inserted {report.total_inserted:,} bars; {len(report.skipped)} already up to date"
    )
    for symbol, problem in report.failed.items():
        console().print(f"failed {symbol}: {problem}", highlight=False)
    if report.stopped_reason:
        raise ValueError(f"stopped early: {report.stopped_reason}")


@data_app.command("news")
@one_line_errors
def data_news(
    tickers: Annotated[
        list[str] | None,
        typer.Option(
            "--ticker",
            "--tickers",
            metavar="TICKER",
            help="Only news about this ticker; repeatable, commas also separate (default: all).",
        ),
    ] = None,
    until: Annotated[
        date | None, day_option(help="News published before this day's 09:30 ET open.")
    ] = None,
    days: Annotated[int, typer.Option(help="How many days back from --until.")] = 30,
    limit: Annotated[int, typer.Option(help="At most this many items (up to 1000).")] = 50,
    base_url: Annotated[str | None, typer.Option(help="Alpha Vantage endpoint.")] = None,
) -> None:
    """Download news from Alpha Vantage into the store (key in ALPHAVANTAGE_API_KEY)."""
    from agent_tools.context import session_cutoff
    from market_data.alphavantage import AlphaVantageClient
    from market_data.news_feed import fetch_news

    cutoff = session_cutoff(datetime.combine(until or date.today(), time.min))
    named = names_given(tickers, "--ticker")
    wanted = [t.upper() for t in named] if named is not None else None
    with AlphaVantageClient.from_env(base_url=base_url) as client, store_session() as session:
        added = fetch_news(session, client, wanted, cutoff, days=days, limit=limit)
        session.commit()
    console().print(f"stored {added} new news item(s) published up to {cutoff:%Y-%m-%d %H:%M} UTC")


@data_app.command("import-news")
@one_line_errors
def data_import_news(
    path: Annotated[Path, typer.Argument(help="A saved Alpha Vantage NEWS_SENTIMENT answer.")],
) -> None:
    """Store the items of a saved NEWS_SENTIMENT JSON file (idempotent: stored URLs are skipped)."""
    from market_data.news_feed import import_news_file

    with store_session() as session:
        read, added = import_news_file(session, path)
        session.commit()
    console().print(f"read {read} news item(s); stored {added} new")


@data_app.command("coverage")
@one_line_errors
def data_coverage(
    interval: Annotated[str | None, typer.Option(help="1d or 60min (default: both).")] = None,
    market: Annotated[
        str | None, typer.Option(help="real or synthetic-<seed> (default: all).")
    ] = None,
    summary: Annotated[bool, typer.Option(help="One line per market and interval.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """What the price store holds: first and last day and bar count per symbol."""
    from models.prices import INTERVALS, coverage

    if interval is not None and interval not in INTERVALS:
        # An unknown interval would just show no rows, as if the store held none.
        raise ValueError(f"--interval {interval!r} is not one of {', '.join(INTERVALS)}")
    with store_session(announce=fmt is OutputFormat.table) as session:
        rows = coverage(session, interval, market)
    if summary:
        groups: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            groups.setdefault((row.market, row.interval), []).append(row)
        summary_rows = [
            {
                "market": m,
                "interval": i,
                "symbols": len(group),
                "first": min(r.first for r in group),
                "last": max(r.last for r in group),
                "bars": sum(r.bars for r in group),
            }
            for (m, i), group in groups.items()
        ]
        render(summary_rows, fmt, title="price coverage")
    else:
        render([row.model_dump() for row in rows], fmt, title="price coverage")
