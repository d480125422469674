"""Import of the original AI-Trader benchmark's price files into the price store.

Two layouts: `daily_prices_<SYM>.json` (a raw Alpha Vantage answer, one symbol) and `merged.jsonl`
(one Alpha Vantage-like object per line, with `1. buy price` / `4. sell price` for open / close).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from sqlmodel import Session

from market_data.alphavantage import parse_time_series
from market_data.json_files import read_json
from models.errors import PriceFileError
from models.prices import Bar, insert_bars

SOURCE = "aitrader"
PRICE_FILE_GLOB = "*daily_prices_*.json"  # AI-Trader's QQQ copy is named `Adaily_prices_QQQ.json`
MERGED_FILE_GLOB = "*.jsonl"


class ImportReport(BaseModel):
    """What one `import_prices` read and stored."""

    files_read: int
    bars_read: int
    bars_inserted: int
    symbols: list[str]


def _symbol_from_name(path: Path) -> str | None:
    _, marker, symbol = path.stem.partition("daily_prices_")
    return symbol.upper() if marker and symbol else None


def read_price_file(path: str | Path) -> list[Bar]:
    """The bars of one `daily_prices_<SYM>.json` (daily or 60min Alpha Vantage layout)."""
    path = Path(path)
    payload = read_json(path, PriceFileError)
    meta = payload.get("Meta Data") if isinstance(payload, dict) else None
    has_symbol = isinstance(meta, dict) and bool(meta.get("2. Symbol"))
    # The file name names the symbol when the answer's `Meta Data` does not.
    symbol = None if has_symbol else _symbol_from_name(path)
    try:
        return parse_time_series(payload, symbol=symbol, source=SOURCE)
    except ValueError as exc:
        raise PriceFileError(f"{path}: {exc}") from exc


def read_merged_jsonl(path: str | Path) -> list[Bar]:
    """The bars of an AI-Trader `merged.jsonl`: one symbol per line, open-only newest bars kept."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    bars: list[Bar] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            bars.extend(parse_time_series(json.loads(line), source=SOURCE))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            raise PriceFileError(f"{path}, line {number}: {exc}") from exc
    return bars


def price_files(path: str | Path) -> list[Path]:
    """The files `import_prices` reads for `path`: the file itself, or those in the folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise PriceFileError(f"{path}: no such file or folder")
    files = sorted({*path.glob(PRICE_FILE_GLOB), *path.glob(MERGED_FILE_GLOB)})
    if not files:
        raise PriceFileError(
            f"{path}: no price files ({PRICE_FILE_GLOB} or {MERGED_FILE_GLOB}) in this folder"
        )
    return files


def _read_file(file: Path) -> list[Bar]:
    return read_merged_jsonl(file) if file.suffix == ".jsonl" else read_price_file(file)


def read_prices(path: str | Path) -> list[Bar]:
    """Every bar of a price file or folder, without touching the store."""
    return [bar for file in price_files(path) for bar in _read_file(file)]


def import_prices(session: Session, path: str | Path) -> ImportReport:
    """Store the bars of a price file or folder (idempotent); the caller commits.

    Every file is checked before anything is inserted, so a malformed file writes nothing.
    """
    files = price_files(path)
    bars = [bar for file in files for bar in _read_file(file)]
    # The same bar may come from two files (a symbol's daily file and a daily merged.jsonl).
    unique: dict[tuple[str, str, datetime], Bar] = {}
    for bar in bars:
        unique.setdefault((bar.symbol, bar.interval, bar.ts), bar)
    return ImportReport(
        files_read=len(files),
        bars_read=len(bars),
        bars_inserted=insert_bars(session, unique.values()),
        symbols=sorted({bar.symbol for bar in bars}),
    )
