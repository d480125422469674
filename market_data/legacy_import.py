"""Import an original AI-Trader run (`agent_data/<model>/position/position.jsonl`) as a run.

Each log line is one trade or no-trade with a full snapshot of the positions. Every session day of
the log's symbols becomes a model-day: its book is the highest-id record of the day's last session
with records (a day without records carries the book forward), valued at the day's close (hourly:
the close of the day's last bar). The registration record is the first point, at the starting
cash; when it has no day of its own (an A-share registration on a holiday, or at 08:30 before the
first bar) it is dated on the benchmark's last close before the first session, as backtests date
their initial cash, so that the curve and the benchmark start together.

Fill prices are the cash a trade moved over its amount, against the record it was written on: the
previous record in file order, but for a session's first record the latest earlier one whose id is
one less. The crypto weekend fork is why: Sunday's and Monday's logs were rebuilt on Friday's last
record (their ids restart at Friday's + 1), so their fills are priced against Friday's cash, and
the Saturday trades they discarded show as a jump between two days' books, not as trades.

Coins logged as `BTC-USDT` (or `-USD`) are the store's `BTC` when the store has the coin and not
the pair. A held symbol without a price, or whose last bar holds only an open (a merged file's
stripped newest bar), is refused with what to import: the import never values a holding at 0 nor
ends a bar early. It is one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func
from sqlmodel import Session, select

from configs.loader import load_universe
from configs.markets import load_market
from models.book import Fill, Portfolio
from models.errors import LegacyImportError, missing
from models.ledger import record_completed_day
from models.prices import DAILY, HOURLY, REAL_MARKET, PriceBook
from models.tables import ModelDay, ModelDayStatus, PriceBar, Run, RunStatus, utcnow

POSITION_FILE = Path("position") / "position.jsonl"
SIDES = {"buy": "buy", "sell": "sell", "buy_crypto": "buy", "sell_crypto": "sell"}
COIN_QUOTES = ("-USDT", "-USD")  # the original trades `BTC-USDT`; the store keeps coins as `BTC`
# The original's three markets, measured against their universes' benchmarks.
CN_BENCHMARK, CRYPTO_BENCHMARK, US_BENCHMARK = (
    load_universe(load_market(name).universe).benchmark for name in ("sse50", "crypto", "nasdaq100")
)
CURRENCIES = {CN_BENCHMARK: "CNY", CRYPTO_BENCHMARK: "USDT", US_BENCHMARK: "USD"}
MAX_GAP = timedelta(days=14)  # how far before its first session a registration point may go


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
    def day(self) -> date:
        return self.timestamp.date()

    @property
    def cash(self) -> float:
        return float(self.positions.get("CASH", 0.0))

    def book(self, symbols: dict[str, str]) -> Portfolio:
        """The snapshot as a book under the store's symbols (whole quantities stay ints)."""
        held = {symbols[s.upper()]: n for s, n in self.positions.items() if s != "CASH" and n}
        return Portfolio(cash=self.cash, positions=held)


class ModelImport(BaseModel):
    model: str
    days: int
    trades: int
    ignored_zero_amount: int = 0
    final_value: float = 0.0


class LegacyImportReport(BaseModel):
    run_id: int
    run_name: str
    interval: str
    benchmark: str = US_BENCHMARK
    already_imported: bool = False
    models: list[ModelImport] = Field(default_factory=list)


@dataclass
class DayPlan:
    """One model-day to write: its fills and end-of-day book."""

    day: date
    book: Portfolio
    fills: list[Fill] = field(default_factory=list)
    session: str | None = None


@dataclass
class ModelPlan:
    model: str
    days: list[DayPlan]
    ignored: int = 0


@dataclass
class Calendar:
    """The sessions of the log's symbols in the store: each day's first and last bar time."""

    first_bar: dict[date, datetime]
    last_bar: dict[date, datetime]

    @property
    def days(self) -> list[date]:
        return sorted(self.last_bar)


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
    raise LegacyImportError(f"no such file or folder: {missing(path)}")


def read_position_log(path: Path) -> list[PositionRecord]:
    """Parse a position.jsonl in session order, keeping file order inside a session."""
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
    # A stable sort: ids may go backwards (the crypto fork), so they cannot order a session.
    return sorted(records, key=lambda r: r.timestamp)


