"""The site's build time and page load times, against the run's report measured in the same run.

    .venv/bin/python benchmarks/site_build.py [--store data/aitrader.db] [--models 6]
        [--sessions 250] [--chromium /usr/bin/chromium]

1. On the quick start's store (`python3 quickstart.py run` makes it): the time of
   `aitrader site build` for its newest run and every page, against the time of the same run's
   report (`aitrader results report`: the markdown, two PNG charts and the plotly page). Target:
   the build under 5 s.
2. On a generated store of `--models` models over `--sessions` sessions (books, trades, holdings
   and conversations written straight into SQLite, as a backtest would leave them): the build's
   time, and how long the run's page, a model's page and a day's page take to load in headless
   chromium (navigation start to the load event, the median of 3). Target: under 1 s each.

Exit status 1 if a target is missed.
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from analysis.report import render_report, write_report  # noqa: E402
from models.engine import create_store_engine, upgrade  # noqa: E402
from models.results import get_run  # noqa: E402
from models.tables import (  # noqa: E402
    Holding,
    Message,
    ModelDay,
    PriceBar,
    Run,
    ToolCall,
    Trade,
)
from website.build import build_site  # noqa: E402

BUILD_TARGET_S = 5.0
LOAD_TARGET_MS = 1000.0
SYMBOLS = [f"S{k:03d}" for k in range(100)]
PROMPT = "You are a stock trading agent. " + "; ".join(f"{s} 100->101" for s in SYMBOLS)


def timed(action) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def quick_start(store: Path) -> bool:
    """Build time against the report's, on the quick start's store; True if within target."""
    if not store.exists():
        print(f"{store} not found: run `python3 quickstart.py run` first (skipping part 1)")
        return True
    engine = create_store_engine(f"sqlite:///{store}")
    with tempfile.TemporaryDirectory() as folder, Session(engine) as session:
        run = get_run(session, None)
        report_s, _ = timed(
            lambda: write_report(render_report(session, run.id), Path(folder) / "report")
        )
        site_s, pages = timed(lambda: build_site(session, Path(folder) / "site"))
    print(f"quick start store ({store}): site build {site_s:.2f} s for {len(pages)} pages; ")
    print(f"  the run's report {report_s:.2f} s; site / report = {site_s / report_s:.2f}")
    return site_s < BUILD_TARGET_S


def weekdays(count: int) -> list[date]:
    days, day = [], date(2024, 1, 2)
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def generated_store(path: Path, models: int, sessions: int) -> None:
    """A backtest's worth of rows: a run of `models` models over `sessions` weekdays."""
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    rng = random.Random(7)
    days = weekdays(sessions + 1)  # the first is the close the books start from
    names = [f"model-{k}" for k in range(models)]
    with Session(engine) as session:
        bench = 400.0
        for day in days:
            bench *= 1 + rng.gauss(0.0004, 0.012)
            at = datetime.combine(day, datetime.min.time())
            session.add(PriceBar(symbol="QQQ", ts=at, day=day, open=bench, close=bench))
        run = Run(
            name="generated",
            models=names,
            portfolios={n: f"g/{n}" for n in names},
            start_date=days[1],
            end_date=days[-1],
            status="completed",
        )
        session.add(run)
        session.flush()
        for name in names:
            value = 10_000.0
            for day in days[1:]:
                value *= 1 + rng.gauss(0.0005, 0.01)
                add_model_day(session, run.id or 0, name, day, value, rng)
        session.commit()


def add_model_day(
    session: Session, run_id: int, name: str, day: date, value: float, rng: random.Random
) -> None:
    """One completed model-day: ten holdings, one buy, its conversation and tool call."""
    record = ModelDay(
        run_id=run_id,
        model=name,
        portfolio=f"g/{name}",
        day=day,
        status="completed",
        cash_end=value * 0.1,
        value_end=value,
        attempts=1,
        tokens_in=3000,
        tokens_out=400,
        duration_s=12.0,
    )
    session.add(record)
    session.flush()
    held = rng.sample(SYMBOLS, 10)
    for symbol in held:
        session.add(Holding(model_day_id=record.id, symbol=symbol, shares=10, value=value * 0.09))
    filled = json.dumps({"filled": {"side": "buy", "symbol": held[0], "shares": 3}})
    messages = [
        ("system", PROMPT),
        ("user", f"Please trade {day}."),
        ("assistant", f"Buying {held[0]}: momentum looks strong."),
        ("tool", filled),
        ("assistant", "Done. <FINISH_SIGNAL>"),
    ]
    for seq, (role, content) in enumerate(messages):
        session.add(Message(model_day_id=record.id, seq=seq, role=role, content=content))
    arguments = {"symbol": held[0], "shares": 3}
    session.add(
        ToolCall(model_day_id=record.id, seq=1, tool="buy", arguments=arguments, result=filled)
    )
    session.add(
        Trade(
            model_day_id=record.id,
            seq=1,
            side="buy",
            symbol=held[0],
            shares=3,
            price=100.0,
            cash_after=value * 0.1,
            cost=1.2,
        )
    )


def load_times(chromium: str, urls: list[str]) -> dict[str, float]:
    """Median milliseconds from navigation start to the load event, per page."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {url: [] for url in urls}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(3):
            for url in urls:
                page = browser.new_page()
                page.goto(url, wait_until="load")
                times[url].append(
                    page.evaluate(
                        "() => { const t = performance.getEntriesByType('navigation')[0];"
                        " return t.loadEventEnd - t.startTime; }"
                    )
                )
                page.close()
        browser.close()
    return {url: statistics.median(values) for url, values in times.items()}


def large_run(models: int, sessions: int, chromium: str) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "store.db"
        made_s, _ = timed(lambda: generated_store(store, models, sessions))
        engine = create_store_engine(f"sqlite:///{store}")
        with Session(engine) as session:
            build_s, pages = timed(lambda: build_site(session, Path(folder) / "site"))
        site = Path(folder) / "site" / "run-1"
        days = sorted(site.glob("day-*.html"))
        urls = [site / "index.html", site / "model-model-0.html", days[len(days) // 2]]
        print(
            f"{models} models x {sessions} sessions (store written in {made_s:.1f} s): "
            f"site build {build_s:.2f} s for {len(pages)} pages"
        )
        ok = True
        for url, ms in load_times(chromium, [u.as_uri() for u in urls]).items():
            ok &= ms < LOAD_TARGET_MS
            print(f"  {url.split('/site/')[1]}: loads in {ms:.0f} ms (target {LOAD_TARGET_MS:.0f})")
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / "data" / "aitrader.db")
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    ok = quick_start(args.store)
    ok &= large_run(args.models, args.sessions, args.chromium)
    print("within targets" if ok else "a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
