"""Import of the original AI-Trader benchmark's price files into the price store.

Layouts: `daily_prices_<SYM>.json` and the benchmark files (an Alpha Vantage-like answer, one
symbol), `merged.jsonl` (one Alpha Vantage-like object per line, with `1. buy price` /
`4. sell price` for open / close, the newest bar open-only), and the raw CSV rows the merged
files were built from (tushare daily, efinance 60-minute), which hold the newest closes.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, Field
from sqlmodel import Session

from market_data.alphavantage import parse_number, parse_time_series
from market_data.json_files import read_json
from models.errors import PriceFileError, missing
from models.prices import DAILY, HOURLY, Bar, insert_bars

SOURCE = "aitrader"
PRICE_FILE_GLOB = "*daily_prices_*.json"  # AI-Trader's QQQ copy is named `Adaily_prices_QQQ.json`
INDEX_FILE_GLOB = "*index*.json"  # index_daily_sse_50.json, CD5_crypto_index.json
MERGED_FILE_GLOB = "*.jsonl"
CSV_FILE_GLOB = "*.csv"
# Benchmark files whose name says which index they hold, for a copy without `Meta Data`.
KNOWN_FILE_SYMBOLS = {"index_daily_sse_50.json": "000016.SH", "CD5_crypto_index.json": "CD5"}


@dataclass(frozen=True)
class CsvLayout:
    """A raw price CSV: which column holds the symbol and the volume, and the volume's unit."""

    symbol: str
    volume: str
    volume_scale: int


# By the column that names the symbol. tushare's `vol` and efinance's hourly `volume` count lots
# of 100 shares; the store counts shares, as the daily merged file does.
A_SHARE_LOT = 100
CSV_LAYOUTS = {
    "ts_code": CsvLayout("ts_code", "vol", A_SHARE_LOT),
    "stock_code": CsvLayout("stock_code", "volume", A_SHARE_LOT),
}
# The original's A-share hourly merged file keeps efinance's volume in lots (its daily one is in
# shares): a 60-min series in Shanghai time is scaled to shares.
LOTS_VOLUME_ZONE = "Asia/Shanghai"
CSV_PRICE_COLUMNS = ("trade_date", "open", "high", "low", "close")
# A CSV with these columns and no `open` holds no prices (sse_50_weight.csv, index weights).
CSV_NOT_PRICES = ("weight",)
# trade_date: tushare's YYYYMMDD, or efinance's YYYY-MM-DD HH:MM (the merged file adds :SS).
_CSV_COMPACT_DAY = re.compile(r"(\d{4})(\d{2})(\d{2})")
_CSV_TIMES = (
    (re.compile(r"\d{4}-\d{2}-\d{2}"), DAILY),
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?"), HOURLY),
)


class ImportReport(BaseModel):
    """What one `import_prices` read and stored."""

    files_read: int
    bars_read: int
    bars_inserted: int = Field(description="bars inserted, plus stored open-only bars completed")
    symbols: list[str]
    files_skipped: list[str] = Field(default_factory=list, description="files holding no prices")


def _symbol_from_name(path: Path) -> str | None:
    if path.name in KNOWN_FILE_SYMBOLS:
        return KNOWN_FILE_SYMBOLS[path.name]
    _, marker, symbol = path.stem.partition("daily_prices_")
    return symbol.upper() if marker and symbol else None


def read_price_file(path: str | Path) -> list[Bar]:
    """The bars of one `daily_prices_<SYM>.json` or benchmark file (daily or 60min layout)."""
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
            payload = json.loads(line)
            parsed = parse_time_series(payload, source=SOURCE)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            raise PriceFileError(f"{path}, line {number}: {exc}") from exc
        bars.extend(_volume_in_shares(payload, parsed))
    return bars


def _volume_in_shares(payload: dict, bars: list[Bar]) -> list[Bar]:
    meta = payload.get("Meta Data") or {}
    zone = meta.get("6. Time Zone") or meta.get("5. Time Zone")
    if zone != LOTS_VOLUME_ZONE or "Time Series (60min)" not in payload:
        return bars
    return [
        bar.model_copy(update={"volume": bar.volume * A_SHARE_LOT}) if bar.volume else bar
        for bar in bars
    ]


def _holds_prices(header: list[str]) -> bool:
    return "open" in header or not any(column in header for column in CSV_NOT_PRICES)


def _csv_layout(path: Path, header: list[str] | None) -> CsvLayout:
    if not header:
        raise PriceFileError(f"{path}: empty, no header row")
    if not _holds_prices(header):
        raise PriceFileError(f"{path}: holds no prices (columns {', '.join(header)})")
    layout = next((CSV_LAYOUTS[name] for name in CSV_LAYOUTS if name in header), None)
    wanted = [*CSV_PRICE_COLUMNS, layout.volume] if layout else list(CSV_PRICE_COLUMNS)
    missing = [] if layout else [" or ".join(CSV_LAYOUTS)]
    missing += [column for column in wanted if column not in header]
    if layout is None or missing:
        raise PriceFileError(f"{path}: missing column(s) {', '.join(missing)}")
    return layout