def log_symbols(logs: dict[str, list[PositionRecord]]) -> set[str]:
    """Every symbol a log holds or trades, upper-cased."""
    names = set()
    for records in logs.values():
        for record in records:
            names.update(s.upper() for s in record.positions if s != "CASH")
            if record.this_action and record.this_action.symbol:
                names.add(record.this_action.symbol.upper())
    return names


def store_symbols(names: set[str], prices: PriceBook) -> dict[str, str]:
    """Each log symbol's name in the store: `BTC-USDT` is `BTC` when only the coin is stored."""
    mapping = {}
    for name in names:
        coin = next((name.removesuffix(q) for q in COIN_QUOTES if name.endswith(q)), None)
        use_coin = coin and not prices.has_symbol(name) and prices.has_symbol(coin)
        mapping[name] = coin if use_coin else name
    return mapping


def benchmark_of(names: set[str]) -> str:
    """The market's benchmark: SSE 50 for A-shares, CD5 for coins, QQQ otherwise."""
    if any(n.endswith((".SH", ".SZ")) for n in names):
        return CN_BENCHMARK
    if any(n.endswith(COIN_QUOTES) for n in names):
        return CRYPTO_BENCHMARK
    return US_BENCHMARK


def session_calendar(prices: PriceBook, symbols: set[str], last: date) -> Calendar:
    """The days up to `last` on which any of `symbols` has a bar, with their bar times."""
    calendar = Calendar(first_bar={}, last_bar={})
    until = datetime.combine(last + timedelta(days=1), time.min)
    for symbol in symbols:
        for bar in prices.history(symbol, before=until):
            day = bar.ts.date()
            calendar.first_bar[day] = min(calendar.first_bar.get(day, bar.ts), bar.ts)
            calendar.last_bar[day] = max(calendar.last_bar.get(day, bar.ts), bar.ts)
    return calendar


def record_bases(records: list[PositionRecord]) -> list[int]:
    """For each record, the index of the record it was written on (see the module docstring)."""
    bases = [0] * len(records)
    latest_with_id: dict[int, int] = {}
    for index, record in enumerate(records):
        if index:
            previous = records[index - 1]
            forked = previous.date != record.date and previous.id != record.id - 1
            bases[index] = latest_with_id.get(record.id - 1, index - 1) if forked else index - 1
        latest_with_id[record.id] = index
    return bases


def _fill(record: PositionRecord, basis: PositionRecord, symbol: str, seq: int) -> Fill:
    """A logged trade; its price is the cash it moved over the amount (no fees existed)."""
    action = record.this_action
    assert action is not None
    return Fill(
        seq=seq,
        side=SIDES[action.action],
        symbol=symbol,
        shares=action.amount,
        price=abs(basis.cash - record.cash) / action.amount,
        cash_after=record.cash,
        session_at=record.timestamp,
    )


def _day_fills(
    records: list[PositionRecord], indexes: list[int], bases: list[int], symbols: dict[str, str]
) -> tuple[list[Fill], int]:
    """The trades of one day's records, and how many 0-amount ones were ignored."""
    fills: list[Fill] = []
    ignored = 0
    for index in indexes:
        action = records[index].this_action
        if action is None or action.action not in SIDES:
            continue
        if action.amount <= 0:
            ignored += 1  # old AI-Trader versions logged 0-share orders; they moved nothing
            continue
        basis = records[bases[index]]
        fills.append(_fill(records[index], basis, symbols[action.symbol.upper()], len(fills) + 1))
    return fills, ignored


def _day_plan(
    day: date, records: list[PositionRecord], indexes: list[int], symbols: dict[str, str]
) -> DayPlan:
    """A day with records: its book is the highest-id record of its last session."""
    last_session = max(records[i].timestamp for i in indexes)
    final = max(
        (i for i in indexes if records[i].timestamp == last_session),
        key=lambda i: (records[i].id, i),
    )
    sessions = ", ".join(sorted({records[i].date for i in indexes}))
    return DayPlan(day=day, book=records[final].book(symbols), session=sessions)


