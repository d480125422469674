"""A local Alpha Vantage: a real HTTP server on 127.0.0.1 whose answers come from a test's fake.

The fake has `answer(query) -> (status, body)`, given the query string as a dict; tests swap
`stub.fake` between tests and keep one server per module. `crypto_daily_answer` and
`intraday_answer` rebuild Alpha Vantage's DIGITAL_CURRENCY_DAILY and TIME_SERIES_INTRADAY answers
from the shared data, for fakes to serve.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


class Answers(Protocol):
    def answer(self, query: dict[str, str]) -> tuple[int, bytes]: ...


def json_answer(payload: object) -> tuple[int, bytes]:
    """A 200 answer with `payload` as its JSON body."""
    return 200, json.dumps(payload).encode()


# The shared files' field names, and the raw ones Alpha Vantage answers with.
_RAW_FIELDS = {
    "1. open": "1. open",
    "1. buy price": "1. open",
    "2. high": "2. high",
    "3. low": "3. low",
    "4. close": "4. close",
    "4. sell price": "4. close",
    "5. volume": "5. volume",
}
# DIGITAL_CURRENCY_DAILY before 2024 quoted each price in the market's currency (a) and USD (b).
_OLD_CRYPTO_FIELDS = {
    "1. open": ("1a. open (USD)", "1b. open (USD)"),
    "2. high": ("2a. high (USD)", "2b. high (USD)"),
    "3. low": ("3a. low (USD)", "3b. low (USD)"),
    "4. close": ("4a. close (USD)", "4b. close (USD)"),
    "5. volume": ("5. volume",),
}


def crypto_daily_answer(coin_file: Path, old_style: bool = False) -> dict[str, Any]:
    """A DIGITAL_CURRENCY_DAILY answer (market USD) with the bars of a shared coin file."""
    source = json.loads(coin_file.read_text())
    code = source["Meta Data"]["2. Symbol"]
    series = {}
    for day, values in source["Time Series (Daily)"].items():
        if old_style:
            series[day] = {new: v for k, v in values.items() for new in _OLD_CRYPTO_FIELDS[k]}
            series[day]["6. market cap (USD)"] = "0"
        else:
            series[day] = dict(values)
    meta = {
        "1. Information": "Daily Prices and Volumes for Digital Currency",
        "2. Digital Currency Code": code,
        "3. Digital Currency Name": code,
        "4. Market Code": "USD",
        "5. Market Name": "United States Dollar",
        "6. Last Refreshed": max(series),
        "7. Time Zone": "UTC",
    }
    return {"Meta Data": meta, "Time Series (Digital Currency Daily)": series}


@cache
def _merged_lines(merged_file: Path) -> dict[str, dict[str, Any]]:
    lines = merged_file.read_text().splitlines()
    return {(o := json.loads(line))["Meta Data"]["2. Symbol"]: o for line in lines if line}


def intraday_answer(
    merged_file: Path, symbol: str, month: str | None = None, outputsize: str = "full"
) -> dict[str, Any] | None:
    """A TIME_SERIES_INTRADAY (60min) answer for `symbol` from a shared merged hourly file:
    complete bars only, of `month` if given, the latest 100 for `compact`; None if unknown."""
    line = _merged_lines(merged_file).get(symbol)
    if line is None:
        return None
    bars = {
        ts: {_RAW_FIELDS[k]: v for k, v in values.items()}
        for ts, values in sorted(line["Time Series (60min)"].items(), reverse=True)
        if "4. sell price" in values and (month is None or ts.startswith(month))
    }
    if outputsize == "compact":
        bars = dict(list(bars.items())[:100])
    meta = {
        "1. Information": "Intraday (60min) open, high, low, close prices and volume",
        "2. Symbol": symbol,
        "3. Last Refreshed": max(bars, default=""),
        "4. Interval": "60min",
        "5. Output Size": "Full size" if outputsize == "full" else "Compact",
        "6. Time Zone": "US/Eastern",
    }
    return {"Meta Data": meta, "Time Series (60min)": bars}


class _Handler(BaseHTTPRequestHandler):
    server: AlphaVantageStub

    def do_GET(self) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        status, body = self.server.fake.answer(query)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting (a timeout test)

    def log_message(self, format: str, *args: object) -> None:
        pass


class AlphaVantageStub(ThreadingHTTPServer):
    """Bound on construction, serving inside `with`; `base_url` is what the client is pointed at."""

    daemon_threads = True

    def __init__(self, fake: Answers) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/query"

    def __enter__(self) -> AlphaVantageStub:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
