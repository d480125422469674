"""The leaderboard site in a real browser: Debian's chromium driven by Playwright.

On the original's imported October run and on the quick start's backtest: every page renders with
no console error and no failed request, at 1280 and 390 px without horizontal scrolling; every
link resolves; the leaderboard's numbers are `aitrader results --format json`'s; a trade's reason
is the text of its stored conversation. The served site answers the same pages and tells an open
page when the store changed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from deployments.cli import app
from market_data.legacy_import import import_aitrader_run
from models.engine import create_store_engine, dispose_engines
from models.tables import Message, ModelDay, Run, Trade
from tests.conftest import FinishedBacktest, served_in_thread, sqlite_backup, store_copy
from website.build import ASSETS, build_site
from website.charts import BUNDLE
from website.serve import site_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTHS = (1280, 390)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless chromium from Debian's package (Playwright's own download cannot work here)."""
    if CHROMIUM is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def october(nasdaq100_daily_sqlite: Path, shared_data: Path, tmp_path_factory) -> Path:
    """A store holding the original's October run, imported with its prices."""
    folder = tmp_path_factory.mktemp("october")
    url = store_copy(nasdaq100_daily_sqlite, folder / "store.db")
    with Session(create_store_engine(url)) as session:
        import_aitrader_run(session, shared_data / "legacy_aitrader_daily_run")
    dispose_engines()
    return folder / "store.db"


@pytest.fixture(scope="module")
def october_site(october: Path, tmp_path_factory) -> tuple[Path, list[str]]:
    """The October store's site, built once: its folder and its pages."""
    out = tmp_path_factory.mktemp("october-site")
    env = {"DATABASE_URL": f"sqlite:///{october}"}
    try:  # as a user builds it
        result = CliRunner().invoke(app, ["site", "build", "--out", str(out)], env=env)
    finally:
        dispose_engines()
    assert result.exit_code == 0 and "pages in" in result.stdout, result.output
    return out, sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))


def build(store: Path, out: Path) -> list[str]:
    with Session(create_store_engine(f"sqlite:///{store}")) as session:
        pages = build_site(session, out)
    dispose_engines()
    return [page.relative_to(out).as_posix() for page in pages]


def leaderboard_json(store: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{store}")
    try:
        result = CliRunner().invoke(app, ["results", "--format", "json"])
    finally:
        dispose_engines()
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


class Links(HTMLParser):
    """Every href and src of a page, and every id it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.targets.append(value)
            if name == "id" and value:
                self.ids.add(value)


def parsed(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text())
    return links


def assert_links_resolve(out: Path) -> None:
    """Every relative link of every page names a file of the site, and an id in it."""
    pages = {page: parsed(page) for page in out.rglob("*.html")}
    broken = []
    for page, links in pages.items():
        for target in links.targets:
            if target.startswith("data:"):  # inline, such as the empty favicon
                continue
            if target.startswith(("http:", "https:", "//")):
                broken.append(f"{page.name}: {target} leaves the site")
                continue
            file, _, anchor = target.partition("#")
            resolved = (page.parent / file).resolve() if file else page
            if not resolved.is_file():
                broken.append(f"{page.relative_to(out)}: {target}")
            elif anchor and anchor not in pages[resolved].ids:
                broken.append(f"{page.relative_to(out)}: no #{anchor} in {file or page.name}")
    assert not broken, "\n".join(broken[:20])


def watched(page) -> list[str]:
    """The console errors, page errors and failed or refused requests of `page`, as they come."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on(
        "response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None
    )
    return problems


def open_pages(browser, urls: list[str]) -> None:
    """Each page at each width: no console error, no failed request, no sideways scrolling."""
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        problems = watched(page)
        for url in urls:
            page.goto(url, wait_until="load")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{url} scrolls sideways by {overflow} px at {width} px"
            shot = page.screenshot(full_page=True)  # a PNG: its width is at bytes 16 to 20
            assert int.from_bytes(shot[16:20], "big") == width, f"{url} at {width} px"
        context.close()
        assert not problems, problems


# The leaderboard's raw values by model and column, as the page carries them.
BOARD_CELLS = """() => Object.fromEntries(
    Array.from(document.querySelectorAll("table.board tbody tr")).map((row) => [
        row.dataset.model,
        Object.fromEntries(Array.from(row.querySelectorAll("[data-key]")).map(
            (cell) => [cell.dataset.key, cell.dataset.value ?? cell.textContent.trim()])),
    ]))"""
BOARD_MODELS = (
    "Array.from(document.querySelectorAll('table.board tbody tr')).map(r => r.dataset.model)"
)


def cells(browser, url: str) -> dict[str, dict[str, str]]:
    page = browser.new_page()
    page.goto(url, wait_until="load")
    found = page.evaluate(BOARD_CELLS)
    page.close()
    return found


