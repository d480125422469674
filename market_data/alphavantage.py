"""Alpha Vantage over HTTP: daily bars and news, and a sync that downloads only missing days.

Alpha Vantage answers most errors with HTTP 200 and a JSON body holding `Note`, `Information` or
`Error Message`; every failure becomes an `AlphaVantageError` whose message never holds the key.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlmodel import Session

from market_data.calendar import (
    ALWAYS,
    calendar,
    last_closed_trading_day,
    trading_day_on_or_before,
    trading_days,
)
from models.errors import AlphaVantageError, AlphaVantagePremiumOnly, AlphaVantageRateLimited
from models.prices import DAILY, HOURLY, REAL_MARKET, Bar, insert_bars
from models.tables import PriceBar

DEFAULT_BASE_URL = "https://www.alphavantage.co/query"
API_KEY_VARIABLE = "ALPHAVANTAGE_API_KEY"
BASE_URL_VARIABLE = "ALPHAVANTAGE_BASE_URL"
SOURCE = "alphavantage"
# `compact` returns the latest 100 bars; keep a margin for days Alpha Vantage has not published yet.
COMPACT_MAX_GAP = 95

OutputSize = Literal["compact", "full"]

_SERIES_INTERVALS = {
    "Time Series (Daily)": DAILY,
    "Time Series (60min)": HOURLY,
    "Time Series (Digital Currency Daily)": DAILY,
}
# The bar keys' layouts; fromisoformat then checks the ranges (strptime is slower than the rest).
_TS_PATTERNS = {
    DAILY: re.compile(r"\d{4}-\d{2}-\d{2}"),
    HOURLY: re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"),
}
# The raw Alpha Vantage names, AI-Trader's renamed ones (merged.jsonl), and the older
# DIGITAL_CURRENCY_DAILY ones, which quoted each price in the market's currency and in USD.
_FIELDS = {
    "open": ("1. open", "1. buy price", "1a. open (USD)", "1b. open (USD)"),
    "high": ("2. high", "2a. high (USD)", "2b. high (USD)"),
    "low": ("3. low", "3a. low (USD)", "3b. low (USD)"),
    "close": ("4. close", "4. sell price", "4a. close (USD)", "4b. close (USD)"),
    "volume": ("5. volume",),
}
# `Meta Data` names the symbol `2. Symbol`, or `2. Digital Currency Code` for crypto.
_META_SYMBOL_KEYS = ("2. Symbol", "2. Digital Currency Code")
# Digits in groups of three, as in "1,433.3300": the one comma a number may hold.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_RATE_LIMIT_WORDS = ("rate limit", "call frequency", "requests per", "calls per", "higher api call")
_PARAMS_IN_ERRORS = ("function", "symbol", "month")  # what an error says was asked
_APIKEY_IN_TEXT = re.compile(r"(apikey=)[^&\s\"']+", re.IGNORECASE)


class _RedactApiKeys(logging.Filter):
    """httpx logs every request URL at INFO, and Alpha Vantage wants the key in the URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _APIKEY_IN_TEXT.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactApiKeys) for f in logger.filters):
        logger.addFilter(_RedactApiKeys())


# --- parsing ---------------------------------------------------------------------------------


def parse_number(value: Any, what: str, *, allow_zero: bool = False) -> float:
    """`value` as a finite number >= 0 (> 0 unless `allow_zero`); ValueError naming `what`.

    Thousands separators are read ("1,433.3300"); a decimal comma or a lone "1,433" is refused.
    """
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and "," in text:
        # "1,433" is 1433 with a thousands separator or 1.433 with a decimal comma: refused.
        if not _THOUSANDS.fullmatch(text) or (text.count(",") == 1 and "." not in text):
            raise ValueError(f"{what} is not a number (a misplaced or ambiguous comma): {value!r}")
        text = text.replace(",", "")
    try:
        number = float(text) if not isinstance(text, bool) else math.nan
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        reason = " (negative)" if number < 0 else ""
        raise ValueError(f"{what} is out of range{reason}: {value!r}")
    return number