def _csv_time(text: str | None) -> tuple[datetime, str]:
    # Patterns, then fromisoformat for the ranges: strptime costs more than reading the row.
    day = _CSV_COMPACT_DAY.fullmatch((text or "").strip())
    stamp = "-".join(day.groups()) if day else (text or "").strip()
    for pattern, interval in _CSV_TIMES:
        if pattern.fullmatch(stamp):
            try:
                return datetime.fromisoformat(stamp), interval
            except ValueError:
                break
    raise ValueError(f"'trade_date' {text!r} is not YYYYMMDD, YYYY-MM-DD or YYYY-MM-DD HH:MM")


def _csv_value(row: dict[str, str | None], column: str, scale: int = 1) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None  # an open-only row; never a price of 0
    number = parse_number(text, repr(column), allow_zero=column in ("vol", "volume"))
    # Decimal, so that lots of 100 shares stay whole shares (1463860.33 lots: 146386033).
    return float(Decimal(repr(number)) * scale) if scale != 1 else number


def _csv_bar(row: dict[str, str | None], layout: CsvLayout) -> Bar:
    symbol = (row.get(layout.symbol) or "").strip().upper()
    if not symbol:
        raise ValueError(f"{layout.symbol!r} is empty")
    ts, interval = _csv_time(row.get("trade_date"))
    open_ = _csv_value(row, "open")
    if open_ is None:
        raise ValueError("'open' is empty")
    return Bar(
        symbol=symbol,
        interval=interval,
        ts=ts,
        open=open_,
        high=_csv_value(row, "high"),
        low=_csv_value(row, "low"),
        close=_csv_value(row, "close"),
        volume=_csv_value(row, layout.volume, layout.volume_scale),
        source=SOURCE,
    )


def read_price_csv(path: str | Path) -> list[Bar]:
    """The bars of a raw AI-Trader price CSV (tushare daily rows or efinance 60-minute rows)."""
    path = Path(path)
    bars: list[Bar] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            layout = _csv_layout(path, reader.fieldnames)
            for row in reader:
                try:
                    bars.append(_csv_bar(row, layout))
                except ValueError as exc:
                    raise PriceFileError(f"{path}, line {reader.line_num}: {exc}") from exc
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PriceFileError(f"{path}: not a readable UTF-8 CSV: {exc}") from exc
    return bars


def _is_price_csv(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return True  # reading it says what is wrong
    return _holds_prices(header)


def _listing(path: Path) -> tuple[list[Path], list[Path]]:
    """The files to read for `path`, in reading order, and the folder's files holding no prices."""
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise PriceFileError(f"{missing(path)}: no such file or folder")
    globs = (PRICE_FILE_GLOB, INDEX_FILE_GLOB, MERGED_FILE_GLOB)
    # JSON first, raw CSV rows last: where both hold a complete bar the merged file's (what the
    # original traded on) is kept, and the CSV only completes its open-only newest bars.
    files = sorted({file for glob in globs for file in path.glob(glob)})
    tables = sorted(path.glob(CSV_FILE_GLOB))
    skipped = [file for file in tables if not _is_price_csv(file)]
    files += [file for file in tables if file not in skipped]
    if not files:
        raise PriceFileError(
            f"{path}: no price files ({PRICE_FILE_GLOB}, {INDEX_FILE_GLOB}, {MERGED_FILE_GLOB} "
            f"or {CSV_FILE_GLOB}) in this folder"
        )
    return files, skipped


def price_files(path: str | Path) -> list[Path]:
    """The files `import_prices` reads for `path`: the file itself, or those in the folder."""
    return _listing(Path(path))[0]


def _read_file(file: Path) -> list[Bar]:
    if file.suffix == ".jsonl":
        return read_merged_jsonl(file)
    return read_price_csv(file) if file.suffix == ".csv" else read_price_file(file)


def read_prices(path: str | Path) -> list[Bar]:
    """Every bar of a price file or folder, without touching the store."""
    return [bar for file in price_files(path) for bar in _read_file(file)]


def import_prices(session: Session, path: str | Path) -> ImportReport:
    """Store the bars of a price file or folder (idempotent); the caller commits.

    Every file is checked before anything is inserted, so a malformed file writes nothing. A bar
    read twice (a merged file and its CSV) is stored once, completed if either has its close.
    """
    files, skipped = _listing(Path(path))
    bars = [bar for file in files for bar in _read_file(file)]
    return ImportReport(
        files_read=len(files),
        bars_read=len(bars),
        bars_inserted=insert_bars(session, bars),
        symbols=sorted({bar.symbol for bar in bars}),
        files_skipped=[str(file) for file in skipped],
    )