def plan_model(
    model: str,
    records: list[PositionRecord],
    symbols: dict[str, str],
    days: list[date],
    start: date | None,
) -> ModelPlan:
    """The model-days of one log over `days`; `start` dates its registration's own point."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        if index or start is None:  # a registration with its own point is not part of a day
            by_day[record.day].append(index)
    bases = record_bases(records)
    plan = ModelPlan(model=model, days=[])
    book = records[0].book(symbols)
    if start is not None:
        plan.days.append(DayPlan(day=start, book=book, session=records[0].date))
    first = start if start is not None else min(by_day)
    for day in sorted({d for d in days if d > first} | set(by_day)):
        if day not in by_day:
            plan.days.append(DayPlan(day=day, book=book))  # no record: holdings carry forward
            continue
        day_plan = _day_plan(day, records, by_day[day], symbols)
        day_plan.fills, ignored = _day_fills(records, by_day[day], bases, symbols)
        plan.ignored += ignored
        plan.days.append(day_plan)
        book = day_plan.book
    return plan


def _benchmark_close_day(session: Session, benchmark: str, since: date, until: date) -> date | None:
    """The benchmark's last day with a close in [since, until]."""
    query = select(func.max(PriceBar.day)).where(
        PriceBar.market == REAL_MARKET,
        PriceBar.symbol == benchmark,
        PriceBar.close.is_not(None),
        PriceBar.day >= since,
        PriceBar.day <= until,
    )
    return session.exec(query).one()


def registration_day(
    session: Session, records: list[PositionRecord], calendar: Calendar, benchmark: str
) -> date | None:
    """The day of the registration's own point (None when it shares a session day with trades).

    A registration on a session day stays there; one on a holiday or before the day's first bar
    goes to the benchmark's last close before the first session, so that the benchmark and the
    curve start together.
    """
    first = records[0]
    if first.this_action is not None or len(records) < 2:
        return None
    same_day = records[1].day == first.day
    pre_open = first.day in calendar.first_bar and first.timestamp < calendar.first_bar[first.day]
    if same_day and not pre_open:
        return None
    if not pre_open and first.day in calendar.last_bar:
        return first.day
    until = first.day - timedelta(days=1) if pre_open else first.day
    # Not before the last session before it, nor further back than a long holiday.
    earlier = max((d for d in calendar.last_bar if d <= until), default=until - MAX_GAP)
    return _benchmark_close_day(session, benchmark, max(earlier, until - MAX_GAP), until) or until


def check_prices(plans: list[ModelPlan], prices: PriceBook, calendar: Calendar) -> None:
    """Refuse holdings that have no price, only a stripped newest bar, or outlive the prices."""
    missing: dict[str, date] = {}
    stripped: dict[str, datetime] = {}
    beyond: dict[date, str] = {}
    last_session = max(calendar.days, default=None)
    for plan in plans:
        for day in plan.days:
            if not day.book.positions:
                continue
            if last_session is None or day.day > last_session:
                beyond.setdefault(day.day, plan.model)
            end = datetime.combine(day.day, time.max)
            for symbol in day.book.positions:
                last = prices.history(symbol, before=end, limit=1)
                if not last:
                    missing.setdefault(symbol, day.day)
                elif last[0].close is None:
                    stripped.setdefault(symbol, last[0].ts)
    if missing:
        raise LegacyImportError(_missing_message(missing, prices.interval))
    if stripped:
        when = min(stripped.values())
        raise LegacyImportError(
            f"no close for {_some(sorted(stripped))} at {_when(when)}: the bar holds only the open "
            "(a merged file strips its newest bar); import the raw closes too (the CSV or coin "
            "files beside it, `aitrader data import PATH`); nothing was imported"
        )
    if beyond:
        day, model = min(beyond.items())
        raise LegacyImportError(
            f"{model} holds positions on {day}, after the store's last {prices.interval} session "
            f"of the log's symbols ({last_session}); import prices up to {max(beyond)} first"
        )