def _field(values: Mapping[str, Any], name: str, ts: str) -> float | None:
    for key in _FIELDS[name]:
        if key in values:
            zero_ok = name in ("high", "low", "volume")
            number = parse_number(values[key], f"bar {ts}: {key!r}", allow_zero=zero_ok)
            # A high or low of 0 is "not recorded" (the original's CD5 index file), not a price.
            return None if number == 0 and name in ("high", "low") else number
    return None


def _meta_symbol(payload: dict[str, Any]) -> str:
    meta = payload.get("Meta Data")
    for key in _META_SYMBOL_KEYS:
        symbol = meta.get(key) if isinstance(meta, dict) else None
        if isinstance(symbol, str) and symbol.strip():
            return symbol
    raise ValueError("no symbol: 'Meta Data' lacks '2. Symbol'")


def error_text(payload: Any) -> str | None:
    """Alpha Vantage's own error text if `payload` is an error answer, else None."""
    if isinstance(payload, dict):
        for key in ("Error Message", "Note", "Information"):
            if key in payload:
                return f"{key}: {payload[key]}"
    return None


def parse_time_series(payload: Any, symbol: str | None = None, source: str = SOURCE) -> list[Bar]:
    """Bars of an Alpha Vantage daily or 60min time-series body; ValueError says what is wrong.

    The symbol comes from `Meta Data` unless given; a bar needs only its open.
    """
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    series_keys = [key for key in payload if key.startswith("Time Series")]
    if not series_keys:
        problem = error_text(payload) or f"keys are {sorted(payload)}"
        raise ValueError(f"no 'Time Series (Daily)' or 'Time Series (60min)' ({problem})")
    if len(series_keys) > 1 or series_keys[0] not in _SERIES_INTERVALS:
        raise ValueError(f"unsupported time series {series_keys}")
    interval = _SERIES_INTERVALS[series_keys[0]]
    series = payload[series_keys[0]]
    if not isinstance(series, dict):
        raise ValueError(f"{series_keys[0]!r} is not an object")
    symbol = (symbol if symbol is not None else _meta_symbol(payload)).strip().upper()

    bars = []
    for ts_text, values in series.items():
        try:
            if not _TS_PATTERNS[interval].fullmatch(ts_text):
                raise ValueError
            ts = datetime.fromisoformat(ts_text)
        except (TypeError, ValueError):
            raise ValueError(f"bar key {ts_text!r} is not a {interval} timestamp") from None
        if not isinstance(values, dict):
            raise ValueError(f"bar {ts_text} is not an object")
        open_ = _field(values, "open", ts_text)
        if open_ is None:
            raise ValueError(f"bar {ts_text} has no '1. open' (or '1. buy price')")
        bars.append(
            Bar(
                symbol=symbol,
                interval=interval,
                ts=ts,
                open=open_,
                high=_field(values, "high", ts_text),
                low=_field(values, "low", ts_text),
                close=_field(values, "close", ts_text),
                volume=_field(values, "volume", ts_text),
                source=source,
            )
        )
    bars.sort(key=lambda bar: bar.ts)
    return bars


# --- the client ------------------------------------------------------------------------------


