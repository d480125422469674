"""Import an original AI-Trader run (`agent_data/<model>/position/position.jsonl`) as a run.

Each position log line is one trade or no-trade with a full snapshot of the positions. The book at
the end of a day is the snapshot with the highest `id` that day; fill prices are recovered from the
cash each trade moved. Holdings are valued at the store's closes, like every other run.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, select

from models.book import Fill, Portfolio
from models.errors import LegacyImportError
from models.ledger import record_completed_day
from models.prices import DAILY, HOURLY, PriceBook
from models.tables import ModelDay, ModelDayStatus, Run, RunStatus, utcnow

POSITION_FILE = Path("position") / "position.jsonl"


class LegacyAction(BaseModel):
    action: str
    symbol: str = ""
    amount: float = 0


class PositionRecord(BaseModel):
    """One line of an AI-Trader position.jsonl."""

    date: str
    id: int
    positions: dict[str, float]
    this_action: LegacyAction | None = None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.date)

    @property
    def cash(self) -> float:
        return float(self.positions.get("CASH", 0.0))

    def book(self) -> Portfolio:
        shares = {s: int(n) for s, n in self.positions.items() if s != "CASH" and n}
        return Portfolio(cash=self.cash, positions=shares)


class ModelImport(BaseModel):
    model: str
    days: int
    trades: int
    ignored_zero_amount: int = 0


class LegacyImportReport(BaseModel):
    run_id: int
    run_name: str
    interval: str
    already_imported: bool = False
    models: list[ModelImport] = Field(default_factory=list)
    missing_prices: list[str] = Field(default_factory=list)


def find_position_files(path: Path) -> dict[str, Path]:
    """Model names and their position logs under a position.jsonl, a model or agent_data folder."""
    path = Path(path)
    if path.is_file():
        model = path.parent.parent.name if path.parent.name == "position" else path.stem
        return {model: path}
    if (path / POSITION_FILE).is_file():
        return {path.name: path / POSITION_FILE}
    if path.is_dir():
        found = {p.parent.parent.name: p for p in sorted(path.glob(f"*/{POSITION_FILE}"))}
        if found:
            return found
        raise LegacyImportError(f"no <model>/position/position.jsonl under {path}")
    raise LegacyImportError(f"no such file or folder: {path}")


def read_position_log(path: Path) -> list[PositionRecord]:
    """Parse a position.jsonl, sorted by (timestamp, id)."""
    records: list[PositionRecord] = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise LegacyImportError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = PositionRecord.model_validate(json.loads(line))
            record.timestamp  # noqa: B018  (validates the date text)
        except (json.JSONDecodeError, ValidationError, ValueError) as exc:
            reason = str(exc).splitlines()[0]
            raise LegacyImportError(f"{path}:{number}: not a position record: {reason}") from None
        records.append(record)
    if not records:
        raise LegacyImportError(f"{path} holds no position records")
    return sorted(records, key=lambda r: (r.timestamp, r.id))


def _fills_of_day(
    previous: PositionRecord, day_records: list[PositionRecord]
) -> tuple[list[Fill], int]:
    """Trades of one day with their prices recovered from the cash they moved."""
    fills: list[Fill] = []
    ignored = 0
    before = previous
    for record in day_records:
        action = record.this_action
        if action and action.action in ("buy", "sell"):
            if action.amount <= 0:
                ignored += 1  # old AI-Trader versions logged 0-share orders; they moved nothing
            else:
                price = abs(before.cash - record.cash) / action.amount
                fills.append(
                    Fill(
                        seq=len(fills) + 1,
                        side=action.action,
                        symbol=action.symbol.upper(),
                        shares=int(action.amount),
                        price=price,
                        cash_after=record.cash,
                    )
                )
        before = record
    return fills, ignored


def _import_model(
    session: Session,
    run: Run,
    model: str,
    records: list[PositionRecord],
    prices: PriceBook,
    hourly: bool,
) -> tuple[ModelImport, set[str]]:
    """One model's log as completed model-days of `run`; the symbols that found no close."""
    by_day: dict[date, list[PositionRecord]] = defaultdict(list)
    for record in records:
        by_day[record.timestamp.date()].append(record)
    previous = records[0]
    trades = ignored = 0
    missing: set[str] = set()
    for day, day_records in sorted(by_day.items()):
        fills, day_ignored = _fills_of_day(previous, day_records)
        end_of_day = max(day_records, key=lambda r: r.id)
        sessions = sorted({r.date for r in day_records})
        model_day = ModelDay(
            run_id=run.id,
            model=model,
            portfolio=run.portfolios[model],
            day=day,
            session=", ".join(sessions) if hourly else None,
            status=ModelDayStatus.RUNNING,
            attempts=1,
        )
        session.add(model_day)
        session.flush()
        valuation = record_completed_day(session, model_day, fills, end_of_day.book(), prices)
        missing.update(valuation.missing)
        trades += len(fills)
        ignored += day_ignored
        previous = day_records[-1]
    imported = ModelImport(
        model=model, days=len(by_day), trades=trades, ignored_zero_amount=ignored
    )
    return imported, missing


def _imported_before(session: Session, config_hash: str) -> LegacyImportReport | None:
    """The report of an earlier import of the same files, if there was one."""
    existing = session.exec(
        select(Run).where(Run.kind == "legacy-import", Run.config_hash == config_hash)
    ).first()
    if existing is None:
        return None
    return LegacyImportReport(
        run_id=existing.id,
        run_name=existing.name,
        interval=existing.config.get("interval", ""),
        already_imported=True,
    )


def import_aitrader_run(
    session: Session, path: Path, prices: PriceBook | None = None, name: str | None = None
) -> LegacyImportReport:
    """Import every model's position log under `path` as one run; importing twice adds nothing."""
    files = find_position_files(Path(path))
    logs = {model: read_position_log(file) for model, file in files.items()}
    digest = hashlib.sha256()
    for model, file in sorted(files.items()):
        digest.update(model.encode() + b"\0" + file.read_bytes())
    config_hash = digest.hexdigest()
    run_name = name or f"aitrader:{Path(path).resolve().name}"

    existing = _imported_before(session, config_hash)
    if existing is not None:
        return existing

    hourly = any(" " in r.date or "T" in r.date for records in logs.values() for r in records)
    interval = HOURLY if hourly else DAILY
    all_records = [r for records in logs.values() for r in records]
    first_day = min(r.timestamp.date() for r in all_records)
    last_day = max(r.timestamp.date() for r in all_records)
    if prices is None:
        prices = PriceBook.load(session, interval=interval, until=last_day)
    if not prices.symbols:
        raise LegacyImportError(
            f"the store holds no {interval} prices; import the run's prices first "
            "(aitrader data import PATH)"
        )

    run = Run(
        name=run_name,
        kind="legacy-import",
        status=RunStatus.COMPLETED,
        config={"source": str(Path(path).resolve()), "interval": interval, "files": len(files)},
        config_hash=config_hash,
        models=sorted(logs),
        start_date=first_day,
        end_date=last_day,
        initial_cash=max(records[0].cash for records in logs.values()),
        started_at=utcnow(),
        finished_at=utcnow(),
    )
    session.add(run)
    session.flush()
    run.portfolios = {model: f"legacy-{run.id}/{model}" for model in logs}
    report = LegacyImportReport(run_id=run.id, run_name=run.name, interval=interval)
    missing: set[str] = set()
    for model, records in sorted(logs.items()):
        imported, model_missing = _import_model(session, run, model, records, prices, hourly)
        report.models.append(imported)
        missing.update(model_missing)
    report.missing_prices = sorted(missing)
    session.commit()
    return report
