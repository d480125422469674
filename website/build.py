"""Render the site's pages from the store: jinja2 templates, plotly charts, one shared bundle.

A page is addressed by its path under the site's root, the same in a built folder and in the
live server:

    index.html                  every run's leaderboard, newest first
    runs.html                   every run: status, progress, failures with their reasons
    run-<id>/index.html         a run's leaderboard and equity curves
    run-<id>/pairs.html         which models can be told apart
    run-<id>/model-<slug>.html  a model's allocation, trades with its reasons, costs per day
    run-<id>/day-<date>.html    what every model did that session, its conversation collapsed

Links are relative, so a built folder works from any static host or straight from disk.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import func
from sqlmodel import Session, select

from analysis import formats
from models.results import list_runs
from models.tables import ModelDay, Run
from website import charts
from website.content import RunContent, RunProgress, market_of, run_content, run_progress, slug

TEMPLATES = Path(__file__).parent / "templates"
ASSETS = Path(__file__).parent / "assets"
# The most runs a site shows (newest first); older ones stay in the store and the CLI.
MAX_RUNS = 50
# What a page shows for a figure that cannot be known yet (too few sessions, nothing traded).
UNKNOWN = "n/a"
RUN_PAGE = re.compile(r"^run-(\d+)/(index|pairs|model-[^/]+|day-\d{4}-\d{2}-\d{2})\.html$")


def environment(live: bool = False) -> jinja2.Environment:
    """The templates with the site's number formats as filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(percent=percent, money=money, number=number, quantity=quantity, slug=slug)
    env.globals.update(live=live, plotly_bundle=charts.BUNDLE)
    return env


def percent(value: float | None, sign: bool = True) -> str:
    """A fraction as a percentage with two decimals: `+1.23%` (`n/a` when unknown)."""
    return UNKNOWN if value is None else formats.percent(value, sign=sign)


def money(value: float | None) -> str:
    """An amount with thousands separators and cents: `9,468.75`."""
    return UNKNOWN if value is None else formats.fixed(value)


def number(value: float | None, digits: int = formats.RATIO_DIGITS) -> str:
    """A ratio or a count: `-3.41`, `1,234`."""
    if value is None:
        return UNKNOWN
    if isinstance(value, int):
        return f"{value:,}"
    return formats.fixed(value, digits)


def quantity(value: float) -> str:
    """Shares as whole numbers, coins with their decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}".rstrip("0")


class Site:
    """The pages of one store, rendered on demand (`serve`) or all at once (`build`)."""

    def __init__(self, session: Session, live: bool = False) -> None:
        self.session = session
        self.env = environment(live)
        self._runs: dict[tuple[int, bool], RunContent] = {}

    def runs(self) -> list[Run]:
        return list_runs(self.session, limit=MAX_RUNS)

    def content(self, run_id: int, details: bool = True) -> RunContent | None:
        """A run's content (cached); without `details`, what its leaderboard needs, unless the
        whole is already at hand."""
        key = (run_id, details)
        if key not in self._runs and (run_id, True) in self._runs:
            return self._runs[run_id, True]
        if key not in self._runs:
            run = self.session.get(Run, run_id)
            if run is None:
                return None
            self._runs[key] = run_content(self.session, run, details)
        return self._runs[key]

    def render(self, path: str) -> str | None:
        """The page at `path`, or None when there is no such page."""
        if path in ("", "index.html"):
            return self._index()
        if path == "runs.html":
            return self._page("runs.html", "runs.html", runs=self._run_lines())
        match = RUN_PAGE.match(path)
        content = self.content(int(match.group(1))) if match else None
        if match is None or content is None:
            return None
        page = match.group(2)
        if page == "index":
            return self._run_page(path, content)
        if page == "pairs":
            return self._page("pairs.html", path, run=content)
        if page.startswith("model-"):
            model = next((m for m in content.models if slug(m) == page[6:]), None)
            return None if model is None else self._model_page(path, content, model)
        day = date.fromisoformat(page[4:])
        return None if day not in content.dates else self._day_page(path, content, day)

    def paths(self) -> Iterator[str]:
        """Every page's path: the runs' first, so the index finds their content read."""
        for run in self.runs():
            content = self.content(run.id or 0)
            if content is None:
                continue
            yield f"run-{run.id}/index.html"
            if not content.rows:
                continue
            yield f"run-{run.id}/pairs.html"
            for model in content.models:
                yield f"run-{run.id}/model-{slug(model)}.html"
            for day in content.dates:
                yield f"run-{run.id}/day-{day}.html"
        yield "index.html"
        yield "runs.html"

    def _page(self, template: str, path: str, **context: Any) -> str:
        root = "../" * path.count("/")
        return self.env.get_template(template).render(root=root, path=path, **context)

    def _index(self) -> str:
        """The newest ranked run of each config and market: the leaderboards people follow."""
        boards: dict[tuple[str, str], RunContent] = {}
        for run in self.runs():
            key = (run.name, market_of(run))
            board = self.content(run.id or 0, details=False) if key not in boards else None
            if board is not None and board.rows:
                boards[key] = board
        return self._page("index.html", "index.html", boards=list(boards.values()))

    def _run_lines(self) -> list[RunProgress]:
        return [run_progress(self.session, run) for run in self.runs()]

    def _run_page(self, path: str, content: RunContent) -> str:
        chart = charts.equity(content) if content.curves is not None else ""
        return self._page("run.html", path, run=content, chart=chart)

    def _model_page(self, path: str, content: RunContent, model: str) -> str:
        row = next((r for r in content.rows if r["model"] == model), None)
        days = content.of_model(model)
        trades = [t for view in days for t in view.trades]
        return self._page(
            "model.html",
            path,
            run=content,
            model=model,
            row=row,
            days=days,
            trades=trades,
            chart=charts.allocation(content.allocation(model), model, content.run.currency),
        )

    def _day_page(self, path: str, content: RunContent, day: date) -> str:
        dates = content.dates
        at = dates.index(day)
        return self._page(
            "day.html",
            path,
            run=content,
            day=day,
            views=content.of_day(day),
            bars=content.prices.get(day, []),
            previous=dates[at - 1] if at else None,
            next=dates[at + 1] if at + 1 < len(dates) else None,
        )


def build_site(session: Session, out: Path) -> list[Path]:
    """Write every page of the store's site, and its assets, into `out`; the pages written."""
    site = Site(session)
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out / "assets")
    written = []
    for path in site.paths():
        html = site.render(path)
        if html is None:
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html)
        written.append(target)
    return written


def copy_assets(folder: Path) -> None:
    """The stylesheet, the script and plotly's bundle (with its licence), once for every page."""
    folder.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS.iterdir():
        shutil.copyfile(asset, folder / asset.name)


def store_version(session: Session) -> str:
    """Changes whenever a run starts or ends or a model-day is written: live pages reload."""
    runs = session.exec(select(func.count(Run.id), func.max(Run.finished_at))).one()
    days = session.exec(select(func.count(ModelDay.id), func.max(ModelDay.finished_at))).one()
    return ":".join(str(part) for part in (*runs, *days))