class AlphaVantageClient:
    """A small synchronous Alpha Vantage client; close it (or use `with`) when done."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise AlphaVantageError("the Alpha Vantage API key is empty")
        self._api_key = api_key.strip()
        self.base_url = base_url
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout, transport=transport)
        _install_log_redaction()

    @classmethod
    def from_env(cls, base_url: str | None = None) -> AlphaVantageClient:
        """A client with the key from `ALPHAVANTAGE_API_KEY`, asking `base_url`, else
        `ALPHAVANTAGE_BASE_URL` (a proxy, a local stub), else Alpha Vantage."""
        api_key = os.environ.get(API_KEY_VARIABLE, "").strip()
        if not api_key:
            raise AlphaVantageError(
                f"{API_KEY_VARIABLE} is not set; get a free key at "
                "https://www.alphavantage.co/support/#api-key and export it"
            )
        base_url = base_url or os.environ.get(BASE_URL_VARIABLE, "").strip() or DEFAULT_BASE_URL
        return cls(api_key, base_url=base_url)

    def __repr__(self) -> str:
        return f"AlphaVantageClient(base_url={self.base_url!r})"

    def __enter__(self) -> AlphaVantageClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def daily(self, symbol: str, outputsize: OutputSize = "compact") -> list[Bar]:
        """Daily bars of `symbol` (`TIME_SERIES_DAILY`), oldest first."""
        return self._series("TIME_SERIES_DAILY", symbol, outputsize=outputsize)

    def crypto_daily(self, symbol: str, market: str = "USD") -> list[Bar]:
        """Daily bars of a digital currency (`DIGITAL_CURRENCY_DAILY`, UTC days), oldest first.

        Alpha Vantage always answers the whole history; prices are in `market`'s currency.
        """
        return self._series("DIGITAL_CURRENCY_DAILY", symbol, market=market.strip().upper())

    def intraday(
        self, symbol: str, month: str | None = None, outputsize: OutputSize = "full"
    ) -> list[Bar]:
        """60-minute bars of regular US hours (`TIME_SERIES_INTRADAY`), US/Eastern, oldest first.

        `month` (`YYYY-MM`) asks for that whole month; without it `full` means the last 30 days.
        """
        params = {"interval": HOURLY, "extended_hours": "false", "outputsize": outputsize}
        return self._series("TIME_SERIES_INTRADAY", symbol, **params, **_month(month))

    def _series(self, function: str, symbol: str, **params: str) -> list[Bar]:
        symbol = symbol.strip().upper()
        payload = self._get({"function": function, "symbol": symbol, **params})
        try:
            return parse_time_series(payload, symbol=symbol)
        except ValueError as exc:
            raise AlphaVantageError(
                f"unexpected {function} answer for {symbol}: {self._redact(str(exc))}"
            ) from None

    def news(
        self,
        tickers: str | Iterable[str] | None = None,
        time_from: datetime | None = None,
        time_to: datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Raw `NEWS_SENTIMENT` feed items, newest first; aware times are sent in UTC."""
        params: dict[str, str | int] = {"function": "NEWS_SENTIMENT", "sort": "LATEST"}
        params["limit"] = limit
        if tickers:
            params["tickers"] = tickers if isinstance(tickers, str) else ",".join(tickers)
        if time_from:
            params["time_from"] = _news_time(time_from)
        if time_to:
            params["time_to"] = _news_time(time_to)
        payload = self._get(params)
        feed = payload.get("feed")
        if not isinstance(feed, list):
            raise AlphaVantageError(
                f"unexpected NEWS_SENTIMENT answer: no 'feed' list (keys {sorted(payload)})"
            )
        return feed

    def _redact(self, text: str) -> str:
        return _APIKEY_IN_TEXT.sub(r"\1***", text).replace(self._api_key, "***")

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        what = " ".join(f"{k}={v}" for k, v in params.items() if k in _PARAMS_IN_ERRORS)
        # Errors are re-raised `from None`: httpx's own messages and causes may hold the URL.
        try:
            response = self._http.get(self.base_url, params={**params, "apikey": self._api_key})
        except httpx.TimeoutException:
            raise AlphaVantageError(
                f"Alpha Vantage did not answer {what} within {self.timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            reason = self._redact(str(exc)) or type(exc).__name__
            raise AlphaVantageError(
                f"cannot reach Alpha Vantage at {self.base_url} for {what}: {reason}"
            ) from None
        if response.status_code != 200:
            body = " ".join(self._redact(response.text).split())[:200]
            error = AlphaVantageRateLimited if response.status_code == 429 else AlphaVantageError
            raise error(f"Alpha Vantage answered HTTP {response.status_code} to {what}: {body}")
        try:
            payload = response.json()
        except ValueError:
            body = " ".join(self._redact(response.text).split())[:200]
            raise AlphaVantageError(
                f"Alpha Vantage answered {what} with a body that is not JSON: {body!r}"
            ) from None
        if not isinstance(payload, dict):
            raise AlphaVantageError(f"Alpha Vantage answered {what} with a non-object JSON body")
        self._raise_for_error_body(payload, what)
        return payload

    def _raise_for_error_body(self, payload: dict[str, Any], what: str) -> None:
        text = error_text(payload)
        if text is None:
            return
        # Alpha Vantage quotes the key back in some rate-limit messages.
        message = f"Alpha Vantage refused {what}: {' '.join(self._redact(text).split())}"
        lowered = text.lower()
        if "Error Message" in payload:
            raise AlphaVantageError(message)
        if "Note" in payload or any(word in lowered for word in _RATE_LIMIT_WORDS):
            raise AlphaVantageRateLimited(message)
        if "premium" in lowered:
            raise AlphaVantagePremiumOnly(message)
        raise AlphaVantageError(message)


def _month(month: str | None) -> dict[str, str]:
    if month is None:
        return {}
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise AlphaVantageError(f"month {month!r} is not YYYY-MM")
    return {"month": month}


def _news_time(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M")


# --- sync ------------------------------------------------------------------------------------


class SyncReport(BaseModel):
    """What one sync (`sync_daily`, `sync_crypto_daily`, `sync_intraday`) did, symbol by symbol."""

    target_day: date = Field(description="the last trading day the store should now reach")
    inserted: dict[str, int] = Field(default_factory=dict, description="bars added per symbol")
    outputsize: dict[str, str] = Field(default_factory=dict, description="what was downloaded")
    skipped: list[str] = Field(default_factory=list, description="already up to date")
    failed: dict[str, str] = Field(default_factory=dict, description="symbol -> error")
    not_attempted: list[str] = Field(default_factory=list, description="left after a stop")
    stopped_reason: str | None = None

    @property
    def total_inserted(self) -> int:
        return sum(self.inserted.values())


# What one symbol's download yields: chunks of bars, each with what was asked (for the report).
Chunks = Iterable[tuple[list[Bar], str]]
Fetcher = Callable[[str, date | None], Chunks]
# Which of a download's bars may be stored (a refresh's: an unfinished session's open only).
Admit = Callable[[list[Bar]], list[Bar]]


def _last_stored_day(session: Session, symbol: str, interval: str = DAILY) -> date | None:
    # Only bars with a close count: an open-only bar (from a merged file) is fetched again.
    query = select(func.max(PriceBar.day)).where(
        PriceBar.market == REAL_MARKET,
        PriceBar.symbol == symbol,
        PriceBar.interval == interval,
        PriceBar.close.is_not(None),
    )
    return session.execute(query).scalar_one_or_none()


def _fetch(
    client: AlphaVantageClient, symbol: str, outputsize: OutputSize
) -> tuple[list[Bar], OutputSize]:
    try:
        return client.daily(symbol, outputsize=outputsize), outputsize
    except AlphaVantagePremiumOnly:
        if outputsize == "compact":
            raise
        # Free keys may not ask for `full`; the latest 100 days beat nothing.
        return client.daily(symbol, outputsize="compact"), "compact"


def _sync(
    session: Session,
    report: SyncReport,
    symbols: Iterable[str],
    interval: str,
    fetch: Fetcher,
    start: date | None = None,
    admit: Admit | None = None,
    partial_days: bool = False,
) -> SyncReport:
    """Download, symbol by symbol, what the store lacks up to `report.target_day`.

    `fetch(symbol, first)` yields chunks from `first` (the last stored day, else `start`); each is
    committed at once, so a rate limit stops the loop but keeps what was stored. `admit` picks
    the bars that may be stored (default: those up to the target day). With `partial_days`
    (a refresh's hourly bars) a symbol whose last complete bar is on the target day is asked
    again: that day's later bars may have come since.
    """
    target = report.target_day
    pending = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
    while pending:
        symbol = pending.pop(0)
        last = _last_stored_day(session, symbol, interval)
        if last is not None and (last > target or (last == target and not partial_days)):
            report.skipped.append(symbol)
            continue
        first = last or start
        asked: list[str] = []
        try:
            for bars, what in fetch(symbol, first):
                asked.append(what)
                wanted = [b for b in bars if (first is None or b.ts.date() >= first)]
                wanted = [b for b in wanted if b.interval == interval]
                wanted = admit(wanted) if admit else [b for b in wanted if b.ts.date() <= target]
                added = insert_bars(session, wanted)
                session.commit()
                report.inserted[symbol] = report.inserted.get(symbol, 0) + added
        except AlphaVantageRateLimited as exc:
            report.stopped_reason = str(exc)
            report.not_attempted = [symbol, *pending]
            break
        except AlphaVantageError as exc:
            report.failed[symbol] = str(exc)
        finally:
            if asked:
                report.outputsize[symbol] = ",".join(asked)
    return report


def sync_daily(
    session: Session,
    client: AlphaVantageClient,
    symbols: Iterable[str],
    until: date,
    now: datetime | None = None,
    target: date | None = None,
    admit: Admit | None = None,
) -> SyncReport:
    """Download missing daily bars up to the last XNYS session <= `until` closed by `now` (or
    up to `target`, storing what `admit` lets through: a refresh's).

    Commits symbol by symbol; a rate limit stops at once and keeps what was stored.
    """
    latest_closed = last_closed_trading_day(now)
    default = min(trading_day_on_or_before(until), latest_closed)
    report = SyncReport(target_day=target or default)

    def fetch(symbol: str, last: date | None) -> Chunks:
        # `compact` holds the latest 100 sessions, counted back from today, not from `until`.
        gap = len(trading_days(last, latest_closed)) - 1 if last else None
        outputsize: OutputSize = "compact" if gap is not None and gap < COMPACT_MAX_GAP else "full"
        return [_fetch(client, symbol, outputsize)]

    return _sync(session, report, symbols, DAILY, fetch, admit=admit)


def sync_crypto_daily(
    session: Session,
    client: AlphaVantageClient,
    symbols: Iterable[str],
    until: date,
    now: datetime | None = None,
    market: str = "USD",
    target: date | None = None,
    admit: Admit | None = None,
) -> SyncReport:
    """Download missing daily bars of digital currencies up to the last UTC day <= `until` that
    ended by `now` (weekends included; or up to `target`, storing what `admit` lets through)."""
    last_ended = calendar(ALWAYS).last_closed_trading_day(now or datetime.now(UTC))
    report = SyncReport(target_day=target or min(until, last_ended))

    def fetch(symbol: str, last: date | None) -> Chunks:
        return [(client.crypto_daily(symbol, market=market), "full")]

    return _sync(session, report, symbols, DAILY, fetch, admit=admit)


def sync_intraday(
    session: Session,
    client: AlphaVantageClient,
    symbols: Iterable[str],
    until: date,
    now: datetime | None = None,
    start: date | None = None,
    target: date | None = None,
    admit: Admit | None = None,
) -> SyncReport:
    """Download missing 60-minute bars up to the last XNYS session <= `until` closed by `now`
    (or up to `target`, storing what `admit` lets through).

    Month by month from the last stored day, else from `start`, else from 30 days before the
    target (Alpha Vantage's own window); each month is committed as it comes.
    """
    target = target or min(trading_day_on_or_before(until), last_closed_trading_day(now))
    report = SyncReport(target_day=target)
    start = start or target - timedelta(days=30)

    def fetch(symbol: str, first: date | None) -> Chunks:
        for month in months_between(first or start, target):
            try:
                bars = client.intraday(symbol, month=month)
            except AlphaVantagePremiumOnly:
                # A free key may not ask for whole months; the latest 100 bars beat nothing.
                yield client.intraday(symbol, outputsize="compact"), "compact"
                return
            yield bars, month

    live = admit is not None
    return _sync(session, report, symbols, HOURLY, fetch, start, admit, partial_days=live)


def months_between(first: date, last: date) -> list[str]:
    """The months (`YYYY-MM`) from `first`'s to `last`'s, both included."""
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