def test_the_october_run_reads_in_a_browser_as_the_cli_ranks_it(
    browser, october: Path, october_site, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, pages = october_site
    assert {"index.html", "runs.html", "run-1/index.html", "run-1/pairs.html"} <= set(pages)
    assert len([p for p in pages if "/day-" in p]) == 22  # every session of October
    assert_links_resolve(out)
    assert not any("cdn" in p.read_text().lower() for p in out.rglob("*.html"))

    shown = cells(browser, (out / "run-1/index.html").as_uri())
    rows = leaderboard_json(october, monkeypatch)
    assert set(shown) == {row["model"] for row in rows}
    for row in rows:
        cell = shown[row["model"]]
        for key in ("return", "final_value", "sharpe", "max_drawdown"):
            assert float(cell[key]) == pytest.approx(row[key], abs=1e-6), (row["model"], key)
        assert int(cell["trades"]) == row["trades"]
        assert cell["tier"] == ("" if row["tier"] is None else str(row["tier"]))
    sample = ["index.html", "runs.html", "run-1/index.html", "run-1/pairs.html"]
    sample += [p for p in pages if "/model-" in p][:2] + [p for p in pages if "/day-" in p][:1]
    open_pages(browser, [(out / p).as_uri() for p in sample])


def test_the_leaderboard_sorts_from_the_keyboard(browser, october_site) -> None:
    out, _ = october_site
    page = browser.new_page()
    page.goto((out / "run-1/index.html").as_uri(), wait_until="load")
    ranked = page.evaluate(BOARD_MODELS)
    page.focus("table.board thead th:nth-child(4) button")  # Return
    page.keyboard.press("Enter")  # ascending: the worst first
    assert (
        page.evaluate(BOARD_MODELS)[0] == ranked[-2]
    )  # the worst model (the benchmark row is last)
    page.keyboard.press("Enter")
    assert page.evaluate(BOARD_MODELS)[:2] == ranked[:2]
    page.close()


@pytest.mark.slow
@pytest.mark.xdist_group("quickstart-backtest")  # shares its backtest with the docs and crash tests
def test_the_quick_start_site_shows_each_trade_with_its_stated_reason(
    browser, quickstart_backtest: FinishedBacktest, tmp_path: Path
) -> None:
    store = Path(
        sqlite_backup(quickstart_backtest.store, tmp_path / "s.db").removeprefix("sqlite:///")
    )
    began = time.perf_counter()
    pages = build(store, tmp_path / "site")
    assert time.perf_counter() - began < 30  # 2 s on a quiet machine; benchmarks/site_build.py
    assert_links_resolve(tmp_path / "site")
    with Session(create_store_engine(f"sqlite:///{store}")) as session:
        trade, day = session.exec(
            select(Trade, ModelDay)
            .join(ModelDay, ModelDay.id == Trade.model_day_id)
            .where(ModelDay.model == "momentum")
            .order_by(Trade.id)
        ).first()
        said = session.exec(
            select(Message)
            .where(Message.model_day_id == day.id, Message.role == "assistant")
            .order_by(Message.seq)
        ).all()
    dispose_engines()
    page = browser.new_page()
    page.goto((tmp_path / "site/run-1/model-momentum.html").as_uri(), wait_until="load")
    reason = page.inner_text(f"#trade-{trade.id} td.reason")
    assert reason in [m.content.strip() for m in said] and trade.symbol in reason
    page.click(f"#trade-{trade.id} a")  # model -> day -> the same trade
    assert page.url.endswith(f"day-{day.day}.html#trade-{trade.id}")
    assert trade.symbol in page.inner_text(f"#trade-{trade.id}")
    page.close()
    sample = ["index.html", "run-1/index.html", "run-1/model-momentum.html", pages[-1]]
    open_pages(browser, [(tmp_path / "site" / p).as_uri() for p in sample])
    with serving(f"sqlite:///{store}") as base:  # the same pages, served
        open_pages(browser, [f"{base}/{p}" for p in sample])
        assert httpx.get(f"{base}/{sample[2]}").text.count(f'id="trade-{trade.id}"') == 1


def test_the_bundled_plotly_is_the_installed_plotlys_version() -> None:
    import plotly.offline

    head = (ASSETS / BUNDLE).read_text()[:300]
    assert f"plotly.js (basic - minified) v{plotly.offline.get_plotlyjs_version()}" in head
    assert "MIT" in (ASSETS / "plotly-basic.LICENSE.txt").read_text()


@contextmanager
def serving(url: str) -> Iterator[str]:
    """`aitrader site serve`'s app on the store at `url`, in a thread; its base URL."""
    try:
        with served_in_thread(site_app(create_store_engine(url)), "/_version") as base:
            yield base
    finally:
        dispose_engines()


@pytest.fixture
def served(october: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The served site of a copy of the October store: its base URL and the store's URL."""
    url = sqlite_backup(october, tmp_path / "served.db")
    with serving(url) as base:
        yield base, url


def test_the_served_site_answers_the_same_pages_and_follows_the_store(browser, served) -> None:
    base, url = served
    open_pages(browser, [f"{base}/", f"{base}/run-1/index.html", f"{base}/run-1/pairs.html"])
    assert httpx.get(f"{base}/run-9/index.html").status_code == 404
    assert httpx.get(f"{base}/assets/../../etc/passwd").status_code == 404
    before = httpx.get(f"{base}/_version").json()["version"]
    with Session(create_store_engine(url)) as session:
        session.add(Run(name="a new run", models=["m"]))
        session.commit()
    assert httpx.get(f"{base}/_version").json()["version"] != before
    assert "a new run" in httpx.get(f"{base}/runs.html").text