def _some(names: list[str], shown: int = 4) -> str:
    """A few names of a list, and how many more."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _when(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d}" if ts.time() == time.min else f"{ts:%Y-%m-%d %H:%M}"


def _missing_message(missing: dict[str, date], interval: str) -> str:
    """What to import for held symbols the store has no price for."""
    first = min(missing.values())
    coins = sorted({s.removesuffix(q) for s in missing for q in COIN_QUOTES if s.endswith(q)})
    what = (
        f"the coins' price files ({_some([f'daily_prices_{c}.json' for c in coins], 2)}; a coin "
        "is stored by its bare name)"
        if coins
        else "their price files (daily_prices_<SYM>.json or the market's merged.jsonl)"
    )
    return (
        f"no {interval} price in the store for {_some(sorted(missing))}, held from {first}; "
        f"import {what} with `aitrader data import PATH` first; nothing was imported"
    )


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
        benchmark=existing.benchmark,
        already_imported=True,
    )


def _write_plan(session: Session, run: Run, plan: ModelPlan, prices: PriceBook) -> ModelImport:
    """Store one model's planned days as completed model-days of `run` (not committed)."""
    value = 0.0
    for day in plan.days:
        model_day = ModelDay(
            run_id=run.id,
            model=plan.model,
            portfolio=run.portfolios[plan.model],
            day=day.day,
            session=day.session if run.config["interval"] == HOURLY else None,
            status=ModelDayStatus.RUNNING,
            attempts=1,
        )
        session.add(model_day)
        session.flush()
        value = record_completed_day(session, model_day, day.fills, day.book, prices).total
    return ModelImport(
        model=plan.model,
        days=len(plan.days),
        trades=sum(len(d.fills) for d in plan.days),
        ignored_zero_amount=plan.ignored,
        final_value=round(value, 4),
    )


def _config_hash(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for model, file in sorted(files.items()):
        digest.update(model.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def _load_prices(session: Session, interval: str, last_day: date) -> PriceBook:
    prices = PriceBook.load(session, interval=interval, until=last_day)
    if not prices.symbols:
        raise LegacyImportError(
            f"the store holds no {interval} prices; import the run's prices first "
            "(aitrader data import PATH)"
        )
    return prices


def import_aitrader_run(
    session: Session, path: Path, prices: PriceBook | None = None, name: str | None = None
) -> LegacyImportReport:
    """Import every model's position log under `path` as one run; importing twice adds nothing."""
    files = find_position_files(Path(path))
    logs = {model: read_position_log(file) for model, file in files.items()}
    config_hash = _config_hash(files)
    existing = _imported_before(session, config_hash)
    if existing is not None:
        return existing

    hourly = any(" " in r.date or "T" in r.date for records in logs.values() for r in records)
    interval = HOURLY if hourly else DAILY
    last_day = max(records[-1].day for records in logs.values())
    if prices is None:
        prices = _load_prices(session, interval, last_day)
    names = log_symbols(logs)
    symbols = store_symbols(names, prices)
    benchmark = benchmark_of(names)
    calendar = session_calendar(prices, set(symbols.values()), last_day)
    plans = []
    for model, records in sorted(logs.items()):
        start = registration_day(session, records, calendar, benchmark)
        plans.append(plan_model(model, records, symbols, calendar.days, start))
    check_prices(plans, prices, calendar)

    run = Run(
        name=name or f"aitrader:{Path(path).resolve().name}",
        kind="legacy-import",
        status=RunStatus.COMPLETED,
        config={
            "source": str(Path(path).resolve()),
            "interval": interval,
            "files": len(files),
            "symbols": {k: v for k, v in sorted(symbols.items()) if k != v},
        },
        config_hash=config_hash,
        models=sorted(logs),
        start_date=min(plan.days[0].day for plan in plans),
        end_date=last_day,
        initial_cash=max(records[0].cash for records in logs.values()),
        currency=CURRENCIES[benchmark],
        benchmark=benchmark,
        started_at=utcnow(),
        finished_at=utcnow(),
    )
    return _write_run(session, run, plans, prices)


def _write_run(
    session: Session, run: Run, plans: list[ModelPlan], prices: PriceBook
) -> LegacyImportReport:
    """Store the run and every model's days in one transaction; nothing stays if one fails."""
    try:
        session.add(run)
        session.flush()
        run.portfolios = {plan.model: f"legacy-{run.id}/{plan.model}" for plan in plans}
        report = LegacyImportReport(
            run_id=run.id,
            run_name=run.name,
            interval=run.config["interval"],
            benchmark=run.benchmark,
        )
        report.models = [_write_plan(session, run, plan, prices) for plan in plans]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return report
